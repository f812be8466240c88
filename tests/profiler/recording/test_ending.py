"""However a recording of a command ends, no process of the command's tree is left, and the trace says how it ended."""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from profiler import trace as trace_module
from profiler.recording import session
from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget
from profiler.recording.workload_cgroup import own_cgroup
from profiler.trace import EndReason
from tests.profiler.recording.conftest import PROFILER


def workload(marker: str, ignore_sigterm: bool = False) -> list[str]:
    """sh with two children and a grandchild that double-forks into a session of its own; each sleep's argument
    is the marker, to find them. A non-interactive shell's background jobs ignore SIGINT."""
    ignore = "trap '' TERM; " if ignore_sigterm else ""
    return ["sh", "-c", f"{ignore}sleep {marker} & sleep {marker} & (setsid sleep {marker} &); wait"]


def workload_processes(marker: str, programs: tuple[bytes, ...] = (b"sh", b"setsid", b"sleep")) -> list[int]:
    """The processes running one of programs with the marker (profiler's own command line holds it too)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and argv[0] in programs and marker.encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def wait_for(predicate: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not so after {timeout_s} s"
        time.sleep(0.05)


@pytest.fixture
def marker() -> str:
    """A sleep duration no other process uses; whatever a test leaves with it is killed afterwards."""
    chosen = f"{1000 + random.random() * 1000:.6f}"
    yield chosen
    for pid in workload_processes(chosen):
        os.kill(pid, signal.SIGKILL)


def start_recording(marker: str, output: Path, *options: str, ignore_sigterm: bool = False) -> subprocess.Popen[bytes]:
    """profiler record of the workload, in a session of its own, once the whole workload runs."""
    profiler = subprocess.Popen(
        [*PROFILER, "record", "-o", str(output), *options, "--", *workload(marker, ignore_sigterm)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # the workload would hold a pipe open
    )
    wait_for(lambda: len(workload_processes(marker, (b"sleep",))) == 3)
    return profiler


@pytest.mark.parametrize(
    ("sent", "exit_status", "sleeps_end_by"),
    [
        # Passed on to the foreground process group: sh dies of it; the sleeps ignore it and are killed a second on.
        (signal.SIGINT, 128 + signal.SIGINT, "SIGKILL"),
        # Passed on to every process of the tree, as systemd stops a service.
        (signal.SIGTERM, 128 + signal.SIGTERM, "SIGTERM"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "SIGHUP"),
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_signal_to_profiler_ends_the_whole_tree(
    marker: str, tmp_path: Path, sent: signal.Signals, exit_status: int, sleeps_end_by: str
) -> None:
    output = tmp_path / "signalled.trace.json"
    profiler = start_recording(marker, output)
    os.kill(profiler.pid, sent)
    assert profiler.wait(timeout=30) == exit_status
    assert workload_processes(marker) == []
    run = trace_module.load(output)
    assert (run.run.end_reason, run.run.exit_status) == (EndReason.INTERRUPTED, exit_status)
    sleeps = [p for p in run.processes if p.images[-1].path.endswith("/sleep")]
    assert len(sleeps) == 3 and {p.exit_signal for p in sleeps} == {sleeps_end_by}


def test_duration_kills_a_tree_that_ignores_sigterm_after_the_grace_period(marker: str, tmp_path: Path) -> None:
    output = tmp_path / "duration.trace.json"
    profiler = start_recording(marker, output, "--duration", "1", ignore_sigterm=True)
    assert profiler.wait(timeout=30) == 128 + signal.SIGKILL
    assert workload_processes(marker) == []
    trace = trace_module.load(output)
    assert (trace.run.end_reason, trace.run.exit_status) == (EndReason.DURATION, 128 + signal.SIGKILL)
    assert 1 + session.DURATION_GRACE_S <= trace.run.duration_s < 1 + session.DURATION_GRACE_S + 3
    sleeps = [p for p in trace.processes if p.images[-1].path.endswith("/sleep")]
    assert len(sleeps) == 3 and {p.exit_signal for p in [trace.processes[0], *sleeps]} == {"SIGKILL"}


def test_sigkill_of_profiler_ends_the_tree_through_the_watchdog(marker: str, tmp_path: Path) -> None:
    profiler = start_recording(marker, tmp_path / "never.trace.json")
    os.kill(profiler.pid, signal.SIGKILL)
    profiler.wait()
    wait_for(lambda: workload_processes(marker) == [], timeout_s=10)
    own = own_cgroup()
    assert own is not None, "this host has cgroup2 (the fallback has its own test)"
    wait_for(lambda: not list(own.glob(f"profiler-record-{profiler.pid}-*")), timeout_s=10)


def test_without_a_cgroup_the_tree_is_still_killed_process_by_process(
    marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a host without cgroup2: the tracer's list of the tree is all there is.
    monkeypatch.setattr(session.WorkloadCgroup, "create", classmethod(lambda cls: None))
    recording = record(CommandTarget(tuple(workload(marker, ignore_sigterm=True))), RecordOptions(duration_s=1))
    assert workload_processes(marker) == []
    assert recording.trace.run.exit_status == 128 + signal.SIGKILL
    sleeps = [p for p in recording.trace.processes if p.images[-1].path.endswith("/sleep")]
    assert len(sleeps) == 3 and {p.exit_signal for p in [recording.trace.processes[0], *sleeps]} == {"SIGKILL"}


def test_an_exit_status_is_never_made_up(tmp_path: Path) -> None:
    """A command that ends of itself within the grace period has its own status in the trace."""
    output = tmp_path / "graceful.trace.json"
    script = "trap 'exit 7' TERM; sleep 30 & wait"
    result = subprocess.run(
        [*PROFILER, "record", "-o", str(output), "--duration", "1", "--", "sh", "-c", script],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 7, result.stderr
    trace = trace_module.load(output)
    assert (trace.run.end_reason, trace.run.exit_status) == (EndReason.DURATION, 7)
    assert trace.run.duration_s < 1 + session.DURATION_GRACE_S, "it ended as soon as the tree had"
