"""The demo workload's whole unit, measured side by side with today's drop-in and a practitioner's unit, and run by a
real systemd 252: the system manager of systemd_manager.py, since the user manager cannot set up ProtectHome= or
ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs= (test_systemd_manager.py)."""

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from generators.interface import RenderOptions
from generators.profile import Profile
from generators.sandbox import SandboxPlan, plan_sandbox, profile_facts
from generators.systemd.format import SystemdFormat
from generators.systemd.names import OVERRIDING_SETTINGS
from generators.systemd.sandbox import SandboxReading, sandbox_lines, sandbox_refusals
from generators.systemd.unit_syntax import parse_unit_text, split_words
from tests.generators import systemd_analyze
from tests.generators.conftest import REPOSITORY, recorded_profile
from tests.generators.sandbox_builders import demo_observations
from tests.generators.systemd_manager import SystemManager

SCRIPT = REPOSITORY / "demo" / "tool_executor.py"
PYTHON = "/usr/bin/python3"
# What a practitioner adds by hand to the lists profiler emits today, for a tool executor (issue 10).
PRACTITIONER = (
    "[Service]\nUser=tool-executor\nPrivateTmp=yes\nPrivateDevices=yes\nProtectSystem=strict\nProtectHome=yes\n"
    "ProtectControlGroups=yes\nProtectKernelModules=yes\nProtectKernelTunables=yes\n"
)


@pytest.fixture
def cache() -> Iterator[Path]:
    """The demo's cache directory, of this test's own: CacheDirectory=NAME makes it under the unit."""
    path = Path("/var/cache") / f"profiler-test-{secrets.token_hex(4)}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _plan(profile: Profile, systemd: SystemdFormat, cache: Path) -> SandboxPlan:
    refusals = {
        key: frozenset(each for name in names for each in (systemd.groups.expand(name) if name[0] == "@" else [name]))
        for key, (names, _) in OVERRIDING_SETTINGS.items()
    }
    return plan_sandbox(demo_observations(str(SCRIPT), str(cache)), profile_facts(profile, 1), refusals)


def _sandbox_text(plan: SandboxPlan) -> str:
    return "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)


def _refusals(unit: str, drop_in: str, plan: SandboxPlan) -> list[str]:
    reading = SandboxReading()
    for text, source in ((unit, "demo.service"), (drop_in, "profiler.conf")):
        for at in parse_unit_text(text, source, frozenset({"Service"})).assignments:
            reading.apply(at.key, at.value, at.source, at.line, split_words(at.value, unquote=True)[0])
    return [
        f"{refusal.at.where} refuses {refusal.refused}: {refusal.fix}" for refusal in sandbox_refusals(reading, plan)
    ]


@pytest.mark.usefixtures("systemd_analyze")
def test_the_demo_runs_under_its_whole_unit_which_scores_at_most_1_5(
    system_manager: SystemManager, systemd: SystemdFormat, cache: Path, tmp_path: Path
) -> None:
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/root", "CACHE_DIRECTORY": str(cache)}
    profile = recorded_profile(PYTHON, str(SCRIPT), env=environment)
    unconfined = subprocess.run([PYTHON, SCRIPT], capture_output=True, text=True, env=environment, check=True)
    shutil.rmtree(cache)
    plan = _plan(profile, systemd, cache)
    drop_in = systemd.render(profile, RenderOptions())
    whole = drop_in + _sandbox_text(plan)
    unit = f"[Service]\nType=oneshot\nEnvironment=CACHE_DIRECTORY={cache}\nExecStart={PYTHON} {SCRIPT}\n"
    scores = {}
    for name, text in {"whole": whole, "drop-in": drop_in, "practitioner": drop_in + PRACTITIONER}.items():
        (tmp_path / name).mkdir()
        scores[name] = systemd_analyze.exposure(systemd_analyze.write_unit(tmp_path / name, "demo", text, unit))
    assert scores["whole"] <= 1.5 < scores["practitioner"] < scores["drop-in"], scores

    ran = system_manager.run("demo", unit, {"profiler.conf": whole})
    assert ran.succeeded and ran.stdout == unconfined.stdout, ran
    assert _refusals(unit, whole, plan) == []

    # Without its cache directory, or with ProtectHome=yes (its probe of /root/.config then fails with EACCES, not
    # ENOENT, since the unit leaves it no CAP_DAC_OVERRIDE), the demo fails; check says so first.
    cache_line = f"CacheDirectory={cache.name}\n"
    broken = {"no-cache": whole.replace(cache_line, ""), "home": whole.replace("ProtectHome=tmpfs", "ProtectHome=yes")}
    assert cache_line in whole and "ProtectHome=tmpfs\n" in whole
    named = {name: _refusals(unit, text, plan) for name, text in broken.items()}
    assert named["no-cache"][0].endswith(f"refuses the write to {cache} by /usr/bin/python3.11: {cache_line.strip()}")
    assert named["home"][0].startswith("ProtectHome=yes (profiler.conf:")
    assert "probe of /root/.config/tool-executor.json" in named["home"][0]
    for name, text in broken.items():
        shutil.rmtree(cache, ignore_errors=True)
        failed = system_manager.run(f"demo-{name}", unit, {"profiler.conf": text})
        assert (failed.result, failed.status) == ("exit-code", 1), (name, failed)
