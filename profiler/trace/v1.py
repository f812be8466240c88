"""Schema 1 reading: the first trace format (rows as objects, names beside numbers, seconds) into the model."""

import operator
from collections.abc import Sequence
from typing import Any, Final

from profiler import abi as linux_abi
from profiler.column_kinds import (
    Array,
    Column,
    Kind,
    ListOf,
    Seconds,
    Text,
    shown,
)
from profiler.trace.columns import (
    _SYSCALL_NAME,
    CAPABILITY_CHECK_COLUMNS,
    IMAGE_COLUMNS,
    KERNEL_STACK_COLUMNS,
    NAMESPACE_COLUMNS,
    PROCESS_COLUMNS,
    SOCKET_COLUMNS,
    SYSCALL_COLUMNS,
    SYSCALL_NAME_COLUMNS,
    TIME_LIMIT_US,
)
from profiler.trace.model import (
    Trace,
)
from profiler.trace.validation import (
    Columns,
    _Builder,
    _checked,
    _Invalid,
    _object,
    _read_run,
)

_V1_SECONDS: Final = Seconds(TIME_LIMIT_US / 1e6, nullable=True)
_V1_TABLES: Final = ("processes", "syscalls", "capability_checks", "kernel_stacks", "sockets", "namespaces")


def _v1_spec(columns: tuple[Column, ...], *added: tuple[str, Kind]) -> tuple[Column, ...]:
    """The keys of a version 1 table: the columns of version 2 (times in seconds), then those version 2 left out."""
    spec = [
        Column(column.name.removesuffix("_us") + "_s", _V1_SECONDS, "") if column.name.endswith("_us") else column
        for column in columns
    ]
    return (*spec, *(Column(name, kind, "") for name, kind in added))


_V1_PROCESS: Final = _v1_spec(PROCESS_COLUMNS, ("images", Array()))
_V1_IMAGE: Final = _v1_spec(IMAGE_COLUMNS[2:])  # path, argv0, exec_s, abi
_V1_SYSCALL: Final = _v1_spec(SYSCALL_COLUMNS, ("name", _SYSCALL_NAME), ("unresolved", SYSCALL_NAME_COLUMNS[3].kind))
_V1_CAPABILITY_CHECK: Final = _v1_spec(
    CAPABILITY_CHECK_COLUMNS,
    ("capability", Text(r"CAP_[A-Z0-9_]{1,32}", "a capability name such as CAP_CHOWN", nullable=True)),
    ("syscall", _SYSCALL_NAME),
)
_V1_SOCKET: Final = _v1_spec(
    SOCKET_COLUMNS,
    ("family", Text(r"AF_[A-Za-z0-9_]{1,32}", "an address family name such as AF_INET", nullable=True)),
    ("type", ListOf(Text(r"[A-Za-z0-9_]{1,32}", "a socket type or flag name"), 8)),
)
_V1_NAMESPACE: Final = _v1_spec(NAMESPACE_COLUMNS, ("flags", ListOf(Text(r"CLONE_NEW[A-Z]{1,16}", "a flag name"), 16)))


def _v1_rows(value: Any, where: str, spec: tuple[Column, ...]) -> list[tuple[Any, ...]]:
    """A version 1 table's rows (objects with exactly the keys of spec) as tuples in the order of spec."""
    if type(value) is not list:
        raise _Invalid(where, f"must be a list of rows, not {shown(value)}")
    keys = [column.name for column in spec]
    wanted = set(keys)
    for row, item in enumerate(value):
        if type(item) is not dict or item.keys() != wanted:
            _object(item, f"{where}[{row}]", keys)
    get = operator.itemgetter(*keys)
    return [get(item) for item in value]


def _v1_table(value: Any, where: str, spec: tuple[Column, ...]) -> Columns:
    return _checked(_v1_rows(value, where, spec), spec, lambda row, column: f"{where}[{row}].{column}")


def _microsecond_column(values: Sequence[float | None]) -> list[int | None]:
    return [None if value is None else round(value * 1e6) for value in values]


