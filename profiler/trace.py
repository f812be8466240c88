"""The trace: what one recorded run used, as frozen typed records, and its versioned JSON file format.

A trace is a set of flat tables that reference each other by process id and image index, so that each
table loads straight into a DataFrame and each row is one line of the file (traces diff well in git).
The format is described in docs/trace-format.md; `profiler schema` prints its JSON Schema.
"""

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from profiler.atomic_write import write_text_atomically
from profiler.errors import ProfilerError, TraceFormatError

SCHEMA_NAME: Final = "profiler-trace"
SCHEMA_VERSION: Final = 1

# Every record refuses unknown keys and coerces nothing: a trace is either what we wrote or an error.
_STRICT = {"extra": "forbid", "strict": True}


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

    __pydantic_config__ = _STRICT

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
    """How, where and when the run was recorded."""

    __pydantic_config__ = _STRICT

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


@dataclass(frozen=True, slots=True)
class Image:
    """A program a process ran: the one it started with (inherited at fork), then one per execve."""

    __pydantic_config__ = _STRICT

    path: str
    argv0: str | None
    exec_s: float | None  # seconds since the start of the recording; None when inherited or attached
    abi: str  # the syscall ABI its numbers are named in: the native one, or the compat one of a 32-bit ELF


@dataclass(frozen=True, slots=True)
class Process:
    __pydantic_config__ = _STRICT

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


@dataclass(frozen=True, slots=True)
class SyscallUse:
    __pydantic_config__ = _STRICT

    process: int
    image: int
    nr: int
    name: str | None  # None when the number names no syscall of the image's ABI
    unresolved: str | None  # why name is None
    count: int
    first_s: float | None  # None when the first-use event was dropped


@dataclass(frozen=True, slots=True)
class KernelStack:
    __pydantic_config__ = _STRICT

    id: int
    frames: tuple[str, ...]  # innermost first, without offsets and the syscall entry frames


@dataclass(frozen=True, slots=True)
class CapabilityCheck:
    """Identical checks (same process image, capability, result, syscall and kernel path), counted."""

    __pydantic_config__ = _STRICT

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
    count: int


@dataclass(frozen=True, slots=True)
class SocketUse:
    __pydantic_config__ = _STRICT

    process: int
    image: int
    syscall: SocketSyscall
    family: str | None  # None for a number newer than profiler's table
    family_nr: int
    type: tuple[str, ...]  # the socket type and its flags
    type_nr: int
    protocol: int
    count: int


@dataclass(frozen=True, slots=True)
class NamespaceUse:
    __pydantic_config__ = _STRICT

    process: int
    image: int
    syscall: NamespaceSyscall
    flags: tuple[str, ...]  # CLONE_NEW* names; empty for setns on a namespace of any type
    flags_nr: int
    count: int


@dataclass(frozen=True, slots=True)
class Trace:
    __pydantic_config__ = _STRICT

    run: RunInfo
    processes: tuple[Process, ...]
    syscalls: tuple[SyscallUse, ...]
    capability_checks: tuple[CapabilityCheck, ...]
    kernel_stacks: tuple[KernelStack, ...]
    sockets: tuple[SocketUse, ...]
    namespaces: tuple[NamespaceUse, ...]
    schema: Literal["profiler-trace"] = SCHEMA_NAME
    schema_version: Literal[1] = SCHEMA_VERSION
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
        """Write the trace atomically; an existing file is an OutputError unless overwrite."""
        write_text_atomically(Path(path), self.to_json(), overwrite=overwrite)


_TABLES: Final = ("processes", "syscalls", "capability_checks", "kernel_stacks", "sockets", "namespaces")


@functools.cache
def _adapter() -> TypeAdapter[Trace]:
    return TypeAdapter(Trace)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the trace file, derived from the records above."""
    schema = _adapter().json_schema()
    schema["$id"] = f"https://profiler.invalid/schema/trace-v{SCHEMA_VERSION}.json"
    schema["title"] = "profiler trace"
    return schema


def _render(trace: Trace) -> str:
    data = _adapter().dump_python(trace, mode="json")
    parts = [
        f'  "schema": {json.dumps(SCHEMA_NAME)}',
        f'  "schema_version": {SCHEMA_VERSION}',
        '  "run": ' + json.dumps(data["run"], indent=2, ensure_ascii=False).replace("\n", "\n  "),
    ]
    for table in _TABLES:
        rows = [json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) for row in data[table]]
        body = "".join(f"\n    {row}," for row in rows).rstrip(",")
        parts.append(f'  "{table}": [{body}\n  ]' if rows else f'  "{table}": []')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def error_location(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a path: ("processes", 3, "pid") is processes[3].pid."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"


def parse(text: str | bytes, source: str) -> Trace:
    """Read a trace from its JSON text; source names it in errors."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceFormatError(
                f"{source}: not a trace (not UTF-8 text); give a file written by profiler record"
            ) from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise TraceFormatError(f"{source}: not a profiler trace (JSON nested too deep); give a trace file") from None
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith("{"):
            raise TraceFormatError(f"{source}: not a profiler trace (not JSON); give a trace file") from None
        raise TraceFormatError(
            f"{source}: not valid JSON ({error.msg}: line {error.lineno} column {error.colno}), "
            "perhaps truncated; record the run again or restore the file"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise TraceFormatError(f'{source}: not a profiler trace (no "schema": "{SCHEMA_NAME}")')
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TraceFormatError(f"{source}: schema_version must be a positive integer, not {version!r}")
    if version > SCHEMA_VERSION:
        raise TraceFormatError(
            f"{source}: written by a newer profiler (trace schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade profiler"
        )
    try:
        trace = _adapter().validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
        raise TraceFormatError(
            f"{source}: invalid trace at {error_location(first['loc'])}: {first['msg']}{more}"
        ) from None
    _check_references(trace, source)
    return trace


def read_input(path: Path, what: str, error: type[ProfilerError] = TraceFormatError) -> bytes:
    """The bytes of an input file (a trace, a profile, a policy); a directory, a missing or an unreadable file is
    one error line."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise error(f"{path}: is a directory; give a {what} file") from None
    except OSError as failure:
        raise error(f"{path}: cannot read: {failure.strerror}") from None


def load(path: Path | str) -> Trace:
    """Read and validate a trace file; any problem is one TraceFormatError line."""
    path = Path(path)
    text = read_input(path, "trace")
    if not text.strip():
        raise TraceFormatError(f"{path}: empty file; record the run again")
    return parse(text, str(path))


def _check_references(trace: Trace, source: str) -> None:
    def fail(message: str) -> None:
        raise TraceFormatError(f"{source}: inconsistent trace: {message}")

    ids = [process.id for process in trace.processes]
    if len(set(ids)) != len(ids):
        fail("two processes share an id")
    for index, process in enumerate(trace.processes):
        if process.parent is not None and process.parent not in trace._by_id:
            fail(f"processes[{index}] names parent {process.parent}, which is not in processes")
        if not process.images:
            fail(f"processes[{index}] has no image")
    for table in ("syscalls", "capability_checks", "sockets", "namespaces"):
        for index, row in enumerate(getattr(trace, table)):
            owner = trace._by_id.get(row.process)
            if owner is None or not 0 <= row.image < len(owner.images):
                fail(f"{table}[{index}] names process {row.process} image {row.image}, which is not recorded")
    for index, check in enumerate(trace.capability_checks):
        if check.stack is not None and check.stack not in trace._stacks:
            fail(f"capability_checks[{index}] names kernel stack {check.stack}, which is not in kernel_stacks")
