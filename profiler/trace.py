"""The trace: what one recorded run used, as frozen typed records, and its versioned JSON file format.

A trace is a set of flat tables that reference each other by process id and image index, so that each
table loads straight into a DataFrame and each row is one line of the file (traces diff well in git).
The format is described in docs/trace-format.md; `profiler schema` prints its JSON Schema.

Rows are NamedTuples rather than frozen dataclasses: immutable and typed all the same, and four times faster
to build (a trace of 10,000 processes has 300,000 rows; 0.36 s against 0.09 s for 240,000 rows here).
Strings that are bytes on Linux (paths, arguments, names the kernel reports) are held as profiler.byte_strings
describes: `os.fsencode` gives their bytes back.
"""

import functools
import gc
import itertools
import json
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, NoReturn, TypeVar, get_args

from profiler import abi as linux_abi
from profiler import byte_strings, syscalls
from profiler.column_kinds import (
    TEXT_LIMIT,
    Array,
    BadValue,
    Boolean,
    ByteString,
    Choice,
    Column,
    Kind,
    ListOf,
    Seconds,
    Text,
    integer,
    shown,
    text,
)
from profiler.errors import OutputError, TraceFormatError
from profiler.files import PRIVATE, read_input, write_text_atomically

SCHEMA_NAME: Final = "profiler-trace"
SCHEMA_VERSION: Final = 2


class RecordingMode(StrEnum):
    COMMAND = "command"
    PID = "pid"
    CGROUP = "cgroup"


class EndReason(StrEnum):
    EXITED = "exited"  # the last traced process exited
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    DURATION = "duration"  # --duration elapsed


class CapabilitySource(StrEnum):
    TRACEPOINT = "tracepoint"  # capability:cap_capable, Linux 6.14 and later
    KPROBE = "kprobe"  # a kprobe on cap_capable, older kernels
    NONE = "none"  # neither was available: the trace says nothing about capabilities


SocketSyscall = Literal["socket", "socketpair"]
NamespaceSyscall = Literal["clone", "clone3", "unshare", "setns"]
SOCKET_SYSCALLS: tuple[SocketSyscall, ...] = get_args(SocketSyscall)
NAMESPACE_SYSCALLS: tuple[NamespaceSyscall, ...] = get_args(NamespaceSyscall)


class CheckClass(StrEnum):
    NEEDED = "needed"  # an audited check that was granted: the workload uses the capability
    DENIED = "denied"  # an audited check that was refused: attempted, and the workload went on without it
    PROBE = "probe"  # a noaudit check (such as CAP_SYS_ADMIN on every mmap): says nothing about need


@dataclass(frozen=True, slots=True)
class DropCounters:
    """What the kernel side could not record; any non-zero counter makes the trace incomplete."""

    events: int = 0  # process, exec and first-use events lost in the ring buffer
    syscalls: int = 0  # syscalls not counted: the overflow table was full
    capability_checks: int = 0  # checks not recorded: their table was full
    kernel_stacks: int = 0  # kernel stacks not captured: the stack table was full or collided
    sockets: int = 0  # socket() calls not recorded: their table was full
    namespaces: int = 0  # namespace operations not recorded: their table was full
    processes: int = 0  # processes not followed: their pid is beyond the process table

    @property
    def total(self) -> int:
        return sum(getattr(self, counter.name) for counter in fields(self))

    def nonzero(self) -> dict[str, int]:
        return {counter.name: getattr(self, counter.name) for counter in fields(self) if getattr(self, counter.name)}


@dataclass(frozen=True, slots=True)
class RunInfo:
    """How, where and when the run was recorded. component, hostname, kernel_release, architecture, command,
    target and user are byte strings (profiler.byte_strings)."""

    tool_version: str
    component: str
    hostname: str
    kernel_release: str
    architecture: str  # what `uname -m` prints
    abi: str  # the native syscall ABI, as libseccomp names it (x86_64, aarch64)
    libseccomp_version: str  # the syscall tables that named the numbers
    mode: RecordingMode
    command: tuple[str, ...]  # the command run, or the attached process's command line
    target: str | None  # the PID or cgroup attached to, None for a command
    user: str
    uid: int
    gid: int
    started_at: str  # ISO 8601, UTC
    ended_at: str
    duration_s: float
    end_reason: EndReason
    exit_status: int | None  # the command's status as a shell reports it (128+N for signal N)
    capability_source: CapabilitySource
    dropped: DropCounters


