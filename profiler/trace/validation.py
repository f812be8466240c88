"""Checked columns into the model's rows, and the checks that span rows and tables: references, cycles, names."""

import functools
import itertools
import operator
import posixpath
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

from profiler import abi as linux_abi
from profiler import syscalls
from profiler.column_kinds import (
    BadValue,
    Column,
    Kind,
    shown,
)
from profiler.trace.columns import (
    _DROPPED,
    PATH_COUNTERS,
    TIME_LIMIT_US,
    _run_fields,
)
from profiler.trace.rows import (
    CapabilityCheck,
    CapabilitySource,
    CheckClass,
    DropCounters,
    EndReason,
    FileAccess,
    FileOp,
    Image,
    KernelInterfaceUse,
    KernelStack,
    KernelUse,
    NamespaceUse,
    Process,
    RecordingMode,
    RunInfo,
    SocketUse,
    SyscallUse,
)


class _Invalid(Exception):
    """A trace that is not what profiler writes: where (a path into the file) and what is wrong there."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem


def _object(value: Any, where: str, keys: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    """value as a JSON object with exactly these keys, of which the optional ones may be missing."""
    wanted = list(keys)
    may_miss = set(optional)
    if type(value) is not dict:
        raise _Invalid(where, f"must be an object, not {shown(value)}")
    unknown = [key for key in value if key not in wanted]
    if unknown:
        raise _Invalid(unknown[0] if where == "top level" else f"{where}.{unknown[0]}", "unknown key")
    missing = [key for key in wanted if key not in value and key not in may_miss]
    if missing:
        raise _Invalid(where, f"no {missing[0]!r}")
    return value


def _field(value: Any, where: str, kind: Kind) -> Any:
    try:
        return kind.read([value])[0]
    except BadValue as bad:
        raise _Invalid(where, bad.problem) from None


def _read_run(value: Any, escaped: bool) -> RunInfo:
    columns = _run_fields(escaped)
    data = _object(value, "run", [*(column.name for column in columns), "dropped"])
    read = {column.name: _field(data[column.name], f"run.{column.name}", column.kind) for column in columns}
    dropped = _object(data["dropped"], "run.dropped", (column.name for column in _DROPPED), PATH_COUNTERS)
    counters = {
        column.name: _field(dropped.get(column.name, 0), f"run.dropped.{column.name}", column.kind)
        for column in _DROPPED
    }
    read.update(
        mode=RecordingMode(read["mode"]),
        end_reason=EndReason(read["end_reason"]),
        capability_source=CapabilitySource(read["capability_source"]),
        dropped=DropCounters(**counters),
    )
    return RunInfo(**read)


Columns = list[Sequence[Any]]  # a table's values column by column, in the order of its spec


def _checked(rows: Sequence[Sequence[Any]], spec: Sequence[Column], locate: Callable[[int, str], str]) -> Columns:
    """The columns of rows (each as wide as spec), each checked and read by its kind."""
    transposed: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in spec]
    columns = []
    for values, column in zip(transposed, spec, strict=True):
        try:
            columns.append(column.kind.read(values))
        except BadValue as bad:
            raise _Invalid(locate(bad.row, column.name), bad.problem) from None
    return columns


def _first(values: Sequence[Any], wrong: Callable[[Any], bool]) -> int:
    return next(index for index, value in enumerate(values) if wrong(value))


Row = TypeVar("Row", bound=tuple[Any, ...])


def _made(row_type: type[Row], *columns: Iterable[Any]) -> tuple[Row, ...]:
    """Rows of a NamedTuple type from its columns, without a Python function call per row."""
    return tuple(map(functools.partial(tuple.__new__, row_type), zip(*columns, strict=True)))


def _repeated(values: Sequence[Any]) -> int | None:
    """The index of the first value that an earlier one equals, or None."""
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            return index
        seen.add(value)
    return None


def is_normal_path(path: str) -> bool:
    """Whether path is absolute and lexically normal, as a trace holds a file's path: posixpath.normpath leaves it
    as it is (and it does not start with the // that normpath keeps)."""
    return path.startswith("/") and not path.startswith("//") and posixpath.normpath(path) == path


class _Builder:
    """Turns checked columns into the model's rows, and checks what spans rows and tables: references, cycles,
    and names against libseccomp's tables. locate(table, row, column) says where a row is in the file."""

    def __init__(self, run: RunInfo, locate: Callable[[str, int, str], str]) -> None:
        self.run = run
        self.locate = locate
        self.images: dict[tuple[int, int], tuple[str, int]] = {}  # (process, image): its ABI, where first_us counts
        self.names: dict[tuple[str, int], tuple[str | None, str | None]] = {}  # (ABI, nr): name, unresolved
        self.stack_ids: set[int] = set()

    def fail(self, table: str, row: int, column: str, problem: str) -> NoReturn:
        raise _Invalid(self.locate(table, row, column), problem)

    def processes(self, columns: Columns, image_columns: Columns) -> tuple[Process, ...]:
        ids, _, parents, _, starts, _, _, _, attached = columns
        row = _repeated(ids)
        if row is not None:
            self.fail("processes", row, "id", f"{ids[row]} is the id of an earlier process too")
        for row, (start, was_attached) in enumerate(zip(starts, attached, strict=True)):
            if (start is None) != was_attached:
                self.fail("processes", row, "start_us", "null for a process running when recording attached, only")
        native = self.run.abi
        allowed = {native, syscalls.COMPAT_ABIS.get(native, native)}
        grouped: dict[int, list[tuple[Image, int | None]]] = {}
        for row, (owner, index, path, argv0, exec_us, image_abi) in enumerate(zip(*image_columns, strict=True)):
            if image_abi not in allowed:
                self.fail("images", row, "abi", f"{image_abi} is neither this run's ABI ({native}) nor its 32-bit one")
            listed = grouped.setdefault(owner, [])
            if index != len(listed):
                self.fail("images", row, "image", f"image {index} of process {owner} follows {len(listed)} images")
            listed.append((Image(path, argv0, None if exec_us is None else exec_us / 1e6, image_abi), exec_us))
        known = set(ids)
        processes = []
        for row, (process_id, pid, parent, parent_pid, start, end, code, signal, was_attached) in enumerate(
            zip(*columns, strict=True)
        ):
            if parent is not None and parent not in known:
                self.fail("processes", row, "parent", f"names parent {parent}, which is not in processes")
            images = grouped.pop(process_id, None)
            if images is None:
                self.fail("processes", row, "id", f"process {process_id} has no image")
            for index, (image, exec_us) in enumerate(images):
                self.images[(process_id, index)] = (image.abi, exec_us if exec_us is not None else start or 0)
            processes.append(
                Process(
                    process_id,
                    pid,
                    parent,
                    parent_pid,
                    None if start is None else start / 1e6,
                    None if end is None else end / 1e6,
                    code,
                    signal,
                    was_attached,
                    tuple(image for image, _ in images),
                )
            )
        if grouped:
            owner = next(iter(grouped))
            self.fail("images", image_columns[0].index(owner), "process", f"names process {owner}, not in processes")
        self._refuse_cycles(ids, parents)
        return tuple(processes)

    def _refuse_cycles(self, ids: Sequence[int], parents: Sequence[int | None]) -> None:
        parent_of = dict(zip(ids, parents, strict=True))
        done: set[int] = set()
        for start in ids:
            chain: list[int] = []
            on_chain: set[int] = set()
            node: int | None = start
            while node is not None and node not in done:
                if node in on_chain:
                    self.fail("processes", list(ids).index(node), "parent", f"process {node} is its own ancestor")
                chain.append(node)
                on_chain.add(node)
                node = parent_of[node]
            done.update(chain)

    def _placed(self, table: str, owners: Sequence[int], indexes: Sequence[int]) -> list[tuple[str, int]]:
        """The ABI and start of the image each row names."""
        images = self.images
        keys = list(zip(owners, indexes, strict=True))
        try:
            return list(map(images.__getitem__, keys))
        except KeyError:
            row = _first(keys, lambda key: key not in images)
            self.fail(table, row, "image", f"names process {keys[row][0]} image {keys[row][1]}, which is not recorded")

    def syscall_names(self, columns: Columns) -> None:
        for row, (image_abi, nr, name, reason) in enumerate(zip(*columns, strict=True)):
            if (name is None) == (reason is None):
                self.fail("syscall_names", row, "unresolved", "must be null where there is a name, and only there")
            if (image_abi, nr) in self.names:
                self.fail("syscall_names", row, "nr", f"syscall {nr} on {image_abi} is named twice")
            self.names[(image_abi, nr)] = (None, reason) if name is None else self._named(row, image_abi, nr, name)

    def _named(self, row: int, image_abi: str, nr: int, name: str) -> tuple[str | None, str | None]:
        """A name the trace gives a syscall number: libseccomp's here, or the number stays unresolved where
        libseccomp here knows no such number and no such name (a newer one named it)."""
        ours = syscalls.image_syscall_name(image_abi, nr)[0]
        if ours == name:
            return name, None
        table = syscalls.naming_abi(image_abi, nr)
        here = syscalls.libseccomp_version()
        if ours is not None:
            self.fail(
                "syscall_names",
                row,
                "name",
                f"{name!r} for syscall {nr} on {table}, which libseccomp {here} names {ours!r}",
            )
        elsewhere = syscalls.syscall_number(table, name)
        if elsewhere is not None:
            self.fail(
                "syscall_names", row, "name", f"{name!r} for syscall {nr} on {table}, where {name} is {elsewhere}"
            )
        recorded = self.run.libseccomp_version
        return (
            None,
            f"recorded as {name} by libseccomp {recorded}; libseccomp {here} here knows no syscall {nr} on {table}",
        )

    def syscalls(self, columns: Columns) -> tuple[SyscallUse, ...]:
        owners, indexes, nrs, counts, firsts = columns
        placed = self._placed("syscalls", owners, indexes)
        # Loops in C (map, zip, itemgetter) where a row needs no decision: a trace may hold a million rows.
        keys = list(zip(map(operator.itemgetter(0), placed), nrs, strict=True))
        try:
            named = list(map(self.names.__getitem__, keys))
        except KeyError:
            self._syscall_names("syscalls", "nr", keys)
            raise
        seconds = self._since_recording("syscalls", placed, firsts)
        syscall, unresolved = zip(*named, strict=True) if named else ((), ())
        return _made(SyscallUse, owners, indexes, nrs, syscall, unresolved, counts, seconds)

    def _since_recording(
        self, table: str, placed: Sequence[tuple[str, int]], firsts: Sequence[int | None]
    ) -> list[float | None]:
        """first_us, counted from the start of each row's image, as seconds since the start of the recording."""
        starts = map(operator.itemgetter(1), placed)
        seconds: list[float | None]
        if None in firsts:
            seconds = [
                None if first is None else (start + first) / 1e6 for start, first in zip(starts, firsts, strict=True)
            ]
        else:
            seconds = list(map(operator.truediv, map(operator.add, starts, firsts), itertools.repeat(1e6)))
        present = [value for value in seconds if value is not None]
        if present and (min(present) < 0 or max(present) > TIME_LIMIT_US / 1e6):
            row = _first(seconds, lambda value: value is not None and not 0 <= value <= TIME_LIMIT_US / 1e6)
            self.fail(table, row, "first_us", "puts the first use before the recording or too long after it")
        return seconds

    def _syscall_names(
        self, table: str, column: str, keys: Sequence[tuple[str, int] | None]
    ) -> list[tuple[str | None, str | None]]:
        """The name and reason syscall_names gives each (ABI, number); (None, None) for None."""
        names = self.names
        try:
            return [(None, None) if key is None else names[key] for key in keys]
        except KeyError:
            row = _first(keys, lambda key: key not in names)
            image_abi, nr = keys[row] or ("", 0)
            self.fail(table, row, column, f"syscall {nr} on {image_abi} is not in syscall_names")

    def kernel_stacks(self, columns: Columns) -> tuple[KernelStack, ...]:
        ids, frames = columns
        row = _repeated(ids)
        if row is not None:
            self.fail("kernel_stacks", row, "id", f"{ids[row]} is the id of an earlier stack too")
        self.stack_ids = set(ids)
        return tuple(KernelStack(*row) for row in zip(ids, frames, strict=True))

    def capability_checks(self, columns: Columns) -> tuple[CapabilityCheck, ...]:
        owners, indexes, caps, granted, classes, nrs, initial, stacks, errors, counts = columns
        placed = self._placed("capability_checks", owners, indexes)
        keys = [None if nr is None else (where[0], nr) for where, nr in zip(placed, nrs, strict=True)]
        syscall = [name for name, _ in self._syscall_names("capability_checks", "syscall_nr", keys)]
        unknown = set(stacks) - self.stack_ids - {None}
        if unknown:
            row = _first(stacks, lambda stack: stack in unknown)
            self.fail("capability_checks", row, "stack", f"names kernel stack {stacks[row]}, not in kernel_stacks")
        if [stack is None for stack in stacks] != [error is not None for error in errors]:
            row = _first(range(len(stacks)), lambda row: (stacks[row] is None) == (errors[row] is None))
            self.fail("capability_checks", row, "stack_error", "must be null where there is a stack, and only there")
        capability = {cap: linux_abi.capability_name(cap) for cap in set(caps)}
        check_class = {value.value: value for value in CheckClass}
        return _made(
            CapabilityCheck,
            owners,
            indexes,
            [capability[cap] for cap in caps],
            caps,
            granted,
            [check_class[value] for value in classes],
            syscall,
            nrs,
            initial,
            stacks,
            errors,
            counts,
        )

    def sockets(self, columns: Columns) -> tuple[SocketUse, ...]:
        owners, indexes, _, families, types, _, _ = columns
        self._placed("sockets", owners, indexes)
        family = {number: linux_abi.address_family_name(number) for number in set(families)}
        type_names = {number: linux_abi.socket_type_names(number) for number in set(types)}
        return tuple(
            SocketUse(o, i, call, family[f], f, type_names[t], t, protocol, count)
            for o, i, call, f, t, protocol, count in zip(*columns, strict=True)
        )

    def namespaces(self, columns: Columns) -> tuple[NamespaceUse, ...]:
        owners, indexes, _, flags, _ = columns
        self._placed("namespaces", owners, indexes)
        names = {number: linux_abi.namespace_flag_names(number) for number in set(flags)}
        return tuple(
            NamespaceUse(o, i, call, names[f], f, count) for o, i, call, f, count in zip(*columns, strict=True)
        )

    def file_accesses(self, columns: Columns) -> tuple[FileAccess, ...]:
        owners, indexes, paths, ops, errors, majors, minors, counts, firsts = columns
        placed = self._placed("file_accesses", owners, indexes)
        # Normalised as the recorder writes them (no ., .., // or trailing /), so that a path under a directory is
        # under it as text too: what the generators' prefix checks rest on.
        wrong = {path for path in set(paths) if not is_normal_path(path)}
        if wrong:
            row = _first(paths, lambda path: path in wrong)
            self.fail("file_accesses", row, "path", f"{shown(paths[row])} is not an absolute, normalised path")
        if [major is None for major in majors] != [minor is None for minor in minors]:
            row = _first(range(len(majors)), lambda row: (majors[row] is None) != (minors[row] is None))
            self.fail("file_accesses", row, "device_minor", "must be null where device_major is, and only there")
        op = {value.value: value for value in FileOp}
        return _made(
            FileAccess,
            owners,
            indexes,
            paths,
            [op[value] for value in ops],
            errors,
            [None if major is None else (major, minor) for major, minor in zip(majors, minors, strict=True)],
            counts,
            self._since_recording("file_accesses", placed, firsts),
        )

    def kernel_uses(self, columns: Columns) -> tuple[KernelInterfaceUse, ...]:
        owners, indexes, uses, details, counts = columns
        self._placed("kernel_uses", owners, indexes)
        use = {value.value: value for value in KernelUse}
        return _made(KernelInterfaceUse, owners, indexes, [use[value] for value in uses], details, counts)
