"""The BCC session: loads recorder.bpf.c, feeds it the processes to follow, and reads back what it aggregated.

This is the only module that imports bcc (profiler.recording.refusal_watch loads its program through it). It
speaks in raw kernel terms (serials, rows, syscall numbers); profiler.recording.collector turns that into a Trace.
"""

import ctypes as ct
import errno
import fcntl
import functools
import os
import re
import resource
import signal
import struct
import time
from array import array
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from importlib import resources
from itertools import compress
from pathlib import Path
from types import ModuleType
from typing import Any

from profiler import syscalls
from profiler.errors import TracingError
from profiler.recording.kernel_features import KernelFeatures
from profiler.trace import CapabilitySource

BPF_SOURCE = "recorder.bpf.c"
BPF_HEADER = "recorder.h"


def _bpf_file(name: str) -> str:
    return resources.files("profiler.recording").joinpath("bpf", name).read_text()


@functools.cache
def _header_constants() -> dict[str, int]:
    """The #defines and enum members of recorder.h, so that the layouts below have one source."""
    text = re.sub(r"/\*.*?\*/", "", _bpf_file(BPF_HEADER), flags=re.S)
    constants = {name: int(value, 0) for name, value in re.findall(r"#define (\w+) (0x[0-9a-fA-F]+|\d+)u?\b", text)}
    for body in re.findall(r"enum \w+ \{(.*?)\};", text, flags=re.S):
        for name, value in re.findall(r"(\w+)\s*=\s*(\w+)", body):
            constants[name] = constants[value] if value in constants else int(value, 0)
        for index, name in enumerate(re.findall(r"^\s*(\w+),?\s*$", body, flags=re.M)):
            constants.setdefault(name, index)
    return constants


H = _header_constants()


class EventKind(IntEnum):
    FORK = H["EVENT_FORK"]
    EXEC = H["EVENT_EXEC"]
    EXIT = H["EVENT_EXIT"]
    ATTACH = H["EVENT_ATTACH"]
    SYSCALL = H["EVENT_SYSCALL"]
    PATH = H["EVENT_PATH"]


class ObservationKind(IntEnum):
    SYSCALL = H["OBSERVE_SYSCALL"]
    CAPABILITY = H["OBSERVE_CAPABILITY"]
    SOCKET = H["OBSERVE_SOCKET"]
    NAMESPACE = H["OBSERVE_NAMESPACE"]
    FILE = H["OBSERVE_FILE"]
    KERNEL = H["OBSERVE_KERNEL"]


class KernelFileOp(IntEnum):
    """enum file_op: what a syscall did to a path; CHDIR only names a working directory."""

    READ = H["FILE_READ"]
    WRITE = H["FILE_WRITE"]
    CREATE = H["FILE_CREATE"]
    DELETE = H["FILE_DELETE"]
    RENAME = H["FILE_RENAME"]
    LINK = H["FILE_LINK"]
    CHMOD = H["FILE_CHMOD"]
    SETID = H["FILE_SETID"]
    EXEC = H["FILE_EXEC"]
    MAP_EXEC = H["FILE_MAP_EXEC"]
    LIST = H["FILE_LIST"]
    CHDIR = H["FILE_CHDIR"]


# The order of enum drop_counter, named as the fields of profiler.trace.DropCounters.
DROP_COUNTER_NAMES = (
    "events",
    "syscalls",
    "capability_checks",
    "kernel_stacks",
    "sockets",
    "namespaces",
    "processes",
    "paths",
    "kernel_uses",
)
NO_SYSCALL = H["NO_SYSCALL"]
NO_ROW = H["NO_ROW"]
NOAUDIT_UNKNOWN = H["NOAUDIT_UNKNOWN"]
ROW_SYSCALLS = H["ROW_SYSCALLS"]
CWD_MARK = H["CWD_MARK"]
FD_MARK = H["FD_MARK"]