def _read_v1(data: dict[str, Any]) -> Trace:
    """A version 1 trace: rows as objects, names beside the numbers they stand for, times in seconds, byte
    strings as plain text. Each name must be the one profiler's or libseccomp's table gives its number."""
    data = _object(data, "top level", ("schema", "schema_version", "run", *_V1_TABLES))
    run = _read_run(data["run"], escaped=False)
    images_at: list[tuple[int, int]] = []  # (process row, index) of each image
    names_at: list[str] = []  # where each syscall name came from

    def locate(table: str, row: int, column: str) -> str:
        column = column.removesuffix("_us") + "_s" if column.endswith("_us") else column
        if table == "images":
            return f"processes[{images_at[row][0]}].images[{images_at[row][1]}].{column}"
        if table == "syscall_names":
            return names_at[row]
        return f"{table}[{row}].{column}"

    builder = _Builder(run, locate)
    *process_columns, image_lists = _v1_table(data["processes"], "processes", _V1_PROCESS)
    image_rows: list[tuple[Any, ...]] = []
    for row, (process_id, images) in enumerate(zip(process_columns[0], image_lists, strict=True)):
        for index, image in enumerate(images):
            at = f"processes[{row}].images[{index}]"
            image_rows.extend((process_id, index, *values) for values in _v1_rows([image], at, _V1_IMAGE))
            images_at.append((row, index))
    image_columns = _checked(
        image_rows, IMAGE_COLUMNS[:2] + _V1_IMAGE, lambda row, column: locate("images", row, column)
    )
    for columns, times in ((process_columns, (4, 5)), (image_columns, (4,))):
        for column in times:
            columns[column] = _microsecond_column(columns[column])
    processes = builder.processes(process_columns, image_columns)

    # Syscall names, from the syscalls table and the capability checks, become version 2's syscall_names.
    claims: dict[tuple[str, int], tuple[str | None, str | None, str, int]] = {}  # name, reason, where it came from

    def claim(table: str, row: int, image_abi: str, nr: int, name: str | None, reason: str | None) -> None:
        earlier = claims.setdefault((image_abi, nr), (name, reason, table, row))
        if earlier[0] != name:
            column = "name" if table == "syscalls" else "syscall"
            at = locate(earlier[2], earlier[3], "name" if earlier[2] == "syscalls" else "syscall")
            builder.fail(
                table, row, column, f"{name!r} for syscall {nr} on {image_abi}, which {at} names {earlier[0]!r}"
            )

    *syscall_columns, syscall_names, reasons = _v1_table(data["syscalls"], "syscalls", _V1_SYSCALL)
    owners, indexes, nrs, _, firsts = syscall_columns
    placed = builder._placed("syscalls", owners, indexes)
    for row, (where, nr, name, reason) in enumerate(zip(placed, nrs, syscall_names, reasons, strict=True)):
        claim("syscalls", row, where[0], nr, name, reason)
    syscall_columns[4] = [
        None if first is None else round(first * 1e6) - where[1] for where, first in zip(placed, firsts, strict=True)
    ]
    *check_columns, capabilities, check_syscalls = _v1_table(
        data["capability_checks"], "capability_checks", _V1_CAPABILITY_CHECK
    )
    check_placed = builder._placed("capability_checks", check_columns[0], check_columns[1])
    for row, (where, cap, nr, capability, name) in enumerate(
        zip(check_placed, check_columns[2], check_columns[5], capabilities, check_syscalls, strict=True)
    ):
        _agree("capability_checks", row, "capability", capability, linux_abi.capability_name(cap), builder)
        if nr is None and name is not None:
            builder.fail("capability_checks", row, "syscall", "a syscall name without a syscall_nr")
        if nr is not None:
            claim("capability_checks", row, where[0], nr, name, None if name else "not named when recorded")
    names_at.extend(
        locate(table, row, "name" if table == "syscalls" else "syscall") for *_, table, row in claims.values()
    )
    builder.syscall_names(
        [
            [image_abi for image_abi, _ in claims],
            [nr for _, nr in claims],
            [name for name, *_ in claims.values()],
            [reason for _, reason, *_ in claims.values()],
        ]
    )
    stacks = builder.kernel_stacks(_v1_table(data["kernel_stacks"], "kernel_stacks", KERNEL_STACK_COLUMNS))

    *socket_columns, families, types = _v1_table(data["sockets"], "sockets", _V1_SOCKET)
    for row, (number, family, type_nr, type_names) in enumerate(
        zip(socket_columns[3], families, socket_columns[4], types, strict=True)
    ):
        _agree("sockets", row, "family", family, linux_abi.address_family_name(number), builder)
        if type_names != linux_abi.socket_type_names(type_nr):
            builder.fail(
                "sockets",
                row,
                "type",
                f"{list(type_names)} for type {type_nr}, which profiler names "
                f"{list(linux_abi.socket_type_names(type_nr))}",
            )
    *namespace_columns, flags = _v1_table(data["namespaces"], "namespaces", _V1_NAMESPACE)
    for row, (number, names) in enumerate(zip(namespace_columns[3], flags, strict=True)):
        if names != linux_abi.namespace_flag_names(number):
            builder.fail(
                "namespaces",
                row,
                "flags",
                f"{list(names)} for flags {number:#x}, which profiler names "
                f"{list(linux_abi.namespace_flag_names(number))}",
            )
    return Trace(
        run,
        processes,
        builder.syscalls(syscall_columns),
        builder.capability_checks(check_columns),
        stacks,
        builder.sockets(socket_columns),
        builder.namespaces(namespace_columns),
    )


def _agree(table: str, row: int, column: str, claimed: str | None, ours: str | None, builder: _Builder) -> None:
    """A version 1 name for a number in profiler's own tables: the same name, none, or (for a number the table
    here does not know) a name of the right form, which is dropped: the number stays."""
    if ours is not None and claimed not in (None, ours):
        builder.fail(table, row, column, f"{claimed!r} for the number profiler names {ours!r}")
