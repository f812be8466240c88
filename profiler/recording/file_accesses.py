"""File accesses and kernel uses: the kernel side's names for paths made absolute, its counts made trace rows.

The kernel side names a path by a hash of its string and of the name of the directory it was relative to
(recorder.h: name_of), and sends a name's string only the first time a process image does one thing with it.
Each such sight teaches the absolute path of its name here: an absolute string is its own, a relative one is
joined to its directory's path, learned from an earlier sight (a chdir, the open of a dirfd) or, for a directory
the kernel side never saw named (the working directory a process started in, a descriptor it inherited), read
in /proc while the process lives. An access whose name stays unknown is counted in dropped.unresolved_paths.

What an exec runs besides the file it names, the kernel opens without a syscall: a script's #! interpreter and
an ELF program's loader (PT_INTERP). Those are read here from the executed file's first bytes, at its exec event.

The kernel side counts per process image; a trace row is per program (the path of the image's executable), so that
a service that runs 10,000 short processes of one program has that program's few dozen rows, not 400,000 (each
/bin/true opens some 39 paths). The counts are summed per program as they are taken from the kernel's tables,
while the recording goes on, so that what the recorder holds does not grow with the number of processes. A row
names the process image that made the first of its accesses.
"""

import ctypes
import errno
import functools
import ipaddress
import os
import posixpath
import re
import stat
import struct
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from profiler.escaping import visible
from profiler.recording.tracer import CWD_MARK, FD_MARK, KernelFileOp, Observation, ObservationKind, PathSight
from profiler.trace import PATH_LIMIT, FileAccess, FileOp, KernelInterfaceUse, KernelUse

FILE_OPS = {
    KernelFileOp.READ: FileOp.READ,
    KernelFileOp.WRITE: FileOp.WRITE,
    KernelFileOp.CREATE: FileOp.CREATE,
    KernelFileOp.DELETE: FileOp.DELETE,
    KernelFileOp.RENAME: FileOp.RENAME,
    KernelFileOp.LINK: FileOp.LINK,
    KernelFileOp.CHMOD: FileOp.CHMOD,
    KernelFileOp.SETID: FileOp.SETID,
    KernelFileOp.EXEC: FileOp.EXEC,
    KernelFileOp.MAP_EXEC: FileOp.MAP_EXEC,
    KernelFileOp.LIST: FileOp.LIST,
}  # KernelFileOp.CHDIR names a working directory, and is no row
# Operations that open the path itself: where it is a device node, the row says which.
_OPENS = frozenset({FileOp.READ, FileOp.WRITE, FileOp.CREATE})
# Paths that name profiler's own files when profiler looks at them (/proc/self is whoever asks): kept as given,
# neither resolved nor looked at.
_SELF_PATHS = re.compile(r"/proc(/|$)|/dev/(fd|stdin|stdout|stderr)(/|$)")
_PROC_PID = re.compile(r"/proc/([0-9]+)(?:/|$)")
DETAIL_LIMIT = 256  # characters of a kernel use's detail
_MASK64 = (1 << 64) - 1
_FD_BITS = 20
_INTERPRETER_LEVELS = 4  # binfmt_script's limit of interpreters of interpreters
_HEAD_BYTES = 256  # a #! line the kernel reads is at most this long (BINPRM_BUF_SIZE)
_PT_INTERP = 3


def normalised(path: str) -> str:
    """A path made absolute lexically: "." and ".." and repeated slashes taken out (POSIX keeps a leading "//")."""
    if "//" not in path and "/." not in path and path.endswith("/") == (path == "/"):
        return path  # already so, as most are: a first sight each, while the workload runs
    clean = posixpath.normpath(path)
    return "/" + clean.lstrip("/") if clean.startswith("//") else clean


def _proc_link(pid: int | None, entry: str) -> str | None:
    """Where /proc/<pid>/<entry> (cwd, fd/N) points, if it is a path: not a socket, a pipe or a memfd."""
    if pid is None:
        return None
    try:
        target = os.readlink(f"/proc/{pid}/{entry}")
    except OSError:
        return None
    if not target.startswith("/") or target.startswith("/memfd:") or target.endswith(" (deleted)"):
        return None
    return target


