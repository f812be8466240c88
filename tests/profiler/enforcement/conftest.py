"""Fixtures for tests that run real programs under `profiler run`."""

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _outside_tmp(*names: str) -> tuple[Path, ...]:
    """The probe scripts, copied where a confined command finds them: a checkout under /tmp is hidden from it by
    PrivateTmp= (as root only: the tests that run them need root)."""
    here = Path(__file__).parent
    if os.geteuid() != 0:
        return tuple(here / name for name in names)
    directory = Path(tempfile.mkdtemp(prefix="profiler-run-probes-", dir="/var/lib"))
    directory.chmod(0o755)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    for name in names:
        shutil.copy(here / name, directory / name)
        (directory / name).chmod(0o644)
    return tuple(directory / name for name in names)


PROBE, NETWORK_PROBE = _outside_tmp("probe.py", "network_probe.py")
PYTHON = "/usr/bin/python3"
PROFILER = str(Path(sys.executable).with_name("profiler"))
EPERM, ENOENT, EACCES, EROFS, EAFNOSUPPORT, ENETUNREACH, ENOSYS = 1, 2, 13, 30, 97, 101, 38
KILLED_BY_SIGSYS = 128 + 31

RunProfiler = Callable[..., subprocess.CompletedProcess[str]]


def host_address() -> str:
    """An address of this host's own network, which the host reaches."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        return str(probe.getsockname()[0])


@pytest.fixture(autouse=True)
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("confining a command (namespaces, mounts, another user) needs root")


@pytest.fixture
def tracing_available() -> None:
    """For the tests of what eBPF sees (the refusal watch, an audit's recording): skipped only where it cannot."""
    from tests.profiler.recording.conftest import _tracing_unavailable

    reason = _tracing_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def profiler_run() -> RunProfiler:
    """`profiler run ARGS...` as a user types it; its output and exit status. It starts in / (systemd's default
    WorkingDirectory=), not in the checkout, which may be under a /tmp that PrivateTmp= replaces; PWD says so too
    (a shell stats $PWD as it starts: a checkout's path there is a refusal an audit names)."""

    def run(*arguments: str, timeout: float = 60, cwd: Path = Path("/")) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROFILER, "run", *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, "PWD": str(cwd)},
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