class _Header(ct.Structure):
    _fields_ = [("kind", ct.c_uint32), ("serial", ct.c_uint32), ("time_ns", ct.c_uint64)]


class _SyscallEvent(ct.Structure):
    _fields_ = [("header", _Header), ("image", ct.c_uint32), ("pad", ct.c_uint32), ("nr", ct.c_uint64)]


class _ProcessEvent(ct.Structure):
    _fields_ = [
        ("header", _Header),
        ("pid", ct.c_uint32),
        ("image", ct.c_uint32),
        ("row", ct.c_uint32),
        ("released_row", ct.c_uint32),
        ("parent_serial", ct.c_uint32),
        ("parent_image", ct.c_uint32),
        ("exit_code", ct.c_int32),
        ("exit_signal", ct.c_int32),
        ("first_exec", ct.c_uint32),
        ("compat", ct.c_uint32),
        ("path", ct.c_char * H["PATH_LEN"]),
        ("argv0", ct.c_char * H["ARGV0_LEN"]),
    ]


class _PathEvent(ct.Structure):
    _fields_ = [
        ("header", _Header),
        ("image", ct.c_uint32),
        ("op", ct.c_uint32),
        ("error", ct.c_int32),
        ("fd", ct.c_int32),
        ("name", ct.c_uint64),
        ("dir", ct.c_uint64),
        ("length", ct.c_uint32),
        ("pad", ct.c_uint32),
    ]


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    kind: EventKind
    serial: int
    time_ns: int
    pid: int
    image: int
    row: int
    released_row: int
    parent_serial: int
    parent_image: int
    exit_code: int
    exit_signal: int
    first_exec: bool
    compat: bool | None  # None where the kernel side cannot tell
    path: str
    argv0: str


@dataclass(frozen=True, slots=True)
class FirstUse:
    """The first use of a syscall counted outside the dense rows (whose first uses are in the row)."""

    serial: int
    image: int
    nr: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class PathSight:
    """The first sight of a file access: how to learn the absolute path its name stands for."""

    serial: int
    image: int
    op: KernelFileOp
    error: int
    name: int  # the kernel side's name for the path (recorder.h: name_of, CWD_MARK, FD_MARK)
    dir: int  # the name of the directory a relative path is in, 0 otherwise
    path: str | None  # as the program gave it (a byte string); None for an access by descriptor
    fd: int  # the descriptor of an access by descriptor, else -1
    time_ns: int


# Where _on_event looks in a path event's bytes: its length (0: no text, an access by descriptor), the first
# byte of the text, and the top bytes of its name and of the directory a relative one is in, whose high bits mark
# a name only the live process can tell (its working directory, a descriptor the kernel side did not see opened).
_PATH_EVENT = struct.Struct("<IIQIIiiQQII")
_PATH_LENGTH_AT = _PathEvent.length.offset
_PATH_TEXT_AT = ct.sizeof(_PathEvent)
_PATH_NAME_TOP_AT = _PathEvent.name.offset + 7
_PATH_DIR_TOP_AT = _PathEvent.dir.offset + 7
_MARK_BITS = (CWD_MARK | FD_MARK) >> 56
_SLASH = ord("/")
_NO_TEXT = bytes(4)
_FILE_OPS = {op.value: op for op in KernelFileOp}


def _path_sight(raw: bytes) -> PathSight:
    _kind, serial, time_ns, image, op, error, fd, name, directory, length, _pad = _PATH_EVENT.unpack_from(raw)
    text = raw[_PATH_TEXT_AT : _PATH_TEXT_AT + length - 1] if length else None
    path = os.fsdecode(text) if text is not None else None
    return PathSight(serial, image, _FILE_OPS[op], error, name, directory, path, fd, time_ns)


Event = ProcessEvent | FirstUse | PathSight