def _read(file: int, offset: int, size: int) -> bytes:
    return os.pread(file, size, offset) if offset >= 0 and 0 < size <= 65536 else b""


# The ELF layouts read, by class (1: 32-bit, 2: 64-bit): where e_phoff, e_phentsize and e_phnum are in the file
# header, and a program header as (p_type, ..., p_offset, ..., p_filesz).
_ELF_HEADER = {1: ("I", 0x1C, 0x2A), 2: ("Q", 0x20, 0x36)}
_PROGRAM_HEADER = {1: "IIIII", 2: "IIQQQQ"}  # 32: type offset vaddr paddr filesz; 64: type flags offset ... filesz


def _elf_interpreter(file: int, head: bytes) -> str | None:
    """The PT_INTERP path of an ELF file (its dynamic loader), or None for a static one or another format."""
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] not in _ELF_HEADER or head[5] not in (1, 2):
        return None
    order = "<" if head[5] == 1 else ">"
    offset_format, at_offset, at_sizes = _ELF_HEADER[head[4]]
    (phoff,) = struct.unpack_from(order + offset_format, head, at_offset)
    phentsize, phnum = struct.unpack_from(order + "HH", head, at_sizes)
    layout = struct.Struct(order + _PROGRAM_HEADER[head[4]])
    if phentsize < layout.size:
        return None
    headers = _read(file, phoff, phentsize * phnum)
    for start in range(0, len(headers) - phentsize + 1, phentsize):
        fields = layout.unpack_from(headers, start)
        if fields[0] == _PT_INTERP:
            offset, size = (fields[1], fields[4]) if head[4] == 1 else (fields[2], fields[5])
            text = _read(file, offset, min(size, 4096)).split(b"\0", 1)[0]
            return os.fsdecode(text) if text.startswith(b"/") else None
    return None


@functools.cache
def interpreters(path: str) -> tuple[tuple[FileOp, str], ...]:
    """What the kernel runs or maps for an exec of path, read from the files: the #! interpreter of a script (an
    exec, and so on for its own), and the loader of the ELF program that runs (a map-exec)."""
    found: list[tuple[FileOp, str]] = []
    for _ in range(_INTERPRETER_LEVELS + 1):
        try:
            file = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            break
        try:
            head = _read(file, 0, _HEAD_BYTES)
            if not head.startswith(b"#!"):
                loader = _elf_interpreter(file, head)
                found += [(FileOp.MAP_EXEC, loader)] if loader else []
                break
        except (OSError, struct.error):
            break
        finally:
            os.close(file)
        words = head[2:].split(b"\n", 1)[0].split()
        if not words or not words[0].startswith(b"/"):
            break
        path = os.fsdecode(words[0])
        found.append((FileOp.EXEC, path))
    return tuple(found)


# Who made an access first: (first sight on the events' clock, or None where not known; serial; image). The
# earliest is the least by _order: a known time before none, then the lowest serial (the process started first).
Origin = tuple[int | None, int, int]


def _order(origin: Origin) -> tuple[bool, int, int, int]:
    first, serial, image = origin
    return (first is None, first or 0, serial, image)


def _earlier(one: Origin | None, other: Origin) -> Origin:
    return other if one is None or _order(other) < _order(one) else one


# A file access of a program, as the kernel side names it: (program, KernelFileOp, errno, name).
ProgramAccess = tuple[str, int, int, int]
_Key = TypeVar("_Key", bound=Hashable)


