"""A tracer without a kernel, for tests: its events and tables are given up front, as httpx's MockTransport
stands in for the network, so that the collector and the session are exercised without root or BPF."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from profiler.recording.tracer import (
    DROP_COUNTER_NAMES,
    NO_COUNTS,
    NO_ROW,
    EventKind,
    FirstUse,
    Observation,
    ProcessEvent,
    RowCounts,
)


@dataclass
class FakeTracer:
    """What the real Tracer gives, scripted: each poll returns the next batch of events, rows and the
    observations table are read as the kernel's would be, and what the session asks of it is recorded."""

    polls: list[list[ProcessEvent | FirstUse]] = field(default_factory=list)  # one batch per poll, then none
    rows: dict[int, RowCounts] = field(default_factory=dict)  # dense rows by row number (from 1)
    table: list[Observation] = field(default_factory=list)  # the observations table
    stacks: dict[int, list[str]] = field(default_factory=dict)  # stack id: symbolised frames, innermost first
    dropped: dict[str, int] = field(default_factory=dict)
    startup_s: float = 0.0
    adopted: list[int] = field(default_factory=list)  # pids the session marked for adoption, in order
    signals: list[tuple[int, int, int]] = field(default_factory=list)  # (pid, serial, signal) sent
    spawned: int = 0  # commands started under spawning()

    def __enter__(self) -> "FakeTracer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def poll(self, timeout_ms: int) -> list[ProcessEvent | FirstUse]:
        return self.polls.pop(0) if self.polls else []

    @contextmanager
    def spawning(self) -> Iterator[None]:
        self.spawned += 1
        yield

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
        self.signals.append((pid, serial, number))
        return True

    def drops(self) -> dict[str, int]:
        return {name: self.dropped.get(name, 0) for name in DROP_COUNTER_NAMES}


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