@dataclass(frozen=True, slots=True)
class RowCounts:
    """What a dense row counted for one image: the syscall numbers used, the count and first use of each."""

    nrs: "array[int]"  # array("H")
    counts: "array[int]"  # array("Q"), one per nr
    first_ns: "array[int]"  # array("Q"), one per nr, on the clock of the events


NO_COUNTS = RowCounts(array("H"), array("Q"), array("Q"))


@dataclass(frozen=True, slots=True)
class Observation:
    kind: ObservationKind
    serial: int
    image: int
    syscall_nr: int  # NO_SYSCALL outside a syscall
    a: int
    b: int
    c: int
    d: int
    e: int
    count: int


@dataclass(frozen=True, slots=True)
class TableSizes:
    """Kernel table sizes: memory is reserved up front, and what does not fit is counted as dropped."""

    rows: int = 1024  # images alive at once with dense counters (8 KiB each); more fall back to a hash
    observations: int = 65536
    files: int = 65536  # distinct file accesses (process image, path, operation, result)
    descriptor_tables: int = 4096  # processes alive at once whose descriptors' names are kept (1.5 KiB each)
    stacks: int = 8192
    ringbuf_pages: int = 2048  # 8 MiB of events between two polls


# struct observation_key, in the order Observation takes its fields.
_OBSERVATION_FIELDS = ("kind", "serial", "image", "syscall_nr", "a", "b", "c", "d", "e")
_KINDS = {kind.value: kind for kind in ObservationKind}


def _unpacker(layout: Any, names: tuple[str, ...]) -> struct.Struct:
    """A struct.Struct for a ctypes layout BCC built from the C source, to read many entries at once."""
    if tuple(name for name, _ in layout._fields_) != names:
        raise TracingError(f"{layout.__name__} has fields {layout._fields_}, not {names}: recorder.h changed")
    unpacker = struct.Struct("@" + "".join(field._type_ for _, field in layout._fields_))  # native, as C lays it out
    if unpacker.size != ct.sizeof(layout):
        raise TracingError(f"{layout.__name__} ends in padding: lay recorder.h out without it")
    return unpacker


# madvise(2): reclaim these pages now, as memory pressure would; nothing is lost, they fault back in if used.
_MADV_PAGEOUT = 21
_COMPILER_LIBRARIES = ("/libLLVM", "/libclang")


def _release_compiler_memory() -> None:
    """Give back what compiling the program took: the heap LLVM freed, and the pages of LLVM's code it touched
    (about 100 MB resident, of a recorder that otherwise needs about 60). Best effort: kernels before 5.4 have
    no MADV_PAGEOUT, and nothing but the resident size depends on it."""
    libc = ct.CDLL(None, use_errno=True)
    libc.malloc_trim(0)
    libc.madvise.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int]
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) == 6 and any(library in fields[5] for library in _COMPILER_LIBRARIES):
            start, end = (int(address, 16) for address in fields[0].split("-"))
            libc.madvise(start, end - start, _MADV_PAGEOUT)


def _import_bcc() -> ModuleType:
    try:
        import bcc
    except ImportError as error:
        raise TracingError(
            "the BCC Python module is missing: install Debian's python3-bpfcc and create the virtual "
            "environment with --system-site-packages (make install does both)"
        ) from error
    return bcc  # type: ignore[no-any-return]


# Syscalls whose arguments the kernel side reads, in the raw sys_enter handler; socketcall only exists, and is
# only decoded, on 32-bit x86, where it multiplexes socket() and socketpair().
DECODED_SYSCALLS = (
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "socket",
    "socketpair",
    "unshare",
    "setns",
    "socketcall",
)
# With paths recorded (RECORD_PATHS), the calls read at their exit, in syscalls:sys_exit_<name> (execve and
# execveat of the list above too: a failed one), and those read where they enter (close forgets a descriptor's
# name). Each has a NR_ define; a call without an exit tracepoint on this kernel gets a number no syscall has.
PATH_EXIT_SYSCALLS = (
    "open",
    "openat",
    "openat2",
    "creat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "unlink",
    "unlinkat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmodat",
    "fchmodat2",
    "fchmod",
    "truncate",
    "ftruncate",
    "mmap",
    "getdents64",
    "getdents",
    "chdir",
    "fchdir",
    "connect",
    "bind",
    "sendto",
    "sendmsg",
    "sched_setattr",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
)
PATH_ENTRY_SYSCALLS = ("close", "mprotect", "pkey_mprotect", "personality", "sched_setscheduler")