@dataclass
class PathNames:
    """What each name the kernel side sent stands for, and when each program first did what with it, learned from
    the first sights of each process image."""

    names: dict[int, str] = field(default_factory=dict)  # name: absolute path
    first_ns: dict[ProgramAccess, Origin] = field(default_factory=dict)  # the program's earliest sight
    # Accesses the kernel made for an exec, read from the files: (program, op, path): (count, the first).
    implied: dict[tuple[str, FileOp, str], tuple[int, Origin]] = field(default_factory=dict)

    def executed(self, serial: int, image: int, path: str, pid: int, time_ns: int, *, first_exec: bool) -> None:
        """An exec event of the program at path: the interpreters the image runs in are accesses of its own, and
        so is the program of the first exec of the command, which the kernel side sees only once it has run
        (NoExecPaths= must let the command itself start)."""
        program = path
        if not path.startswith("/"):
            directory = _proc_link(pid, "cwd")
            if directory is None:
                return
            path = directory + "/" + path
        ran = ((FileOp.EXEC, path),) if first_exec else ()
        for op, interpreter in ran + interpreters(normalised(path)):
            key = (program, op, normalised(interpreter))
            count, first = self.implied.get(key, (0, None))
            self.implied[key] = (count + 1, _earlier(first, (time_ns, serial, image)))

    def start_directory(self, serial: int, pid: int | None) -> None:
        """A process the kernel side adopted: where it works, read while it runs (serial 0: profiler, whose
        working directory the command it launches starts in)."""
        directory = os.getcwd() if serial == 0 else _proc_link(pid, "cwd")
        if directory is not None:
            self.names[CWD_MARK | serial] = directory

    def sight(self, sight: PathSight, pid: int | None, program: str | None) -> None:
        """A first sight in a process image of the program (None: of a process never followed)."""
        if program is not None:
            key = (program, sight.op, sight.error, sight.name)
            self.first_ns[key] = _earlier(self.first_ns.get(key), (sight.time_ns, sight.serial, sight.image))
        if sight.name in self.names:
            return
        if sight.path is None:  # by descriptor, one the kernel side did not see opened
            path = _proc_link(pid, f"fd/{sight.fd}")
        elif sight.path.startswith("/"):
            path = sight.path
        else:
            directory = self._directory(sight.dir, pid)
            path = directory + "/" + sight.path if directory is not None else None
        if path is not None:
            self.names[sight.name] = normalised(path)

    def _directory(self, name: int, pid: int | None) -> str | None:
        known = self.names.get(name)
        if known is None and name & CWD_MARK:
            known = _proc_link(pid, "cwd")
        elif known is None and name & FD_MARK:
            known = _proc_link(pid, f"fd/{name & ((1 << _FD_BITS) - 1)}")
        if known is not None:
            self.names[name] = known
        return known


@functools.cache
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)


def _resolved(path: str) -> str:
    """The path with its symbolic links resolved, a directory at a time (the directories of a run repeat)."""
    directory, base = posixpath.split(path)
    candidate = posixpath.join(_real_directory(directory), base) if base else _real_directory(directory)
    return os.path.realpath(candidate) if os.path.islink(candidate) else candidate


def _device(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode):
        return (os.major(status.st_rdev), os.minor(status.st_rdev))
    return None


class _StatxTimestamp(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_uint32), ("reserved", ctypes.c_int32)]


