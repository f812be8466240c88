"""The records a trace is made of: how the run was recorded, its processes and images, a row type per table.

Rows are NamedTuples rather than frozen dataclasses: immutable and typed all the same, and four times faster
to build (a trace of 10,000 processes has 300,000 rows; 0.36 s against 0.09 s for 240,000 rows here).
Strings that are bytes on Linux (paths, arguments, names the kernel reports) are held as profiler.byte_strings
describes: `os.fsencode` gives their bytes back.
"""

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Literal, NamedTuple, get_args


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


class FileOp(StrEnum):
    """What was done to a path."""

    READ = "read"
    WRITE = "write"  # the file's contents (an open for writing, a truncate)
    CREATE = "create"  # a new entry: a file, a directory, a node, a socket
    DELETE = "delete"
    RENAME = "rename"  # recorded at both the old and the new path
    LINK = "link"  # recorded at the new path
    CHMOD = "chmod"
    SETID = "setid"  # a chmod or a create that set S_ISUID or S_ISGID
    EXEC = "exec"
    MAP_EXEC = "map-exec"  # mapped executable (a shared library)
    LIST = "list"  # a directory's entries read


class KernelUse(StrEnum):
    """Kernel interfaces reached other than through a path."""

    WRITE_EXECUTE = "write-execute"  # memory mapped writable and executable at once, or protected executable
    PERSONALITY = "personality"  # personality() set to something other than the default
    REALTIME = "realtime"  # a realtime scheduling policy asked for
    OTHER_PROCESS = "other-process"  # another process's /proc entries read
    NETWORK = "network"  # a socket bound to or connected with an address beyond loopback
    LOOPBACK = "loopback"  # a socket bound to or connected with a loopback address, or an abstract AF_UNIX @name


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
    paths: int = 0  # file accesses not recorded: their table was full
    kernel_uses: int = 0  # kernel interface uses not recorded: their table was full
    unresolved_paths: int = 0  # relative paths not recorded: the process was gone before its directory was read

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


class FileAccess(NamedTuple):
    """Identical accesses of one program (same path, operation and result), counted in all its processes."""

    process: int  # with image: the process image of the program that made the first (older traces: each its own)
    image: int
    path: str  # a byte string, absolute: as the program named it, made absolute against the directory the kernel
    # used (its dirfd or working directory); a symlink as given, and again as resolved
    op: FileOp
    error: str | None  # the errno name (ENOENT, EACCES), or its number where it has none, where the call failed
    device: tuple[int, int] | None  # (major, minor) where the path opened is a character or block device node
    count: int  # type: ignore[assignment]
    first_s: float | None  # the first access, in seconds since the start of the recording; None if not known


class KernelInterfaceUse(NamedTuple):
    """Identical uses of one kernel interface by one program (same use and detail), counted in all its processes."""

    process: int  # with image: the program's process image of the lowest id that made one (older traces: each)
    image: int
    use: KernelUse
    detail: str  # printable, bounded: "connect 127.0.0.1:8080", "mprotect PROT_WRITE|PROT_EXEC"
    count: int  # type: ignore[assignment]