class Image(NamedTuple):
    """A program a process ran: the one it started with (inherited at fork), then one per execve."""

    path: str  # a byte string
    argv0: str | None  # a byte string
    exec_s: float | None  # seconds since the start of the recording; None when inherited or attached
    abi: str  # the syscall ABI its numbers are named in: the native one, or the compat one of a 32-bit ELF


class Process(NamedTuple):
    id: int  # unique in the trace, even when the kernel reuses a pid
    pid: int
    parent: int | None  # the id of the traced process that created it
    parent_pid: int | None
    start_s: float | None  # None for a process that was already running when recording attached
    exit_s: float | None  # None for one still running when recording ended
    exit_code: int | None
    exit_signal: str | None  # the signal that killed it, such as SIGKILL
    attached: bool  # already running when recording began (attach mode)
    images: tuple[Image, ...]


# The rows below have a field named count, which shadows tuple.count on purpose: it is the row's count.


class SyscallUse(NamedTuple):
    process: int
    image: int
    nr: int
    name: str | None  # None when the number names no syscall of the image's ABI
    unresolved: str | None  # why name is None
    count: int  # type: ignore[assignment]
    first_s: float | None  # None when the first-use event was dropped


class KernelStack(NamedTuple):
    id: int
    frames: tuple[str, ...]  # innermost first, without offsets and the syscall entry frames


class CapabilityCheck(NamedTuple):
    """Identical checks (same process image, capability, result, syscall and kernel path), counted."""

    process: int
    image: int
    capability: str | None  # None for a number newer than profiler's table
    cap: int
    granted: bool
    classification: CheckClass
    syscall: str | None  # the syscall in progress; None outside a syscall or when unresolved
    syscall_nr: int | None
    initial_user_ns: bool  # the check was against the initial user namespace (the bounding set applies)
    stack: int | None  # a KernelStack id
    stack_error: str | None  # why stack is None
    count: int  # type: ignore[assignment]


class SocketUse(NamedTuple):
    process: int
    image: int
    syscall: SocketSyscall
    family: str | None  # None for a number newer than profiler's table
    family_nr: int
    type: tuple[str, ...]  # the socket type and its flags
    type_nr: int
    protocol: int
    count: int  # type: ignore[assignment]


class NamespaceUse(NamedTuple):
    process: int
    image: int
    syscall: NamespaceSyscall
    flags: tuple[str, ...]  # CLONE_NEW* names; empty for setns on a namespace of any type
    flags_nr: int
    count: int  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Trace:
    run: RunInfo
    processes: tuple[Process, ...]
    syscalls: tuple[SyscallUse, ...]
    capability_checks: tuple[CapabilityCheck, ...]
    kernel_stacks: tuple[KernelStack, ...]
    sockets: tuple[SocketUse, ...]
    namespaces: tuple[NamespaceUse, ...]
    schema: Literal["profiler-trace"] = SCHEMA_NAME
    schema_version: Literal[2] = SCHEMA_VERSION
    _by_id: dict[int, Process] = field(init=False, repr=False, compare=False)
    _stacks: dict[int, KernelStack] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {process.id: process for process in self.processes})
        object.__setattr__(self, "_stacks", {stack.id: stack for stack in self.kernel_stacks})

    def process(self, process_id: int) -> Process:
        return self._by_id[process_id]

    def image(self, process_id: int, image: int) -> Image:
        return self._by_id[process_id].images[image]

    def program(self, process_id: int, image: int) -> str:
        """The path of the program a row was recorded in."""
        return self.image(process_id, image).path

    def stack(self, stack_id: int | None) -> KernelStack | None:
        return None if stack_id is None else self._stacks[stack_id]

    def to_json(self) -> str:
        return _render(self)

    def save(self, path: Path | str, *, overwrite: bool = False) -> None:
        """Write the trace atomically, readable by its owner only; an existing file is an OutputError unless
        overwrite, and anything but a regular file is one always."""
        write_text_atomically(Path(path), self.to_json(), overwrite=overwrite, mode=PRIVATE)