# Signals whose default action ends a process (signal(7)): all but CHLD, CONT, STOP, TSTP, TTIN, TTOU,
# URG and WINCH; real-time signals terminate too.
_NON_FATAL = {
    signal.SIGCHLD,
    signal.SIGCONT,
    signal.SIGSTOP,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGURG,
    signal.SIGWINCH,
}
FATAL_SIGNAL_MASK = sum(1 << (number - 1) for number in range(1, 65) if number not in _NON_FATAL)


def _possible_cpus() -> int:
    """How many CPUs this kernel can run, each with its own slot in a per-CPU map ("0-1,4-7": 6)."""
    count = 0
    for span in Path("/sys/devices/system/cpu/possible").read_text().strip().split(","):
        low, _, high = span.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def traced_exits(features: KernelFeatures) -> tuple[str, ...]:
    """The path calls whose exit is traced: those the native ABI has with a syscalls:sys_exit_ tracepoint here."""
    native = syscalls.native_abi()
    exits = ("execve", "execveat", *PATH_EXIT_SYSCALLS)
    return tuple(
        name
        for name in exits
        if name in features.syscall_exits and syscalls.direct_syscall_number(native, name) is not None
    )


def load_program(source: str) -> Any:
    """A BCC program compiled, loaded and attached (its TRACEPOINT_PROBEs and RAW_TRACEPOINT_PROBEs), with the
    headers of profiler/recording/bpf/ on its include path: the recorder, or run's refusal watch."""
    bcc = _import_bcc()
    with resources.as_file(resources.files("profiler.recording").joinpath("bpf")) as include:
        try:
            return bcc.BPF(text=source.encode(), cflags=[f"-I{include}", "-Wno-macro-redefined"])
        except Exception as error:  # BCC raises bare Exception for compile, load and attach failures
            raise TracingError(
                f"the eBPF program did not load ({str(error).splitlines()[0]}); "
                "is BPF allowed here (root, no lockdown, unprivileged containers cannot)?"
            ) from error


