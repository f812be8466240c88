"""Fixtures for tests that record real programs under the real tracer."""

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

from profiler.errors import ProfilerError
from profiler.kernel_features import probe
from profiler.recorder import CommandTarget, Recording, RecordOptions, User, record
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


@pytest.fixture(autouse=True)
def tracing() -> None:
    """Every test here traces for real; it skips only where this kernel or user cannot, saying why."""
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
