"""The practitioner's unit confines a tool the same under `profiler run --policy unit.service` as under a real
systemd 252: each way out, tried under both, is refused alike (compared by result and exit status).

systemd runs the unit whole, ProtectHome= included, as a system manager: PID 1 of namespaces of its own
(tests/generators/systemd_manager.py: only the units written there, none pulls in sysinit.target). The root user
manager cannot set ProtectHome= up (exit 226)."""

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.generators.systemd_manager import SystemManager, cannot_run_system_manager, system_manager
from tests.profiler.enforcement.conftest import PRACTITIONER_UNIT, PROBE, PYTHON, RunProfiler, write_unit

PROBES: dict[str, tuple[str, ...]] = {
    "setuid-root": ("setuid-root",),
    "af-packet": ("af-packet",),
    "unshare-user": ("unshare-user",),
    "ptrace-parent": ("ptrace-parent",),
    "syscall-32": ("syscall-32",),
    "load-module": ("load-module", "/dev/null"),
    "bind-80": ("bind-80",),
    "status": ("status",),
}


def _as_systemd_reports(exit_status: int) -> tuple[str, int]:
    """profiler's exit status as systemd's Result and ExecMainStatus."""
    if exit_status == 0:
        return ("success", 0)
    if exit_status > 128:
        return ("signal", exit_status - 128)
    return ("exit-code", exit_status)


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[SystemManager]:
    reason = cannot_run_system_manager()
    if reason:
        pytest.skip(reason)
    with system_manager(tmp_path) as running:
        yield running


@pytest.fixture
def home_directory() -> Iterator[Path]:
    """A directory under /home anyone may write to: what ProtectHome= takes away, and nothing else would."""
    directory = Path("/home") / f"profiler-run-test-{secrets.token_hex(4)}"
    directory.mkdir()
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory)


def test_each_way_out_is_refused_as_systemd_refuses_it(
    profiler_run: RunProfiler,
    manager: SystemManager,
    shared_dirs: tuple[Path, Path],
    home_directory: Path,
    tmp_path: Path,
) -> None:
    writable, other = shared_dirs
    probes = {
        **PROBES,
        "write-inside": ("write", str(writable / "a")),
        "write-outside": ("write", str(other / "b")),
        "write-home": ("write", str(home_directory / "c")),
    }
    unit = PRACTITIONER_UNIT.format(writable=writable)
    assert "ProtectHome=yes" in unit.splitlines()
    systemd = {}
    for name, probe in probes.items():
        ran = manager.run(name, unit + f"ExecStart={PYTHON} {PROBE} {' '.join(probe)}\n")
        systemd[name] = (ran.result, ran.status)
    policy = write_unit(tmp_path, unit)
    profiler = {
        name: _as_systemd_reports(profiler_run("--policy", str(policy), "--", PYTHON, str(PROBE), *probe).returncode)
        for name, probe in probes.items()
    }
    assert profiler == systemd
    # Not a comparison of two things that let everything through: most ways out are refused, /home among them.
    assert sum(result != ("success", 0) for result in systemd.values()) >= 7
    assert systemd["write-home"] != ("success", 0)
    assert not (home_directory / "c").exists()


def test_a_writable_path_through_a_symbolic_link_is_writable_as_under_systemd(
    profiler_run: RunProfiler, manager: SystemManager, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """systemd follows a ReadWritePaths= link: the directory it points to is writable, by either name. run bound
    that directory, then made it read-only again (it kept the link's name, not the mount's)."""
    writable, other = shared_dirs
    link = other / "link"
    link.symlink_to(writable)
    unit = f"[Service]\nType=oneshot\nProtectSystem=strict\nReadWritePaths={link}\n"
    probes = {"through-link": str(link / "a"), "to-target": str(writable / "b"), "beside": str(other / "c")}
    systemd = {
        name: (ran.result, ran.status)
        for name, path in probes.items()
        for ran in [manager.run(name, unit + f"ExecStart={PYTHON} {PROBE} write {path}\n")]
    }
    assert systemd["through-link"] == systemd["to-target"] == ("success", 0) != systemd["beside"]
    policy = write_unit(tmp_path, unit)
    profiler = {
        name: _as_systemd_reports(
            profiler_run("--policy", str(policy), "--", PYTHON, str(PROBE), "write", path).returncode
        )
        for name, path in probes.items()
    }
    assert profiler == systemd