# --- the file format: what each field may hold ---------------------------------------------------------------------

# Bounds on what a trace may hold, so that nothing read from one is unbounded.
PATH_LIMIT: Final = 4096  # PATH_MAX: paths, cgroup targets, and the names uname and passwd give
ARGUMENT_LIMIT: Final = 128 * 1024  # MAX_ARG_STRLEN: one command-line argument
TIME_LIMIT_US: Final = 10**15  # about 31 years of recording, in microseconds
INT64_MAX: Final = 2**63 - 1  # counts stay within what pandas and JSON readers hold exactly
UINT32_MAX: Final = 2**32 - 1
PID_LIMIT: Final = 4 * 1024 * 1024  # PID_MAX_LIMIT of a 64-bit kernel
ROW_ID_LIMIT: Final = 2**31 - 1

_ABIS: Final = sorted({*syscalls.NATIVE_ABIS.values(), *syscalls.COMPAT_ABIS.values()})


_ID = integer(1, ROW_ID_LIMIT)
_INDEX = integer(0, ROW_ID_LIMIT)
_COUNT = integer(1, INT64_MAX)
_MICROSECONDS = integer(0, TIME_LIMIT_US, nullable=True)
_SYSCALL_NR = integer(-(2**31), UINT32_MAX)  # the kernel's long, of which the tracer keeps 32 bits
_ARGUMENT_U32 = integer(0, UINT32_MAX)  # socket() and setns() arguments, as the tracer reads them
_SIGNAL = Text(r"SIG[A-Z0-9+]{1,16}", "a signal name such as SIGKILL", nullable=True)
_SYSCALL_NAME = Text(r"[a-z_][a-z0-9_]{0,63}", "a syscall name (lowercase letters, digits, _)", nullable=True)
_KERNEL_FUNCTION = Text(rf"[\x21-\x7e]{{1,{TEXT_LIMIT}}}", "a kernel function name")

# Where a row was recorded: the first columns of every table of observations.
_MADE_BY: Final = (Column("process", _ID, "the process"), Column("image", _INDEX, "which of its images"))

