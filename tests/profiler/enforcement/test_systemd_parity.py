"""The practitioner's unit confines a tool the same under `profiler run --policy unit.service` as under a real
systemd 252: each way out, tried under both, is refused alike (compared by result and exit status).

The root user manager these tests run units under fails ProtectHome= with exit 226 (namespace set-up), so the
systemd side runs the unit without it; its effect under `run` is proven in test_escapes."""

from pathlib import Path

import pytest

from tests.generators import systemd_analyze
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


def test_each_way_out_is_refused_as_systemd_refuses_it(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)
    writable, other = shared_dirs
    probes = {**PROBES, "write-inside": ("write", str(writable / "a")), "write-outside": ("write", str(other / "b"))}
    unit = PRACTITIONER_UNIT.format(writable=writable)
    under_systemd = "".join(line + "\n" for line in unit.splitlines() if not line.startswith("ProtectHome="))
    units = {
        name: (under_systemd + f"ExecStart={PYTHON} {PROBE} {' '.join(probe)}\n", None)
        for name, probe in probes.items()
    }
    systemd = systemd_analyze.run_units(tmp_path / "systemd", units)
    policy = write_unit(tmp_path, unit)
    profiler = {
        name: _as_systemd_reports(profiler_run("--policy", str(policy), "--", PYTHON, str(PROBE), *probe).returncode)
        for name, probe in probes.items()
    }
    assert profiler == systemd
    # Not a comparison of two things that let everything through: most ways out are refused.
    assert sum(result != ("success", 0) for result in systemd.values()) >= 6
