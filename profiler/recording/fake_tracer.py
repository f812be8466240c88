"""A tracer without a kernel, for tests: its events and tables are given up front, as httpx's MockTransport
stands in for the network, so that the collector and the session are exercised without root or BPF.

Like the kernel side, it follows what a session starts under spawning(): the command's process exec'd and
exited, and signals sent to it, so that a session runs a real command to its end through it."""

import os
import platform
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from profiler.recording.kernel_features import KernelFeatures
from profiler.recording.targets import proc_stat
from profiler.recording.tracer import (
    DROP_COUNTER_NAMES,
    NO_COUNTS,
    NO_ROW,
    NO_SYSCALL,
    Event,
    EventKind,
    KernelFileOp,
    Observation,
    ObservationKind,
    PathSight,
    ProcessEvent,
    RowCounts,
)
from profiler.trace import CapabilitySource

# What a session sees of the kernel through the fake: a recent x86_64 or arm64 one with every feature.
FAKE_FEATURES = KernelFeatures(
    tracefs=Path("/sys/kernel/tracing"),
    capability_source=CapabilitySource.TRACEPOINT,
    has_group_dead=True,
    has_btf=True,
    init_user_ns=None,
    pid_max=4 * 1024 * 1024,
    architecture=platform.machine(),
)
POLL_WAIT_S = 0.01  # what a poll waits at most: a session's loop without a busy wait, and quick tests


@dataclass
class FakeTracer:
    """What the real Tracer gives, scripted: each poll returns the next batch of events, rows and the
    observations table are read as the kernel's would be, and what the session asks of it is recorded."""

    polls: list[list[Event]] = field(default_factory=list)  # one batch per poll, then none
    rows: dict[int, RowCounts] = field(default_factory=dict)  # dense rows by row number (from 1)
    table: list[Observation] = field(default_factory=list)  # the observations table
    stacks: dict[int, list[str]] = field(default_factory=dict)  # stack id: symbolised frames, innermost first
    dropped: dict[str, int] = field(default_factory=dict)
    startup_s: float = 0.0
    adopted: list[int] = field(default_factory=list)  # pids the session marked for adoption, in order
    signals: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, serial, signal) sent
    spawned: int = 0  # commands started under spawning()
    features: KernelFeatures = FAKE_FEATURES
    paths: bool = False  # whether it stands for a tracer recording file accesses and kernel uses
    detaching: int | None = None  # it attaches nothing
    followed: dict[int, int] = field(default_factory=dict)  # serial: pid of started processes not seen exit
    next_serial: int = 1_000_000  # serials of the processes it follows, apart from those the test scripts

    def __enter__(self) -> "FakeTracer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def poll(self, timeout_ms: int) -> list[Event]:
        if self.polls:
            return self.polls.pop(0)
        time.sleep(min(timeout_ms / 1000, POLL_WAIT_S))
        return self._exits()

    def held_back(self) -> list[Event]:
        return []

    def _exits(self) -> list[Event]:
        """The exit of each followed process that has ended, read without reaping it (the session does that; one it
        reaped first, between two polls, ends with neither code nor signal: unlike the kernel's, these events can
        come late)."""
        events: list[Event] = []
        for serial, pid in list(self.followed.items()):
            try:
                ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped already: how it ended is not known here
                ended = None
                code, number = -1, 0
            else:
                if ended is None:
                    continue
                killed = ended.si_code != os.CLD_EXITED
                code, number = (-1, ended.si_status) if killed else (ended.si_status, 0)
            del self.followed[serial]
            now = time.monotonic_ns()
            events.append(process_event(EventKind.EXIT, serial, pid, time_ns=now, exit_code=code, exit_signal=number))
        return events

    @contextmanager
    def spawning(self) -> Iterator[None]:
        """Processes this process starts meanwhile are followed from their exec, as the kernel side does."""
        self.spawned += 1
        before = set(_children())
        yield
        for pid in _children():
            if pid not in before:
                serial, self.next_serial = self.next_serial, self.next_serial + 1
                self.followed[serial] = pid
                try:
                    path = os.readlink(f"/proc/{pid}/exe")
                except OSError:  # exited already
                    path = ""
                now = time.monotonic_ns()
                name = os.path.basename(path)
                start = process_event(EventKind.EXEC, serial, pid, time_ns=now, first_exec=True, path=path, argv0=name)
                self.polls.insert(0, [start])

    def adopt(self, pid: int) -> bool:
        self.adopted.append(pid)
        return True

    def row_counts(self, row: int) -> RowCounts:
        return NO_COUNTS if row == NO_ROW else self.rows.get(row, NO_COUNTS)

    def harvest(self, row: int) -> RowCounts:
        counts = self.row_counts(row)
        self.rows.pop(row, None)  # released: the kernel clears the row for reuse
        return counts

    def observations(self) -> list[Observation]:
        return list(self.table)

    def reclaim_observations(self, serials: Collection[int]) -> list[Observation]:
        taken = [observation for observation in self.table if observation.serial in serials]
        self.table = [observation for observation in self.table if observation.serial not in serials]
        return taken

    def stack_symbols(self, stack_id: int) -> list[str]:
        return list(self.stacks.get(stack_id, []))

    def signal_process(self, pid: int, serial: int, number: int) -> bool:
        """Recorded; delivered to a process it follows, as the kernel side would."""
        self.signals.append((pid, serial, number))
        if self.followed.get(serial) == pid:
            os.kill(pid, number)
        return True

    def drops(self) -> dict[str, int]:
        return {name: self.dropped.get(name, 0) for name in DROP_COUNTER_NAMES}


def _children() -> list[int]:
    """The processes this process has started and not reaped."""
    own = os.getpid()
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [pid for pid in pids if (stat := proc_stat(pid)) is not None and stat[0] == own]


def process_event(
    kind: EventKind,
    serial: int,
    pid: int,
    *,
    time_ns: int = 0,
    image: int = 0,
    row: int = NO_ROW,
    released_row: int = NO_ROW,
    parent_serial: int = 0,
    parent_image: int = 0,
    exit_code: int = 0,
    exit_signal: int = 0,
    first_exec: bool = False,
    compat: bool | None = False,
    path: str = "",
    argv0: str = "",
) -> ProcessEvent:
    """An event as the kernel side sends it, with what an event of its kind does not use left at rest."""
    return ProcessEvent(
        kind, serial, time_ns, pid, image, row, released_row, parent_serial, parent_image, exit_code, exit_signal,
        first_exec, compat, path, argv0,
    )  # fmt: skip


def path_sight(
    serial: int,
    name: int,
    op: KernelFileOp,
    path: str | None,
    *,
    image: int = 0,
    error: int = 0,
    directory: int = 0,
    fd: int = -1,
    time_ns: int = 0,
) -> PathSight:
    """The first sight of a file access as the kernel side sends it: name is its hash (recorder.h name_of),
    directory the name of the directory a relative path is in, path None for an access by descriptor fd."""
    return PathSight(serial, image, op, error, name, directory, path, fd, time_ns)


def file_observation(
    serial: int, name: int, op: KernelFileOp, *, image: int = 0, error: int = 0, count: int = 1
) -> Observation:
    """A row of the kernel side's files table: the accesses of one process image to one name, counted."""
    return Observation(ObservationKind.FILE, serial, image, NO_SYSCALL, op, error, name, 0, 0, count)
