"""A cgroup of the recorded command's own, so that no process of its tree outlives the recording.

The command is started inside it (profiler joins it just while it forks the command), and everything the
command starts stays in it, whatever it does with sessions, process groups or double forks. cgroup.kill ends
the whole tree at once, with no race against a fork. A watchdog process, forked before anything is recorded,
holds the read end of a pipe whose write end only profiler holds: when profiler dies in any way (SIGKILL
included) the kernel closes it, and the watchdog kills the cgroup and removes it.

A cgroup rather than a PID namespace: the command sees what it would see outside profiler (its own pid, not
pid 1 with its special signal rules; /proc as it is), which is what the recording is for.
"""

import ctypes
import os
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# How long an emptied cgroup may take to say so (cgroup.events is updated as the last process is reaped).
EMPTY_WAIT_S = 10.0
_PR_SET_NAME = 15


def cgroup2_mounts() -> list[tuple[Path, Path]]:
    """(root within the hierarchy, mount point) of every cgroup2 mount, from /proc/self/mountinfo."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if " - cgroup2 " in line:
            mounts.append((Path(fields[3]), Path(fields[4])))
    return mounts


def own_cgroup() -> Path | None:
    """The cgroup2 directory this process is in, where a cgroup2 hierarchy is mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    unified = next((line[3:] for line in lines if line.startswith("0::")), None)
    if unified is None:
        return None
    for root, mount in cgroup2_mounts():
        if Path(unified).is_relative_to(root):
            directory = mount / Path(unified).relative_to(root)
            if directory.is_dir():
                return directory
    return None


class WorkloadCgroup:
    """A child of profiler's own cgroup, with its watchdog. Use create(); close() ends and removes it."""

    def __init__(self, path: Path, parent: Path, watchdog: int, lifeline: int):
        self.path, self._parent, self._watchdog, self._lifeline = path, parent, watchdog, lifeline

    @classmethod
    def create(cls) -> "WorkloadCgroup | None":
        """A new cgroup below profiler's own, or None where there is no cgroup2 hierarchy it may write to."""
        parent = own_cgroup()
        if parent is None:
            return None
        path = parent / f"profiler-record-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except OSError:
            return None  # a read-only cgroupfs (a container), or no permission
        read_end, write_end = os.pipe()
        watchdog = os.fork()
        if watchdog == 0:
            _watch(read_end, path)
        os.close(read_end)
        return cls(path, parent, watchdog, write_end)

    @contextmanager
    def joined(self) -> Iterator[bool]:
        """While open, this process is in the cgroup, so that what it forks starts there; False if it cannot
        join (another manager's cgroup rules), and then nothing it forks is in it."""
        try:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            (self._parent / "cgroup.procs").write_text(str(os.getpid()))

    def populated(self) -> bool:
        try:
            return "populated 1" in (self.path / "cgroup.events").read_text()
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL to every process in the cgroup, those it forks meanwhile included."""
        _kill(self.path)

    def close(self) -> None:
        """Kill what is left, remove the cgroup, and let the watchdog go."""
        _end(self.path)
        os.close(self._lifeline)  # the watchdog wakes, finds the cgroup gone, and exits
        os.waitpid(self._watchdog, 0)


def _kill(path: Path) -> None:
    try:
        (path / "cgroup.kill").write_text("1")
        return
    except FileNotFoundError:
        if not path.is_dir():
            return  # removed already (its last process gone): the same error as a kernel without cgroup.kill
        # before Linux 5.14: freeze it, so that none forks or exits meanwhile, and kill each
    except OSError:
        return  # removed already
    with suppress(OSError):  # before Linux 5.2: a pid read may be reused by the time it is killed, rarely
        (path / "cgroup.freeze").write_text("1")
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except FileNotFoundError:
        return  # removed meanwhile
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _end(path: Path) -> None:
    """Kill everything in the cgroup, wait for it to empty, and remove it."""
    if not path.is_dir():
        return
    deadline = time.monotonic() + EMPTY_WAIT_S
    while True:
        try:
            populated = "populated 1" in (path / "cgroup.events").read_text()
        except OSError:
            return
        if not populated or time.monotonic() > deadline:
            break
        _kill(path)
        time.sleep(0.01)
    with suppress(OSError):  # a process stuck in the kernel still holds it; the empty directory costs nothing
        path.rmdir()


def _watch(lifeline: int, path: Path) -> None:
    """The watchdog: wait for profiler to close the lifeline or die, then end and remove the cgroup."""
    try:
        # Signals meant for profiler (a Ctrl-C to its process group, a hang-up) must not end the watchdog.
        for number in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP):
            signal.signal(number, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for standard in (0, 1, 2):
            os.dup2(null, standard)
        os.closerange(3, lifeline)
        os.closerange(lifeline + 1, os.sysconf("SC_OPEN_MAX"))
        ctypes.CDLL(None).prctl(_PR_SET_NAME, b"profiler-watch", 0, 0, 0)
        while os.read(lifeline, 64):
            pass
        _end(path)
    finally:
        os._exit(0)
