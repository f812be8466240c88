"""Fixtures for tests that run real programs under `profiler run`."""

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("probe.py")
PYTHON = "/usr/bin/python3"
PROFILER = str(Path(sys.executable).with_name("profiler"))
EPERM, EACCES, EROFS, EAFNOSUPPORT, ENOSYS = 1, 13, 30, 97, 38
KILLED_BY_SIGSYS = 128 + 31

RunProfiler = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("confining a command (namespaces, mounts, another user) needs root")


@pytest.fixture
def profiler_run() -> RunProfiler:
    """`profiler run ARGS...` as a user types it; its output and exit status."""

    def run(*arguments: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROFILER, "run", *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )

    return run


@pytest.fixture
def shared_dirs() -> Iterator[tuple[Path, Path]]:
    """Two directories anyone may write to, outside /tmp (which PrivateTmp= replaces): (writable, other)."""
    base = Path("/var/lib") / f"profiler-run-test-{secrets.token_hex(4)}"
    writable, other = base / "writable", base / "other"
    for directory in (base, writable, other):
        directory.mkdir()
        directory.chmod(0o777)
    yield writable, other
    shutil.rmtree(base)


PRACTITIONER_UNIT = """\
[Service]
Type=oneshot
User=nobody
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ReadWritePaths={writable}
ProtectHome=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
SystemCallFilter=@system-service
SystemCallArchitectures=native
"""


def write_unit(directory: Path, text: str, name: str = "tool.service") -> Path:
    unit = directory / name
    unit.write_text(text)
    return unit
