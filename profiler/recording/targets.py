"""What to record: a command to start, a running process or a cgroup to attach to, and reading them from /proc."""

import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from profiler import syscalls
from profiler.errors import WorkloadError
from profiler.recording.workload_cgroup import cgroup2_mounts
from profiler.trace import (
    Image,
)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def lookup(cls, spec: str) -> "User":
        """A user by name or numeric uid, as in /etc/passwd."""
        if not spec:
            # What an unset variable gives (--user "$SERVICE_USER"): running as root instead would be silent.
            raise WorkloadError("--user is empty (an unset variable?): give a user name or a numeric uid")
        try:
            entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
        except (KeyError, OverflowError):
            raise WorkloadError(f"unknown user {spec!r}: give a name from /etc/passwd or a numeric uid") from None
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)

    @classmethod
    def of_uid(cls, uid: int) -> "User":
        try:
            return cls.lookup(str(uid))
        except WorkloadError:
            return cls(str(uid), uid, uid, (), "/")


@dataclass(frozen=True, slots=True)
class CommandTarget:
    argv: tuple[str, ...]
    user: User | None = None
    program: str | None = None  # argv[0] resolved to a path; argv itself is passed on as given


@dataclass(frozen=True, slots=True)
class PidTarget:
    pid: int


@dataclass(frozen=True, slots=True)
class CgroupTarget:
    path: Path


Target = CommandTarget | PidTarget | CgroupTarget


def resolve_program(argv: tuple[str, ...]) -> str:
    """The absolute path of the command's program, or a WorkloadError."""
    if not argv:
        raise WorkloadError("no command given: write it after --, as in: profiler record -- ls /")
    program = argv[0]
    found = program if "/" in program else shutil.which(program)
    if found is None or not os.path.isfile(found):
        raise WorkloadError(f"command not found: {program}; check the name or give its path")
    if not os.access(found, os.X_OK):
        raise WorkloadError(f"{found}: not executable; check its permissions")
    return os.path.abspath(found)


def resolve_cgroup(path: Path) -> Path:
    """A cgroup v2 directory, given absolute or relative to the cgroup2 mount."""
    mounts = [mount for _, mount in cgroup2_mounts()]
    candidates = [path] if path.is_absolute() else [mount / path for mount in mounts]
    for candidate in candidates:
        if (candidate / "cgroup.procs").is_file() and any(candidate.is_relative_to(m) for m in mounts):
            return candidate
    where = ", ".join(str(m) for m in mounts) or "nowhere (no cgroup2 mount)"
    raise WorkloadError(f"{path}: not a cgroup v2 directory; cgroup2 is mounted at {where}")


def proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, command name) of a running process, from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    return int(stat[stat.rindex(")") + 2 :].split()[1]), name


def proc_command(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1])


def _proc_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def proc_uid(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return os.getuid()


def descendants(root: int) -> list[int]:
    """The running processes below root, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def running_image(pid: int, native_abi: str) -> tuple[int | None, Image]:
    """(parent pid, image) of a running process, read from /proc."""
    stat = proc_stat(pid)
    command = proc_command(pid)
    path = _proc_exe(pid) or (command[0] if command else f"[{stat[1] if stat else 'exited'}]")
    return (stat[0] if stat else None), Image(path, command[0] if command else None, None, elf_abi(path, native_abi))


def elf_abi(path: str, native: str) -> str:
    """The syscall ABI of an executable: the compat ABI for a 32-bit ELF, else the native one."""
    try:
        with open(path, "rb") as program:
            header = program.read(5)
    except OSError:
        return native
    if header[:4] == b"\x7fELF" and header[4] == 1:
        return syscalls.COMPAT_ABIS.get(native, native)
    return native


def default_component(target: Target) -> str:
    if isinstance(target, CommandTarget):
        return Path(target.argv[0]).name
    if isinstance(target, PidTarget):
        stat = proc_stat(target.pid)
        return stat[1] if stat else str(target.pid)
    return target.path.name