def program_source(features: KernelFeatures, sizes: TableSizes, cgroup_mode: bool, paths: bool = True) -> str:
    """The C that is loaded: recorder.bpf.c behind the #defines that configure it (`record --ebpf`). paths: record
    file accesses and kernel uses (`record --no-paths` does not)."""
    defines: dict[str, object] = {
        "PID_MAX": features.pid_max,
        "ROWS": sizes.rows,
        "OBSERVATION_ENTRIES": sizes.observations,
        "FILE_ENTRIES": sizes.files,
        "FD_PROCESSES": sizes.descriptor_tables,
        "STACK_ENTRIES": sizes.stacks,
        "RINGBUF_PAGES": sizes.ringbuf_pages,
        # Each CPU wakes user space once it wrote this much of path events unread (recorder.bpf.c: record_access):
        # all of them together fill half the ring at most.
        "UNREAD_PATH_BYTES": sizes.ringbuf_pages * resource.getpagesize() // (2 * _possible_cpus()),
        "SELF_TGID": os.getpid(),
        "FATAL_SIGNALS": f"{FATAL_SIGNAL_MASK:#x}ULL",
    }
    native = syscalls.native_abi()
    compat = syscalls.COMPAT_ABIS.get(native)
    for prefix, abi, missing in (("NR_", native, 0xFFFF_0000), ("COMPAT_NR_", compat, 0xFFFE_0000)):
        for index, name in enumerate(DECODED_SYSCALLS):
            number = syscalls.direct_syscall_number(abi, name) if abi else None
            # An ABI without this syscall gets a number no syscall has, so that its case never matches.
            defines[f"{prefix}{name.upper()}"] = number if number is not None else missing + index
    exits = traced_exits(features)
    for index, name in enumerate(PATH_EXIT_SYSCALLS + PATH_ENTRY_SYSCALLS):
        number = syscalls.direct_syscall_number(native, name)
        traced = name in exits or (name in PATH_ENTRY_SYSCALLS and number is not None)
        defines[f"NR_{name.upper()}"] = number if traced else 0xFFFD_0000 + index
    switches = {
        "CAP_TRACEPOINT": features.capability_source is CapabilitySource.TRACEPOINT,
        "CAP_KPROBE": features.capability_source is CapabilitySource.KPROBE,
        "HAVE_GROUP_DEAD": features.has_group_dead,
        "HAVE_TASK_PT_REGS": features.has_btf,
        "CGROUP_MODE": cgroup_mode,
        "ARCH_X86_64": features.architecture == "x86_64",
        "ARCH_ARM64": features.architecture == "aarch64",
        "RECORD_PATHS": paths and features.has_btf,  # it reads arguments with bpf_task_pt_regs
    }
    lines = [f"#define {name} {value}" for name, value in defines.items()]
    lines += [f"#define {name} 1" for name, enabled in switches.items() if enabled]
    return "\n".join(lines) + "\n" + _bpf_file(BPF_SOURCE)


