"""The collector turns the tracer's events and tables into trace rows: tested through the fake tracer, without root."""

from array import array
from pathlib import Path

import pytest

from profiler import trace as trace_module
from profiler.recording.collector import RECLAIM_AFTER_S, RECLAIM_BATCH, RECLAIM_IDLE_S, Collector
from profiler.recording.fake_tracer import FakeTracer, process_event
from profiler.recording.tracer import EventKind, FirstUse, Observation, ObservationKind, RowCounts
from profiler.trace import RunInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "traces"
EXECVE, EXIT_GROUP, OPENAT = 59, 231, 257  # x86_64


@pytest.fixture
def run() -> RunInfo:
    return trace_module.load(FIXTURES / "true.trace.json").run


def _counts(*uses: tuple[int, int, int]) -> RowCounts:
    """A dense row from (nr, count, first use in ns)."""
    nrs, counts, first_ns = zip(*uses, strict=True)
    return RowCounts(array("H", nrs), array("Q", counts), array("Q", first_ns))


def test_a_fork_and_an_exec_become_two_processes_with_their_images_and_syscalls(
    fake_tracer: FakeTracer, run: RunInfo
) -> None:
    fake_tracer.rows = {
        1: _counts((EXECVE, 1, 1_000), (EXIT_GROUP, 1, 9_000_000_000)),
        2: _counts((OPENAT, 3, 2_000_000)),
        3: _counts((EXIT_GROUP, 1, 3_000_000)),
    }
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None)
    events = [
        process_event(EventKind.EXEC, 1, 100, first_exec=True, row=1, path="/bin/sh", argv0="sh"),
        process_event(EventKind.FORK, 2, 101, time_ns=1_000_000, parent_serial=1, row=2),
        process_event(EventKind.EXEC, 2, 101, time_ns=2_500_000, image=1, released_row=2, row=3, path="/bin/true"),
        process_event(EventKind.EXIT, 2, 101, time_ns=3_000_000, image=1, released_row=3),
        process_event(EventKind.EXIT, 1, 100, time_ns=9_000_000_000, released_row=1, exit_code=3),
    ]
    for event in events:
        collector.apply(event)
    trace = collector.build(run, fake_tracer.observations())

    shell, child = trace.processes
    assert (shell.pid, shell.parent, shell.exit_code, shell.exit_s) == (100, None, 3, 9.0)
    assert (child.pid, child.parent, child.parent_pid, child.exit_code) == (101, shell.id, 100, 0)
    assert [image.path for image in child.images] == ["/bin/sh", "/bin/true"]  # the fork inherits, then execs
    assert (child.images[0].exec_s, child.images[1].exec_s) == (None, 0.0025)
    used = {(row.process, row.image, row.name): (row.count, row.first_s) for row in trace.syscalls}
    assert used == {
        (shell.id, 0, "execve"): (1, 0.000001),
        (shell.id, 0, "exit_group"): (1, 9.0),
        (child.id, 0, "openat"): (3, 0.002),
        (child.id, 1, "exit_group"): (1, 0.003),
    }
    assert fake_tracer.rows == {}, "every released row was harvested"


def test_uses_outside_the_rows_come_from_the_observations_table(fake_tracer: FakeTracer, run: RunInfo) -> None:
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None)
    collector.apply(process_event(EventKind.EXEC, 1, 100, first_exec=True, path="/bin/sh"))
    collector.apply(FirstUse(1, 0, OPENAT, 5_000_000))
    fake_tracer.table = [_observation(ObservationKind.SYSCALL, serial=1, nr=OPENAT, count=7)]
    trace = collector.build(run, fake_tracer.observations())
    assert [(row.name, row.count, row.first_s) for row in trace.syscalls] == [("openat", 7, 0.005)]
    assert collector.status(1.0).distinct_syscalls == 1


def test_what_a_process_left_is_reclaimed_from_the_table_once_it_has_exited(fake_tracer: FakeTracer) -> None:
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None)
    collector.apply(process_event(EventKind.EXEC, 1, 100, first_exec=True, path="/bin/sh"))
    collector.apply(process_event(EventKind.EXEC, 2, 200, first_exec=True, path="/bin/sh"))
    fake_tracer.table = [
        _observation(ObservationKind.SYSCALL, serial=1, nr=OPENAT, count=1),
        _observation(ObservationKind.SYSCALL, serial=2, nr=OPENAT, count=1),
    ]
    collector.apply(process_event(EventKind.EXIT, 1, 100))
    collector.reclaim(now=float("inf"))
    assert [o.serial for o in collector.reclaimed] == [1]
    assert [o.serial for o in fake_tracer.table] == [2], "the running process keeps its observations in place"


def test_a_reclaim_waits_for_a_batch_of_exited_processes_or_a_quiet_second(fake_tracer: FakeTracer) -> None:
    # Each reclaim reads the kernel's tables whole: a run of few processes is not slowed by one every 0.25 s.
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None)
    start = collector.reclaimed_at
    collector.exited.extend((start, serial) for serial in range(1, 4))
    assert not collector.reclaim_due(start + RECLAIM_AFTER_S)  # three, and the last reclaim was just now
    assert collector.reclaim_due(start + RECLAIM_IDLE_S)
    collector.reclaim(start + RECLAIM_IDLE_S)
    later = start + RECLAIM_IDLE_S + RECLAIM_AFTER_S
    collector.exited.extend((later, serial) for serial in range(4, 4 + RECLAIM_BATCH))
    assert not collector.reclaim_due(later + RECLAIM_AFTER_S / 2)  # not yet a while ago
    assert collector.reclaim_due(later + RECLAIM_AFTER_S)  # a batch: at once


def _observation(kind: ObservationKind, *, serial: int, nr: int, count: int) -> Observation:
    return Observation(kind, serial, 0, nr, 0, 0, 0, 0, 0, count)