PROCESS_COLUMNS: Final = (
    Column("id", _ID, "unique in the trace, even when the kernel reuses a pid"),
    Column("pid", integer(0, PID_LIMIT), "as the kernel numbered it"),
    Column("parent", integer(1, ROW_ID_LIMIT, nullable=True), "the id of the traced process that created it"),
    Column("parent_pid", integer(0, PID_LIMIT, nullable=True), "the pid of its parent"),
    Column("start_us", _MICROSECONDS, "when it was created; null for a process running when recording attached"),
    Column("exit_us", _MICROSECONDS, "when it exited; null for one running when recording ended"),
    Column("exit_code", integer(0, 255, nullable=True), "its exit or exit_group status"),
    Column("exit_signal", _SIGNAL, "the signal that killed it"),
    Column("attached", Boolean(), "it was running when recording began"),
)
IMAGE_COLUMNS: Final = (
    Column("process", _ID, "the process that ran it"),
    Column("image", _INDEX, "its place in the process's images: 0 is the one inherited at fork"),
    Column("path", ByteString(PATH_LIMIT, escaped=True), "the program, as given to execve"),
    Column("argv0", ByteString(ARGUMENT_LIMIT, escaped=True, nullable=True), "its argv[0]"),
    Column("exec_us", _MICROSECONDS, "when execve started it; null for the image inherited at fork or attached"),
    Column("abi", Choice(tuple(_ABIS)), "the syscall ABI its numbers are in"),
)
SYSCALL_NAME_COLUMNS: Final = (
    Column("abi", Choice(tuple(_ABIS)), "the ABI of the images that made the call"),
    Column("nr", _SYSCALL_NR, "the number the kernel reported"),
    Column("name", _SYSCALL_NAME, "libseccomp's name for it where the trace was recorded, or null"),
    Column("unresolved", text("why there is no name", nullable=True), "why name is null"),
)
SYSCALL_COLUMNS: Final = (
    *_MADE_BY,
    Column("nr", _SYSCALL_NR, "the syscall number, named in syscall_names"),
    Column("count", _COUNT, "how many times it was called"),
    Column(
        "first_us",
        integer(-TIME_LIMIT_US, TIME_LIMIT_US, nullable=True),
        "the first call, in microseconds after the image began (its exec_us, else its process's start_us, else "
        "the start of the recording); null if that event was dropped",
    ),
)
KERNEL_STACK_COLUMNS: Final = (
    Column("id", _ID, "referenced by capability_checks.stack"),
    Column("frames", ListOf(_KERNEL_FUNCTION, 256), "kernel functions, innermost first"),
)
CAPABILITY_CHECK_COLUMNS: Final = (
    *_MADE_BY,
    Column("cap", integer(0, 63), "the capability number; its name is profiler's (profiler/abi.py)"),
    Column("granted", Boolean(), "the kernel's answer"),
    Column("classification", Choice(tuple(CheckClass)), "needed, denied or probe"),
    Column("syscall_nr", integer(0, UINT32_MAX, nullable=True), "the syscall in progress; null outside one"),
    Column("initial_user_ns", Boolean(), "the check was against the initial user namespace"),
    Column("stack", integer(1, ROW_ID_LIMIT, nullable=True), "a kernel_stacks id"),
    Column("stack_error", text("why there is no stack", nullable=True), "why stack is null"),
    Column("count", _COUNT, "how many identical checks"),
)
SOCKET_COLUMNS: Final = (
    *_MADE_BY,
    Column("syscall", Choice(SOCKET_SYSCALLS), "the call"),
    Column("family_nr", _ARGUMENT_U32, "the address family; its name is profiler's"),
    Column("type_nr", _ARGUMENT_U32, "the socket type and flags; their names are profiler's"),
    Column("protocol", _ARGUMENT_U32, "the protocol argument"),
    Column("count", _COUNT, "how many identical calls"),
)
NAMESPACE_COLUMNS: Final = (
    *_MADE_BY,
    Column("syscall", Choice(NAMESPACE_SYSCALLS), "the call (fork and vfork count as clone)"),
    Column("flags_nr", _ARGUMENT_U32, "the CLONE_NEW* flags; their names are profiler's"),
    Column("count", _COUNT, "how many identical calls"),
)

# The tables of schema version 2, in the order they are written. A reader skips a table it does not know
# (a later profiler's); every table here must be present.
TABLES: Final[dict[str, tuple[Column, ...]]] = {
    "processes": PROCESS_COLUMNS,
    "images": IMAGE_COLUMNS,
    "syscall_names": SYSCALL_NAME_COLUMNS,
    "syscalls": SYSCALL_COLUMNS,
    "kernel_stacks": KERNEL_STACK_COLUMNS,
    "capability_checks": CAPABILITY_CHECK_COLUMNS,
    "sockets": SOCKET_COLUMNS,
    "namespaces": NAMESPACE_COLUMNS,
}

_COUNTER = integer(0, INT64_MAX)
_ISO_TIME = Text(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "a UTC time such as 2026-01-31T12:00:00Z")