class Tracer:
    """One loaded recorder program. Use as a context manager; close() detaches everything."""

    def __init__(
        self,
        features: KernelFeatures,
        *,
        cgroup: Path | None = None,
        sizes: TableSizes = TableSizes(),
        paths: bool = True,
    ):
        self.features = features
        self.sizes = sizes
        # Paths need the user registers at a syscall's exit (bpf_task_pt_regs, with BTF); without, they are not
        # recorded, and the trace says so.
        self.paths = paths and features.has_btf
        self.detaching: int | None = None  # the process that closes the attachments' last descriptors (close)
        started = time.monotonic()
        self._bpf: Any = load_program(program_source(features, sizes, cgroup is not None, self.paths))
        # One program on the exit of each path call: the kernel runs it for those calls only, where a raw sys_exit
        # would run for every syscall of every task.
        for name in traced_exits(features) if self.paths else ():
            try:
                self._bpf.attach_tracepoint(tp=f"syscalls:sys_exit_{name}".encode(), fn_name=b"path_exit")
            except Exception as error:  # BCC raises bare Exception
                self._bpf.cleanup()
                raise TracingError(
                    f"cannot attach to syscalls:sys_exit_{name} ({str(error).splitlines()[0]}): record with --no-paths"
                ) from error
        self.startup_s = time.monotonic() - started
        _release_compiler_memory()
        self._lib: Any = _import_bcc().libbcc.lib
        self._procs = self._bpf[b"procs"]
        self._rows = self._bpf[b"rows"]
        self._empty_row = self._rows.Leaf()
        self._row_buffer = ct.create_string_buffer(ct.sizeof(self._rows.Leaf))
        # The observations table, and where paths are recorded the file accesses' one, with their capacities.
        self._tables: list[tuple[Any, int]] = [(self._bpf[b"observations"], sizes.observations)]
        if self.paths:
            self._tables.append((self._bpf[b"files"], sizes.files))
        self._observation_key = _unpacker(self._tables[0][0].Key, _OBSERVATION_FIELDS)
        self._serial_word = self._tables[0][0].Key.serial.offset // 4  # a __u32, in a key of __u32 and __s64
        free_rows = self._bpf[b"free_rows"]
        for row in range(sizes.rows):
            free_rows.push(ct.c_uint32(row))
        self._free_rows = free_rows
        if cgroup is not None:
            self._bpf[b"target_cgroup"][0] = str(cgroup)
        self._pending: list[Event] = []
        self._held: list[bytes] = []  # path events, undecoded (_on_event)
        self._bpf[b"events"].open_ring_buffer(self._on_event)

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        # The kernel removes a perf tracepoint's program when the last descriptor of its event closes, one event at
        # a time under its event mutex, each waiting for RCU grace periods (1.3-1.8 s for 44 of them here). Disabled,
        # an event emits nothing (the ioctl is instant); a grandchild that holds the only other copies closes them
        # after this returns, and closing a copy that is not the last one is instant. The raw tracepoints detach
        # at once (3 in 8 ms): closed here, so that the sys_enter program stops running in every task of the host
        # now, not after the perf events' removal.
        for fd in self._bpf.raw_tracepoint_fds.values():
            os.close(fd)
        attached = list(self._bpf.tracepoint_fds.values())
        for fd in attached:
            fcntl.ioctl(fd, _PERF_EVENT_IOC_DISABLE, 0)
        with _closed_in_grandchild(attached) as self.detaching:
            for fd in attached:
                os.close(fd)
        self._bpf.tracepoint_fds.clear()
        self._bpf.raw_tracepoint_fds.clear()
        self._bpf.cleanup()

    def _on_event(self, _context: object, data: int, size: int) -> None:
        kind = ct.c_uint32.from_address(data).value
        if kind == EventKind.PATH:
            # A file-heavy run sends thousands of these while it runs, and this process shares the CPUs with it.
            # Only a sight whose name needs the live process (its /proc descriptor or working directory) is
            # decoded now; the rest are held, as bytes, until the session next reclaims observations (held_back).
            raw = ct.string_at(data, size)
            if raw[_PATH_LENGTH_AT : _PATH_LENGTH_AT + 4] == _NO_TEXT:  # by descriptor: the name is its path's
                live = raw[_PATH_NAME_TOP_AT] & _MARK_BITS
            else:  # absolute, or relative to a directory
                live = raw[_PATH_TEXT_AT] != _SLASH and raw[_PATH_DIR_TOP_AT] & _MARK_BITS
            if not live:
                self._held.append(raw)
                return
            self._pending.append(_path_sight(raw))
            return
        header = ct.cast(data, ct.POINTER(_Header)).contents
        if header.kind == EventKind.SYSCALL:
            raw_use = ct.cast(data, ct.POINTER(_SyscallEvent)).contents
            self._pending.append(FirstUse(raw_use.header.serial, raw_use.image, raw_use.nr, raw_use.header.time_ns))
            return
        event = ct.cast(data, ct.POINTER(_ProcessEvent)).contents
        self._pending.append(
            ProcessEvent(
                kind=EventKind(header.kind),
                serial=header.serial,
                time_ns=header.time_ns,
                pid=event.pid,
                image=event.image,
                row=event.row,
                released_row=event.released_row,
                parent_serial=event.parent_serial,
                parent_image=event.parent_image,
                exit_code=event.exit_code,
                exit_signal=event.exit_signal,
                first_exec=bool(event.first_exec),
                compat=None if event.compat == H["COMPAT_UNKNOWN"] else event.compat == H["COMPAT_YES"],
                path=event.path.decode("utf-8", "surrogateescape"),
                argv0=event.argv0.decode("utf-8", "surrogateescape"),
            )
        )

    def poll(self, timeout_ms: int) -> list[Event]:
        """Events the kernel emitted since the last call, waiting up to timeout_ms for a wake-up: path events wake
        no one (recorder.bpf.c: record_access), and wait in the ring until one comes; poll(0) reads them too."""
        if timeout_ms:
            self._bpf.ring_buffer_poll(timeout_ms)
        else:
            self._bpf.ring_buffer_consume()
        events, self._pending = self._pending, []
        return events

    def held_back(self) -> list[Event]:
        """The path sights held back since the last call (_on_event), in the order the kernel sent them: none of
        them needs the live process, and a name relative to a directory is resolved by the sights before it,
        held or not. At the end of a run, call it after poll(0) has read the ring."""
        held, self._held = self._held, []
        return [_path_sight(raw) for raw in held]

    @contextmanager
    def spawning(self) -> Iterator[None]:
        """While open, processes this process creates wait to be traced from their execve on."""
        flag = self._bpf[b"spawning"]
        flag[ct.c_uint32(0)] = ct.c_uint32(1)
        try:
            yield
        finally:
            flag[ct.c_uint32(0)] = ct.c_uint32(0)

    def adopt(self, pid: int) -> bool:
        """Mark a running process to be traced from its next event; False if it is already, or cannot be."""
        if not 0 < pid < self.features.pid_max or pid == os.getpid():
            return False
        key = ct.c_uint32(pid)
        entry = self._procs[key]
        if entry.state != H["PROC_UNTRACED"]:
            return False
        entry.state = H["PROC_ADOPT"]
        self._procs[key] = entry
        return True

    def row_counts(self, row: int) -> RowCounts:
        """What a row has counted so far, left in place."""
        if row == NO_ROW:
            return NO_COUNTS
        if self._lib.bpf_lookup_elem(self._rows.map_fd, ct.byref(ct.c_uint32(row - 1)), self._row_buffer) != 0:
            return NO_COUNTS
        values = memoryview(self._row_buffer).cast("B").cast("Q")  # count[ROW_SYSCALLS], then first_ns[ROW_SYSCALLS]
        nrs = array("H", compress(range(ROW_SYSCALLS), values[:ROW_SYSCALLS]))
        return RowCounts(
            nrs, array("Q", (values[nr] for nr in nrs)), array("Q", (values[ROW_SYSCALLS + nr] for nr in nrs))
        )

    def signal_process(self, pid: int, serial: int, number: int) -> bool:
        """Send a signal to a traced process; False if it has exited (its pid perhaps reused meanwhile)."""
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            # The pidfd holds the process whose pid this was when it was opened: if that is still the traced
            # process of this serial, the signal reaches it and no other.
            entry = self._procs[ct.c_uint32(pid)]
            if entry.state != H["PROC_ACTIVE"] or entry.serial != serial:
                return False
            signal.pidfd_send_signal(handle, number)
            return True
        except OSError:
            return False
        finally:
            os.close(handle)

    def harvest(self, row: int) -> RowCounts:
        """What a released row counted; the row is cleared and reused."""
        counts = self.row_counts(row)
        if row != NO_ROW:
            key = ct.c_uint32(row - 1)
            self._rows[key] = self._empty_row
            self._free_rows.push(key)
        return counts

    def observations(self) -> list[Observation]:
        """Everything the observations tables hold, left in place."""
        observations: list[Observation] = []
        for table in self._tables:
            raw, values = self._read_table(*table)
            observations += map(self._observation, self._observation_key.iter_unpack(raw), values)
        return observations

    def reclaim_observations(self, serials: Collection[int]) -> list[Observation]:
        """The observations of processes that have exited, removed from the table to make room for others.

        Call it only for serials whose exit event user space saw a while ago: a process's last handlers may
        still run on another CPU as its exit is reported, and an increment landing on an entry after it was
        read would be lost. Exited processes are untraced in the kernel, so nothing adds to them later.
        """
        taken: list[Observation] = []
        size = self._observation_key.size
        for table, capacity in self._tables:
            raw, values = self._read_table(table, capacity)
            # Only the entries of these processes are decoded: a table holds those of every running one too, read
            # at each reclaim (the serial column is read straight from the keys).
            owners = memoryview(raw).cast("I")[self._serial_word :: size // 4]
            found = [index for index, serial in enumerate(owners) if serial in serials]
            if not found:
                continue
            chosen = b"".join(raw[index * size : (index + 1) * size] for index in found)
            count = ct.c_uint32(len(found))
            if self._lib.bpf_delete_batch(table.map_fd, ct.create_string_buffer(chosen), ct.byref(count)) != 0:
                failure = os.strerror(ct.get_errno())
                raise TracingError(f"cannot delete from the kernel's observations table: {failure}")
            taken += map(self._observation, self._observation_key.iter_unpack(chosen), (values[i] for i in found))
        return taken

    def _read_table(self, table: Any, capacity: int) -> tuple[bytes, list[int]]:
        """The raw keys of every entry of a table, one after another, and their counts, read in batches."""
        key_size = self._observation_key.size
        keys = ct.create_string_buffer(key_size * capacity)
        values = (ct.c_uint64 * capacity)()
        batch, next_batch, total = ct.c_uint32(0), ct.c_uint32(0), 0
        while total < capacity:
            count = ct.c_uint32(capacity - total)
            result = self._lib.bpf_lookup_batch(
                table.map_fd,
                ct.byref(batch) if total else None,
                ct.byref(next_batch),
                ct.byref(keys, key_size * total),
                ct.byref(values, 8 * total),
                ct.byref(count),
            )
            failure = ct.get_errno() if result != 0 else 0
            total += count.value
            if failure == errno.ENOENT:
                break
            if failure:
                raise TracingError(f"cannot read the kernel's observations table: {os.strerror(failure)}")
            batch.value = next_batch.value
        return ct.string_at(keys, key_size * total), values[:total]

    @staticmethod
    def _observation(fields: tuple[int, ...], count: int) -> Observation:
        kind, serial, image, syscall_nr, a, b, c, d, e = fields
        # Kernel addresses (d) are read as unsigned.
        return Observation(_KINDS[kind], serial, image, syscall_nr, a, b, c, d & 0xFFFF_FFFF_FFFF_FFFF, e, count)

    def stack_symbols(self, stack_id: int) -> list[str]:
        """The symbolised kernel frames of a stack id, innermost first."""
        return [self._bpf.ksym(address).decode() for address in self._bpf[b"stacks"].walk(stack_id)]

    def drops(self) -> dict[str, int]:
        table = self._bpf[b"drops"]
        return {name: table[ct.c_uint32(index)].value for index, name in enumerate(DROP_COUNTER_NAMES)}


_PERF_EVENT_IOC_DISABLE = 0x2401  # _IO('$', 1), include/uapi/linux/perf_event.h


@contextmanager
def _closed_in_grandchild(kept: Collection[int]) -> Iterator[int]:
    """Hand the other copies of kept to a grandchild that closes them once the body has closed this process's
    copies (it waits for the end of a pipe this process holds), then exits: had it closed first, this process's
    close would be the last one, and wait. It is re-parented to init (nothing waits for it), in a session of its
    own, holding no other descriptor (no pipe or terminal a caller reads to its end). Yields its process id."""
    parent_done, done = os.pipe()
    reported, report = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            grandchild = os.fork()
            if grandchild:
                os.write(report, grandchild.to_bytes(4, "little"))
            else:
                os.setsid()
                held = sorted({*kept, parent_done})
                for low, high in zip([-1, *held], [*held, os.sysconf("SC_OPEN_MAX")], strict=True):
                    os.closerange(low + 1, high)
                os.read(parent_done, 1)  # the end of the pipe: the parent has closed its copies
                for fd in kept:
                    os.close(fd)
        finally:
            os._exit(0)
    os.close(parent_done)
    os.close(report)
    try:
        os.waitpid(child, 0)
        with open(reported, "rb") as pid:
            yield int.from_bytes(pid.read(), "little")
    finally:
        os.close(done)