class _Statx(ctypes.Structure):  # struct statx, include/uapi/linux/stat.h
    _fields_ = [
        ("mask", ctypes.c_uint32),
        ("blksize", ctypes.c_uint32),
        ("attributes", ctypes.c_uint64),
        ("nlink", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("mode", ctypes.c_uint16),
        ("spare0", ctypes.c_uint16),
        ("ino", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64),
        ("attributes_mask", ctypes.c_uint64),
        ("atime", _StatxTimestamp),
        ("btime", _StatxTimestamp),
        ("ctime", _StatxTimestamp),
        ("mtime", _StatxTimestamp),
        ("spare", ctypes.c_uint64 * 20),
    ]


_STATX_BTIME = 0x800
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_statx = getattr(ctypes.CDLL(None, use_errno=True), "statx", None)


def born_since(path: str, since_ns: int) -> bool:
    """Whether the file at path was made at since_ns (wall clock) or later, by its birth time, where the file system
    keeps one (ext4, xfs, btrfs do; 0 is none)."""
    found = _Statx()
    try:
        failed = _statx is None or _statx(
            _AT_FDCWD, os.fsencode(path), _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, ctypes.byref(found)
        )
    except ValueError:  # a NUL in the path
        return False
    born = found.btime.tv_sec * 1_000_000_000 + found.btime.tv_nsec
    return not failed and bool(found.mask & _STATX_BTIME) and born > 0 and born >= since_ns


def _holdable(path: str) -> bool:
    """Whether a trace can hold the path: one made absolute from a deep directory can pass PATH_MAX, which the
    kernel never saw whole (it resolves a directory at a time), and a trace of it could not be read back."""
    return len(os.fsencode(path)) <= PATH_LIMIT


# Counts summed per program, each with the (serial, image) of the lowest serial that made one.
Counted = tuple[int, tuple[int, int]]


@dataclass
class ProgramUses:
    """The file accesses and kernel uses the kernel side counted, summed per program as its tables are read, each
    with the process image of the lowest serial that made it (the tables keep no time; a first sight does)."""

    files: dict[ProgramAccess, Counted] = field(default_factory=dict)
    kernel: dict[tuple[str, KernelUse, str], Counted] = field(default_factory=dict)

    def add(self, o: Observation, program: str, syscall: str | None) -> None:
        """An observation of a process image running program; syscall names its syscall_nr, for a kernel use."""
        if o.kind is ObservationKind.FILE and o.a != KernelFileOp.CHDIR:
            _count(self.files, (program, o.a, o.b, o.c & _MASK64), o.count, (o.serial, o.image))
        elif o.kind is ObservationKind.KERNEL and (found := _kernel_use(o, syscall)) is not None:
            _count(self.kernel, (program, *found), o.count, (o.serial, o.image))


def _count(table: dict[_Key, Counted], key: _Key, count: int, made_by: tuple[int, int]) -> None:
    earlier, lowest = table.get(key, (0, made_by))
    table[key] = (earlier + count, min(lowest, made_by))


def file_rows(
    uses: ProgramUses,
    names: PathNames,
    ids: dict[int, int],
    seconds: Callable[[int | None], float | None],
    started_ns: int,
) -> tuple[tuple[FileAccess, ...], int]:
    """The file accesses of the traced programs, and how many of them stayed unknown by name. An access to a
    path through a symbolic link is a row at the path as given and one at the path resolved. A file written that
    was born after the recording started (started_ns, wall clock) was made by the write, an open with O_CREAT: a
    create too, which needs its directory writable (a sandbox that opened the file alone fails on a host where it
    is not there yet)."""
    merged: dict[tuple[str, str, FileOp, str | None], tuple[int, Origin]] = {}  # count, the first

    def merge(key: tuple[str, str, FileOp, str | None], count: int, origin: Origin) -> None:
        earlier_count, earlier = merged.get(key, (0, None))
        merged[key] = (earlier_count + count, _earlier(earlier, origin))

    def add(program: str, path: str, op: FileOp, error: str | None, count: int, origin: Origin) -> None:
        for each in (path,) if _SELF_PATHS.match(path) else dict.fromkeys((path, _resolved(path))):
            if _holdable(each):
                merge((program, each, op, error), count, origin)

    unresolved = 0
    for key, (count, counted) in uses.files.items():
        program, kernel_op, error_number, name = key
        path = names.names.get(name)
        if path is None or not _holdable(path):
            unresolved += 1
            continue
        error = errno.errorcode.get(error_number, str(error_number)) if error_number else None
        origin = _earlier(names.first_ns.get(key), (None, *counted))
        add(program, path, FILE_OPS[KernelFileOp(kernel_op)], error, count, origin)
    for (program, op, path), (count, origin) in names.implied.items():
        add(program, path, op, None, count, origin)
    written = {path for (_, path, op, error) in merged if op is FileOp.WRITE and error is None}
    born = {path for path in written if not _SELF_PATHS.match(path) and born_since(path, started_ns)}
    for (program, path, op, error), (times, earliest) in list(merged.items()):
        if path in born and op is FileOp.WRITE and error is None:
            merge((program, path, FileOp.CREATE, None), times, earliest)
    rows = [
        FileAccess(
            ids[serial],
            image,
            path,
            op,
            error,
            _device(path) if error is None and op in _OPENS and not _SELF_PATHS.match(path) else None,
            count,
            seconds(first),
        )
        for (_, path, op, error), (count, (first, serial, image)) in merged.items()
    ]
    rows.sort(key=lambda r: (r.process, r.image, r.path, r.op, r.error or ""))
    return tuple(rows), unresolved


_PROT_NAMES = ((1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"))
_POLICY_NAMES = {1: "SCHED_FIFO", 2: "SCHED_RR", 6: "SCHED_DEADLINE"}
_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 10
_ABSTRACT_NAME_BYTES = 21  # of an abstract AF_UNIX name, the kernel side keeps these


def _address(o: Observation) -> tuple[KernelUse, str]:
    high, low = o.c & _MASK64, o.d & _MASK64
    if o.a == _AF_INET:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
            (high & 0xFFFF_FFFF).to_bytes(4, "little")
        )
        shown = f"{address}:{o.b}"
    else:
        address = ipaddress.IPv6Address(high.to_bytes(8, "little") + low.to_bytes(8, "little"))
        shown = f"[{address}]:{o.b}"
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None  # ::ffff:127.0.0.1
    loopback = address.is_loopback or (mapped is not None and mapped.is_loopback)
    return (KernelUse.LOOPBACK if loopback else KernelUse.NETWORK), shown


def _kernel_use(o: Observation, syscall: str | None) -> tuple[KernelUse, str] | None:
    """What a kernel-use observation was, and its detail; None for a syscall this does not know."""
    if syscall in ("mmap", "mprotect", "pkey_mprotect"):
        return KernelUse.WRITE_EXECUTE, f"{syscall} {'|'.join(name for bit, name in _PROT_NAMES if o.a & bit)}"
    if syscall == "personality":
        return KernelUse.PERSONALITY, f"personality({o.a:#06x})"
    if syscall in ("sched_setscheduler", "sched_setattr"):
        return KernelUse.REALTIME, f"{syscall} {_POLICY_NAMES.get(o.a, str(o.a))}"
    if syscall in ("connect", "bind", "sendto", "sendmsg") and o.a == _AF_UNIX:
        # An abstract name: as loopback, a peer in this network namespace (@name, as ss(8) writes it).
        raw = b"".join((word & _MASK64).to_bytes(8, "little") for word in (o.c, o.d, o.e))[3:]
        name = raw[: min(o.b, _ABSTRACT_NAME_BYTES)].decode("utf-8", "surrogateescape")
        cut = "…" if o.b > _ABSTRACT_NAME_BYTES else ""
        return KernelUse.LOOPBACK, f"{syscall} @{visible(name)}{cut}"
    if syscall in ("connect", "bind", "sendto", "sendmsg") and o.a in (_AF_INET, _AF_INET6):
        use, address = _address(o)
        return use, f"{syscall} {address}"
    return None


def kernel_rows(
    uses: ProgramUses,
    files: Iterable[FileAccess],
    ids: dict[int, int],
    program: Callable[[int, int], str],
    traced_pids: Collection[int],
) -> tuple[KernelInterfaceUse, ...]:
    """The kernel uses of the traced programs: those the kernel side counted, and the /proc entries of processes
    not traced that they opened (from the file access rows; program(process, image) names a row's program)."""
    merged: dict[tuple[str, KernelUse, str], Counted] = {}  # with the lowest (process id, image)
    for key, (count, (serial, image)) in uses.kernel.items():
        _count(merged, key, count, (ids[serial], image))
    for access in files:
        match = _PROC_PID.match(access.path)
        if match and int(match.group(1)) not in traced_pids:
            detail = visible(f"{access.path} {access.op}")[:DETAIL_LIMIT]
            key = (program(access.process, access.image), KernelUse.OTHER_PROCESS, detail)
            _count(merged, key, access.count, (access.process, access.image))
    rows = [
        KernelInterfaceUse(process, image, use, detail, count)
        for (_, use, detail), (count, (process, image)) in merged.items()
    ]
    rows.sort(key=lambda r: (r.process, r.image, r.use, r.detail))
    return tuple(rows)