@functools.cache
def _run_fields(escaped: bool) -> tuple[Column, ...]:
    name = ByteString(PATH_LIMIT, escaped)
    return (
        Column("tool_version", text("a version"), "the profiler that recorded it"),
        Column("component", name, "the component the run belongs to"),
        Column("hostname", name, "uname -n"),
        Column("kernel_release", name, "uname -r"),
        Column("architecture", name, "uname -m"),
        Column("abi", Choice(tuple(sorted(syscalls.NATIVE_ABIS.values()))), "the native syscall ABI"),
        Column("libseccomp_version", Text(r"\d{1,4}\.\d{1,4}\.\d{1,4}", "a version such as 2.5.4"), "its tables"),
        Column("mode", Choice(tuple(RecordingMode)), "how the workload was found"),
        Column("command", ListOf(ByteString(ARGUMENT_LIMIT, escaped), 1 << 20), "the command line"),
        Column("target", ByteString(PATH_LIMIT, escaped, nullable=True), "the PID or cgroup attached to"),
        Column("user", name, "who the workload ran as"),
        Column("uid", integer(0, UINT32_MAX), "its uid"),
        Column("gid", integer(0, UINT32_MAX), "its gid"),
        Column("started_at", _ISO_TIME, "wall clock, UTC"),
        Column("ended_at", _ISO_TIME, "wall clock, UTC"),
        Column("duration_s", Seconds(TIME_LIMIT_US / 1e6), "how long it was recorded"),
        Column("end_reason", Choice(tuple(EndReason)), "why the recording ended"),
        Column("exit_status", integer(0, 255, nullable=True), "the command's status as a shell reports it"),
        Column("capability_source", Choice(tuple(CapabilitySource)), "how capability checks were seen"),
    )


_DROPPED: Final = tuple(Column(counter.name, _COUNTER, "") for counter in fields(DropCounters))


# --- writing ---------------------------------------------------------------------------------------------------------

_ROW_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _microseconds(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e6)


def _image_start_us(process: Process, image: Image) -> int:
    """Where first_us counts from: the image's exec, else its process's start, else the start of the recording."""
    return _microseconds(image.exec_s if image.exec_s is not None else process.start_s) or 0


def _rows_text(rows: list[tuple[Any, ...]]) -> str:
    """Rows as JSON arrays, one a line."""
    if not rows:
        return ""
    body = _ROW_ENCODER(rows)[1:-1]
    # Encoding all rows at once is five times faster than one by one; the line breaks go between rows, which
    # is where "],[" is when no string holds it.
    if body.count("],[") == len(rows) - 1:
        return "\n" + body.replace("],[", "],\n[") + "\n"
    return "\n" + ",\n".join(map(_ROW_ENCODER, rows)) + "\n"


def _table_rows(trace: Trace) -> dict[str, list[tuple[Any, ...]]]:
    encode = byte_strings.encode
    starts: dict[tuple[int, int], tuple[str, int]] = {}
    images = []
    for process in trace.processes:
        for index, image in enumerate(process.images):
            starts[(process.id, index)] = (image.abi, _image_start_us(process, image))
            argv0 = None if image.argv0 is None else encode(image.argv0)
            images.append((process.id, index, encode(image.path), argv0, _microseconds(image.exec_s), image.abi))
    names: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    syscall_rows = []
    for use in trace.syscalls:
        image_abi, start = starts[(use.process, use.image)]
        names.setdefault((image_abi, use.nr), (use.name, use.unresolved))
        first = None if use.first_s is None else round(use.first_s * 1e6) - start
        syscall_rows.append((use.process, use.image, use.nr, use.count, first))
    for check in trace.capability_checks:
        if check.syscall_nr is not None:
            reason = None if check.syscall else "not named when recorded"
            names.setdefault((starts[(check.process, check.image)][0], check.syscall_nr), (check.syscall, reason))
    return {
        "processes": [
            (
                p.id,
                p.pid,
                p.parent,
                p.parent_pid,
                _microseconds(p.start_s),
                _microseconds(p.exit_s),
                p.exit_code,
                p.exit_signal,
                p.attached,
            )
            for p in trace.processes
        ],
        "images": images,
        "syscall_names": [(image_abi, nr, *named) for (image_abi, nr), named in sorted(names.items())],
        "syscalls": syscall_rows,
        "kernel_stacks": [(stack.id, stack.frames) for stack in trace.kernel_stacks],
        "capability_checks": [
            (
                c.process,
                c.image,
                c.cap,
                c.granted,
                c.classification.value,
                c.syscall_nr,
                c.initial_user_ns,
                c.stack,
                c.stack_error,
                c.count,
            )
            for c in trace.capability_checks
        ],
        "sockets": [
            (s.process, s.image, s.syscall, s.family_nr, s.type_nr, s.protocol, s.count) for s in trace.sockets
        ],
        "namespaces": [(n.process, n.image, n.syscall, n.flags_nr, n.count) for n in trace.namespaces],
    }


