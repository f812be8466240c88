"""The session through the fake tracer, without root or BPF: it starts a command or attaches to a process, ends
when the workload does, at --duration or on Ctrl-C, passes signals on, and gives the command's exit status."""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from profiler.recording.collector import Status
from profiler.recording.fake_tracer import FakeTracer
from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget, PidTarget
from profiler.trace import EndReason, RecordingMode


def _once(action: Callable[[], None]) -> Callable[[Status], None]:
    """A status callback that acts at the first status line: while the session's loop runs."""
    done: list[bool] = []

    def on_status(_status: Status) -> None:
        if not done:
            done.append(True)
            action()

    return on_status


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process running on its own, to attach to."""
    process = subprocess.Popen(["sleep", "30"])
    yield process
    process.kill()
    process.wait()


def test_a_command_is_started_under_the_tracer_and_its_exit_status_is_profilers(fake_tracer: FakeTracer) -> None:
    recording = record(CommandTarget(("sh", "-c", "exit 3")), tracer=fake_tracer)
    assert fake_tracer.spawned == 1
    assert recording.exit_status == 3
    run = recording.trace.run
    assert (run.mode, run.command, run.end_reason, run.exit_status) == (
        RecordingMode.COMMAND,
        ("sh", "-c", "exit 3"),
        EndReason.EXITED,
        3,
    )
    [process] = recording.trace.processes  # the fake's, from the exec it saw
    assert not process.attached and process.parent is None
    assert fake_tracer.signals == []


def test_duration_asks_the_command_to_stop_with_sigterm(fake_tracer: FakeTracer) -> None:
    recording = record(CommandTarget(("sleep", "30")), RecordOptions(duration_s=0.2), tracer=fake_tracer)
    assert recording.trace.run.end_reason is EndReason.DURATION
    assert recording.exit_status == 128 + signal.SIGTERM
    assert [number for *_, number in fake_tracer.signals][:1] == [signal.SIGTERM]


def test_ctrl_c_is_passed_on_to_the_command_and_the_handlers_are_put_back(fake_tracer: FakeTracer) -> None:
    before = signal.getsignal(signal.SIGINT)
    interrupt = _once(lambda: os.kill(os.getpid(), signal.SIGINT))
    recording = record(CommandTarget(("sleep", "30")), on_status=interrupt, tracer=fake_tracer)
    assert recording.trace.run.end_reason is EndReason.INTERRUPTED
    assert recording.exit_status == 128 + signal.SIGINT
    assert [number for *_, number in fake_tracer.signals][:1] == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_to_profiler_ends_every_process_of_the_command(fake_tracer: FakeTracer) -> None:
    terminate = _once(lambda: os.kill(os.getpid(), signal.SIGTERM))
    recording = record(CommandTarget(("sleep", "30")), on_status=terminate, tracer=fake_tracer)
    assert recording.trace.run.end_reason is EndReason.INTERRUPTED
    assert recording.exit_status == 128 + signal.SIGTERM
    # As systemd does: SIGTERM, then SIGCONT for a stopped process to act on it (if it has not ended already).
    sent = [number for *_, number in fake_tracer.signals]
    assert sent[0] == signal.SIGTERM and set(sent) <= {signal.SIGTERM, signal.SIGCONT}


def test_attaching_adopts_the_process_and_its_descendants_and_leaves_them_running(fake_tracer: FakeTracer) -> None:
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & wait"])
    try:
        while not (children := Path(f"/proc/{shell.pid}/task/{shell.pid}/children").read_text().split()):
            pass
        recording = record(PidTarget(shell.pid), RecordOptions(duration_s=0.2), tracer=fake_tracer)
        assert fake_tracer.adopted == [shell.pid, int(children[0])]
        run = recording.trace.run
        assert (run.mode, run.target, run.end_reason, recording.exit_status) == (
            RecordingMode.PID,
            str(shell.pid),
            EndReason.DURATION,
            0,
        )
        assert fake_tracer.signals == [] and shell.poll() is None
    finally:
        shell.kill()
        shell.wait()


def test_an_attached_recording_ends_when_the_process_is_gone(
    fake_tracer: FakeTracer, sleeper: subprocess.Popen[bytes]
) -> None:
    def end() -> None:
        sleeper.kill()
        sleeper.wait()

    recording = record(PidTarget(sleeper.pid), on_status=_once(end), tracer=fake_tracer)
    assert (recording.trace.run.end_reason, recording.exit_status) == (EndReason.EXITED, 0)


def test_ctrl_c_ends_an_attached_recording_with_profilers_status_and_no_signal_sent(
    fake_tracer: FakeTracer, sleeper: subprocess.Popen[bytes]
) -> None:
    interrupt = _once(lambda: os.kill(os.getpid(), signal.SIGINT))
    recording = record(PidTarget(sleeper.pid), on_status=interrupt, tracer=fake_tracer)
    assert (recording.trace.run.end_reason, recording.exit_status) == (EndReason.INTERRUPTED, 128 + signal.SIGINT)
    assert fake_tracer.signals == [] and sleeper.poll() is None
