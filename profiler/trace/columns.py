"""The trace file's format, schema version 2: what each column of each table and each run field may hold."""

import functools
from dataclasses import fields
from typing import Final

from profiler import syscalls
from profiler.column_kinds import (
    TEXT_LIMIT,
    Boolean,
    ByteString,
    Choice,
    Column,
    ListOf,
    Seconds,
    Text,
    integer,
    text,
)
from profiler.trace.rows import (
    NAMESPACE_SYSCALLS,
    SOCKET_SYSCALLS,
    CapabilitySource,
    CheckClass,
    DropCounters,
    EndReason,
    FileOp,
    KernelUse,
    RecordingMode,
)

SCHEMA_NAME: Final = "profiler-trace"
SCHEMA_VERSION: Final = 2


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
# An errno's name, or its number where Python's errno table has no name for it (ENOTSUPP, 524, is the kernel's own).
_ERRNO = Text(r"(?:E[A-Z0-9]{1,31}|[1-9][0-9]{0,3})", "an errno name such as ENOENT, or its number", nullable=True)
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

FILE_ACCESS_COLUMNS: Final = (
    *_MADE_BY,
    Column(
        "path",
        ByteString(PATH_LIMIT, escaped=True),
        "absolute: as the program named it, made absolute against the directory the kernel used; a symlink as "
        "given, and again as resolved",
    ),
    Column("op", Choice(tuple(FileOp)), "what was done to it"),
    Column("error", _ERRNO, "the errno name (or number) where the call failed; null where it succeeded"),
    # The kernel's dev_t holds a 12-bit major and a 20-bit minor (MINORBITS).
    Column("device_major", integer(0, 2**12 - 1, nullable=True), "a device node's major number, else null"),
    Column("device_minor", integer(0, 2**20 - 1, nullable=True), "a device node's minor number, else null"),
    Column("count", _COUNT, "how many identical accesses"),
    Column(
        "first_us",
        integer(-TIME_LIMIT_US, TIME_LIMIT_US, nullable=True),
        "the first access, in microseconds after the image began (as in syscalls); null if not known",
    ),
)
KERNEL_USE_COLUMNS: Final = (
    *_MADE_BY,
    Column("use", Choice(tuple(KernelUse)), "the kernel interface"),
    Column("detail", text("what was asked (connect 127.0.0.1:8080, personality(0x0008))"), "what was asked"),
    Column("count", _COUNT, "how many identical uses"),
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
# Written after them where the run recorded files and kernel interfaces: both, or neither ("not recorded").
PATH_TABLES: Final[dict[str, tuple[Column, ...]]] = {
    "file_accesses": FILE_ACCESS_COLUMNS,
    "kernel_uses": KERNEL_USE_COLUMNS,
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
# The counters of file_accesses and kernel_uses: written with those tables (or where not zero), absent from a trace
# that did not record them, and 0 when absent.
PATH_COUNTERS: Final = ("paths", "kernel_uses", "unresolved_paths")