def _run_object(run: RunInfo) -> dict[str, Any]:
    encode = byte_strings.encode
    return {
        "tool_version": run.tool_version,
        "component": encode(run.component),
        "hostname": encode(run.hostname),
        "kernel_release": encode(run.kernel_release),
        "architecture": encode(run.architecture),
        "abi": run.abi,
        "libseccomp_version": run.libseccomp_version,
        "mode": run.mode.value,
        "command": [encode(argument) for argument in run.command],
        "target": None if run.target is None else encode(run.target),
        "user": encode(run.user),
        "uid": run.uid,
        "gid": run.gid,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": run.duration_s,
        "end_reason": run.end_reason.value,
        "exit_status": run.exit_status,
        "capability_source": run.capability_source.value,
        "dropped": {counter.name: getattr(run.dropped, counter.name) for counter in fields(DropCounters)},
    }


def _render(trace: Trace) -> str:
    run = json.dumps(_run_object(trace.run), indent=2, ensure_ascii=False).replace("\n", "\n  ")
    tables = []
    for (name, columns), rows in zip(TABLES.items(), _table_rows(trace).values(), strict=True):
        header = json.dumps([column.name for column in columns])
        tables.append(f'    "{name}": {{"columns": {header}, "rows": [{_rows_text(rows)}]}}')
    return (
        f'{{\n  "schema": "{SCHEMA_NAME}",\n  "schema_version": {SCHEMA_VERSION},\n  "run": {run},\n'
        + '  "tables": {\n'
        + ",\n".join(tables)
        + "\n  }\n}\n"
    )


# --- reading ---------------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A trace that is not what profiler writes: where (a path into the file) and what is wrong there."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem


