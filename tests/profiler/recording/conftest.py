"""Fixtures for tests that record real programs under the real tracer."""

import contextlib
import fcntl
import functools
import os
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator

import pytest

from profiler.errors import ProfilerError
from profiler.recording.fake_tracer import FakeTracer
from profiler.recording.kernel_features import probe
from profiler.recording.session import Recording, RecordOptions, record
from profiler.recording.targets import CommandTarget, User
from profiler.trace import Trace


@functools.cache
def _tracing_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "recording loads eBPF programs, which needs root"
    try:
        probe()
    except ProfilerError as error:
        return str(error)
    return None


@pytest.fixture
def fake_tracer() -> FakeTracer:
    """The library's stand-in for the tracer: a test that takes it runs without root or BPF."""
    return FakeTracer()


@pytest.fixture(autouse=True)
def tracing(request: pytest.FixtureRequest) -> None:
    """Every test here traces for real but those through the fake tracer; it skips only where this kernel or
    user cannot, saying why."""
    if "fake_tracer" in request.fixturenames:
        return
    reason = _tracing_unavailable()
    if reason:
        pytest.skip(reason)


RecordCommand = Callable[..., Recording]


@pytest.fixture
def record_command() -> RecordCommand:
    """Records a command through the library: record_command("sh", "-c", "...", user=None, options=None)."""

    def run(*argv: str, user: str | None = None, options: RecordOptions | None = None) -> Recording:
        target = CommandTarget(tuple(argv), User.lookup(user) if user else None)
        return record(target, options or RecordOptions())

    return run


PROFILER = [sys.executable, "-m", "profiler.cli"]


def profiler_cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Runs the profiler command as a user would, capturing its output."""
    return subprocess.run([*PROFILER, *args], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def programs(trace: Trace) -> list[str]:
    return [image.path for process in trace.processes for image in process.images]


def syscall_names(trace: Trace) -> set[str]:
    return {use.name for use in trace.syscalls if use.name}


def which(program: str) -> str:
    found = shutil.which(program)
    assert found, f"{program} is installed by make install"
    return found


class Terminal:
    """A pseudo-terminal the test owns, standing for the operator's: profiler runs on it as from a login shell,
    with it as controlling terminal, in the foreground. The test types into it and reads the screen."""

    def __init__(self, rows: int = 24, columns: int = 80):
        self.master, self.slave = os.openpty()
        self.resize(rows, columns)
        self.screen = b""

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)

    def resize(self, rows: int, columns: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def start(self, argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Runs argv as the terminal's session leader (so that the terminal is its controlling one)."""
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            argv,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            **kwargs,
        )

    def profiler(self, *args: str) -> subprocess.Popen[bytes]:
        return self.start([*PROFILER, *args])

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def read_until(self, text: bytes, timeout_s: float = 30) -> bytes:
        """What the screen showed until text appeared on it (everything shown so far stays in self.screen)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} not on the screen after {timeout_s} s: {self.screen!r}"
            readable, _, _ = select.select([self.master], [], [], remaining)
            if readable:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:  # EIO: nothing holds the terminal any more
                    break
        return self.screen

    def wait(self, process: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
        """The exit status of process, reading the screen meanwhile so that its output never blocks it."""
        deadline = time.monotonic() + timeout_s
        while process.poll() is None:
            assert time.monotonic() < deadline, f"still running after {timeout_s} s: {self.screen!r}"
            readable, _, _ = select.select([self.master], [], [], 0.1)
            if readable:
                with contextlib.suppress(OSError):
                    self.screen += os.read(self.master, 65536)
        return process.returncode

    def pending_input(self) -> bytes:
        """What waits on the operator's terminal to be read by the next program, its shell: what was typed (or
        pushed with TIOCSTI) and nobody consumed."""
        tty.setraw(self.slave, termios.TCSANOW)  # not TCSAFLUSH, which would discard it; and a line without its
        # newline counts too
        os.set_blocking(self.slave, False)
        try:
            return os.read(self.slave, 65536)
        except BlockingIOError:
            return b""
        finally:
            os.set_blocking(self.slave, True)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    made = Terminal()
    yield made
    made.close()