class _NotJson(Exception):
    """JSON that json.loads would take but a trace may not hold: NaN, Infinity, or a key given twice."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = keys[_repeated(keys) or 0]
        raise _NotJson(f"the key {shown(twice)} twice in one object")
    return result


@contextmanager
def _without_collector_pauses() -> Iterator[None]:
    """Loading builds hundreds of thousands of objects and no cycle among them; the cyclic collector would walk
    them again and again as they are made (it doubles the time json.loads takes on a large trace)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _object(value: Any, where: str, keys: Iterable[str]) -> dict[str, Any]:
    """value as a JSON object with exactly these keys."""
    wanted = list(keys)
    if type(value) is not dict:
        raise _Invalid(where, f"must be an object, not {shown(value)}")
    unknown = [key for key in value if key not in wanted]
    if unknown:
        raise _Invalid(unknown[0] if where == "top level" else f"{where}.{unknown[0]}", "unknown key")
    missing = [key for key in wanted if key not in value]
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
    dropped = _object(data["dropped"], "run.dropped", (column.name for column in _DROPPED))
    counters = {
        column.name: _field(dropped[column.name], f"run.dropped.{column.name}", column.kind) for column in _DROPPED
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


def _v2_table(tables: dict[str, Any], name: str) -> Columns:
    spec = TABLES[name]
    where = f"tables.{name}"
    if name not in tables:
        raise _Invalid("tables", f"no {name} table")
    table = _object(tables[name], where, ("columns", "rows"))
    names, rows = table["columns"], table["rows"]
    if type(names) is not list or not set(map(type, names)) <= {str} or len(set(names)) != len(names):
        raise _Invalid(f"{where}.columns", f"must be a list of distinct column names, not {shown(names)}")
    missing = [column.name for column in spec if column.name not in names]
    if missing:
        raise _Invalid(f"{where}.columns", f"no column {missing[0]!r}")
    if type(rows) is not list:
        raise _Invalid(f"{where}.rows", f"must be a list of rows, not {shown(rows)}")
    width = len(names)
    if rows and (set(map(type, rows)) != {list} or set(map(len, rows)) != {width}):
        row = next(index for index, value in enumerate(rows) if type(value) is not list or len(value) != width)
        raise _Invalid(f"{where}.rows[{row}]", f"must be an array of {width} values, one a column")
    if names != [column.name for column in spec]:  # columns in another order, or of a later profiler: skipped
        transposed = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        rows = list(zip(*(transposed[names.index(column.name)] for column in spec), strict=True))
    return _checked(rows, spec, lambda row, column: f"{where}.rows[{row}].{column}")


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
        starts = map(operator.itemgetter(1), placed)
        if None in firsts:
            seconds = [
                None if first is None else (start + first) / 1e6 for start, first in zip(starts, firsts, strict=True)
            ]
        else:
            seconds = list(map(operator.truediv, map(operator.add, starts, firsts), itertools.repeat(1e6)))
        present = [value for value in seconds if value is not None]
        if present and (min(present) < 0 or max(present) > TIME_LIMIT_US / 1e6):
            row = _first(seconds, lambda value: value is not None and not 0 <= value <= TIME_LIMIT_US / 1e6)
            self.fail("syscalls", row, "first_us", "puts the first call before the recording or too long after it")
        syscall, unresolved = zip(*named, strict=True) if named else ((), ())
        return _made(SyscallUse, owners, indexes, nrs, syscall, unresolved, counts, seconds)

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


def _read_v2(data: dict[str, Any]) -> Trace:
    data = _object(data, "top level", ("schema", "schema_version", "run", "tables"))
    run = _read_run(data["run"], escaped=True)
    if type(data["tables"]) is not dict:
        raise _Invalid("tables", f"must be an object, not {shown(data['tables'])}")
    # Tables this profiler does not know are a later one's: skipped, as if not recorded.
    columns = {name: _v2_table(data["tables"], name) for name in TABLES}
    builder = _Builder(run, lambda table, row, column: f"tables.{table}.rows[{row}].{column}")
    processes = builder.processes(columns["processes"], columns["images"])
    builder.syscall_names(columns["syscall_names"])
    syscall_uses = builder.syscalls(columns["syscalls"])
    stacks = builder.kernel_stacks(columns["kernel_stacks"])
    return Trace(
        run,
        processes,
        syscall_uses,
        builder.capability_checks(columns["capability_checks"]),
        stacks,
        builder.sockets(columns["sockets"]),
        builder.namespaces(columns["namespaces"]),
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


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise TraceFormatError(f"{source}: not a profiler trace (JSON nested too deep); give a trace file") from None
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith("{"):
            raise TraceFormatError(f"{source}: not a profiler trace (not JSON); give a trace file") from None
        raise TraceFormatError(
            f"{source}: not valid JSON ({error.msg}: line {error.lineno} column {error.colno}), "
            "perhaps truncated; record the run again or restore the file"
        ) from None
    except _NotJson as error:
        raise TraceFormatError(f"{source}: not a profiler trace ({error}); give a trace file") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise TraceFormatError(f"{source}: not a profiler trace (a number of thousands of digits)") from None


def parse(text: str | bytes, source: str) -> Trace:
    """Read a trace (schema version 1 or 2) from its JSON text; source names it in errors."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceFormatError(
                f"{source}: not a trace (not UTF-8 text); give a file written by profiler record"
            ) from None
    text = text.removeprefix("\ufeff")  # the byte order mark some editors put first
    if not text.strip():
        raise TraceFormatError(f"{source}: empty file; record the run again")
    with _without_collector_pauses():
        return _parse(text, source)  # returns before the collector comes back, so that the JSON is gone


def _parse(text: str, source: str) -> Trace:
    data = _json(text, source)
    if type(data) is not dict or data.get("schema") != SCHEMA_NAME:
        raise TraceFormatError(f'{source}: not a profiler trace (no "schema": "{SCHEMA_NAME}")')
    version = data.get("schema_version")
    if type(version) is not int or version < 1:
        raise TraceFormatError(f"{source}: schema_version must be a positive integer, not {shown(version)}")
    if version > SCHEMA_VERSION:
        raise TraceFormatError(
            f"{source}: written by a newer profiler (trace schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade profiler"
        )
    try:
        return _read_v1(data) if version == 1 else _read_v2(data)
    except _Invalid as invalid:
        raise TraceFormatError(
            f"{source}: invalid trace at {invalid.where}: {invalid.problem}; record the run again or restore the file"
        ) from None


def load(path: Path | str) -> Trace:
    """Read and validate a trace file; any problem is one TraceFormatError line."""
    path = Path(path)
    return parse(read_input(path, "trace"), str(path))


def error_location(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a path: ("processes", 3, "pid") is processes[3].pid."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


# --- saving where it can ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedTrace:
    path: Path  # where the trace is
    failures: tuple[str, ...]  # why each place tried before it failed: empty when it is where it was asked to be


def rescue_directories() -> tuple[Path, ...]:
    """Where a trace goes that cannot be written where asked, in this order: $TMPDIR, /tmp, /var/tmp (on disk
    and kept across reboots, often another file system than /tmp), /dev/shm (memory: room when disks are full)."""
    candidates = [os.environ.get("TMPDIR"), "/tmp", "/var/tmp", "/dev/shm"]
    unique: dict[str, Path] = {}
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            unique.setdefault(os.path.realpath(candidate), Path(candidate))
    return tuple(unique.values())


def save_or_rescue(trace: Trace, path: Path, *, overwrite: bool, rescue: Sequence[Path] | None = None) -> SavedTrace:
    """Save the trace at path or, failing that, in the first rescue directory (rescue_directories() by default)
    that takes it: under the same name, or a new one where that name is taken or too long. An OutputError names
    every failure when no place takes it."""
    text = trace.to_json()
    failures: list[str] = []
    places = [(path, overwrite)]
    for directory in rescue_directories() if rescue is None else rescue:
        places.append((directory / path.name, False))
    while places:
        place, replace = places.pop(0)
        try:
            write_text_atomically(place, text, overwrite=replace, mode=PRIVATE)
            return SavedTrace(place, tuple(failures))
        except OutputError as error:
            failures.append(str(error))
        if place != path and (os.path.lexists(place) or len(os.fsencode(place.name)) > 255):
            places.insert(0, (place.parent / f"profiler-{os.urandom(6).hex()}.trace.json", False))
    raise OutputError("; ".join(failures) + "; the trace could not be saved anywhere")


# --- the JSON Schema -------------------------------------------------------------------------------------------------


def _described(column: Column) -> dict[str, Any]:
    schema = column.kind.json_schema()
    return {**schema, "description": column.description} if column.description else schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the trace file profiler writes (schema version 2)."""
    run_fields = _run_fields(escaped=True)
    tables = {
        name: {
            "type": "object",
            "required": ["columns", "rows"],
            "additionalProperties": False,
            "properties": {
                "columns": {"const": [column.name for column in columns]},
                "rows": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "prefixItems": [_described(column) for column in columns],
                        "items": False,
                        "minItems": len(columns),
                    },
                },
            },
        }
        for name, columns in TABLES.items()
    }
    dropped = {column.name: column.kind.json_schema() for column in _DROPPED}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://profiler.invalid/schema/trace-v{SCHEMA_VERSION}.json",
        "title": "profiler trace",
        "description": "See docs/trace-format.md. Readers skip tables they do not know (a later profiler's).",
        "type": "object",
        "required": ["schema", "schema_version", "run", "tables"],
        "additionalProperties": False,
        "properties": {
            "schema": {"const": SCHEMA_NAME},
            "schema_version": {"const": SCHEMA_VERSION},
            "run": {
                "type": "object",
                "required": [*(column.name for column in run_fields), "dropped"],
                "additionalProperties": False,
                "properties": {
                    **{column.name: _described(column) for column in run_fields},
                    "dropped": {
                        "type": "object",
                        "required": list(dropped),
                        "additionalProperties": False,
                        "properties": dropped,
                    },
                },
            },
            "tables": {"type": "object", "required": list(TABLES), "properties": tables},
        },
    }
