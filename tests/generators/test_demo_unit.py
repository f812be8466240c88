"""The demo workload's whole unit, measured side by side with today's drop-in and a practitioner's unit, and run by a
real systemd 252: the system manager of systemd_manager.py, since the user manager cannot set up ProtectHome= or
ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs= (test_systemd_manager.py)."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from generators.interface import RenderOptions
from generators.sandbox import SandboxPlan, plan_sandbox, profile_facts
from generators.systemd.format import SystemdFormat
from generators.systemd.sandbox import refused_by_settings, sandbox_refusals
from tests.generators import systemd_analyze
from tests.generators.conftest import REPOSITORY, recorded_profile
from tests.generators.systemd_manager import SystemManager

SCRIPT = REPOSITORY / "demo" / "tool_executor.py"
PYTHON = "/usr/bin/python3"
# What a practitioner adds by hand to the lists profiler emits today, for a tool executor (issue 10).
PRACTITIONER = (
    "[Service]\nUser=tool-executor\nPrivateTmp=yes\nPrivateDevices=yes\nProtectSystem=strict\nProtectHome=yes\n"
    "ProtectControlGroups=yes\nProtectKernelModules=yes\nProtectKernelTunables=yes\n"
)


def _line(text: str, setting: str) -> int:
    return text.splitlines().index(setting) + 1


def _refusals(unit: Path, plan: SandboxPlan, systemd: SystemdFormat) -> list[str]:
    """What check says the unit (with its drop-ins) would refuse of the runs."""
    settings = systemd.read(unit).sandbox
    return [
        f"{refusal.at.key}={refusal.at.value} (line {refusal.at.line}) refuses {refusal.refused}: {refusal.fix}"
        for refusal in sandbox_refusals(settings, plan)
    ]


@pytest.mark.usefixtures("systemd_analyze")
def test_the_demo_runs_under_its_whole_unit_which_scores_at_most_1_5(
    system_manager: SystemManager, systemd: SystemdFormat, cache: Path, tmp_path: Path
) -> None:
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/root", "CACHE_DIRECTORY": str(cache)}
    profile = recorded_profile(PYTHON, str(SCRIPT), env=environment)
    unconfined = subprocess.run([PYTHON, SCRIPT], capture_output=True, text=True, env=environment, check=True)
    shutil.rmtree(cache)
    assert profile.sandbox is not None, "the recorder recorded no files"
    plan = plan_sandbox(profile.sandbox, profile_facts(profile, 1), refused_by_settings(systemd.groups))
    # Today's drop-in is the one a trace without files gets: "not recorded" keeps it as it was.
    drop_in = systemd.render(dataclasses.replace(profile, sandbox=None), RenderOptions())
    whole = systemd.render(profile, RenderOptions())
    unit = f"[Service]\nType=oneshot\nEnvironment=CACHE_DIRECTORY={cache}\nExecStart={PYTHON} {SCRIPT}\n"
    units = {}
    for name, text in {"whole": whole, "drop-in": drop_in, "practitioner": drop_in + PRACTITIONER}.items():
        (tmp_path / name).mkdir()
        units[name] = systemd_analyze.write_unit(tmp_path / name, "demo", text, unit)
    scores = {name: systemd_analyze.exposure(path) for name, path in units.items()}
    assert scores["whole"] <= 1.5 < scores["practitioner"] < scores["drop-in"], scores

    ran = system_manager.run("demo", unit, {"profiler.conf": whole})
    assert ran.succeeded and ran.stdout == unconfined.stdout, ran
    assert _refusals(units["whole"], plan, systemd) == []

    # Without its cache directory, or with ProtectHome=yes (its probe of /root/.config then fails with EACCES, not
    # ENOENT, since the unit leaves it no CAP_DAC_OVERRIDE), the demo fails; check says so first.
    cache_line = f"CacheDirectory={cache.name}\n"
    broken = {"no-cache": whole.replace(cache_line, ""), "home": whole.replace("ProtectHome=tmpfs", "ProtectHome=yes")}
    assert cache_line in whole and "ProtectHome=tmpfs\n" in whole
    named = {}
    for name, text in broken.items():
        (tmp_path / name).mkdir()
        named[name] = _refusals(systemd_analyze.write_unit(tmp_path / name, "demo", text, unit), plan, systemd)
    protect = _line(broken["no-cache"], "ProtectSystem=strict")
    assert named["no-cache"] == [
        f"ProtectSystem=strict (line {protect}) refuses the write to {cache} by /usr/bin/python3: {cache_line.strip()}"
    ]
    [home] = named["home"]
    assert home.startswith(
        f"ProtectHome=yes (line {_line(broken['home'], 'ProtectHome=yes')}) refuses failed probe of "
    )
    assert "/root/.config/tool-executor.json" in home and home.endswith(": ProtectHome=tmpfs")
    for name, text in broken.items():
        shutil.rmtree(cache, ignore_errors=True)
        failed = system_manager.run(f"demo-{name}", unit, {"profiler.conf": text})
        assert (failed.result, failed.status) == ("exit-code", 1), (name, failed)

    # Without the directories its libraries are mapped from (/lib links to /usr/lib: both as the run named them),
    # python cannot start: systemd's exec of it fails (203); check names the first library refused.
    libraries = ("ExecPaths=/lib/x86_64-linux-gnu\n", "ExecPaths=/usr/lib/x86_64-linux-gnu\n")
    assert all(line in whole for line in libraries)
    no_libraries = whole.replace(libraries[0], "").replace(libraries[1], "")
    (tmp_path / "no-libraries").mkdir()
    refused = _refusals(
        systemd_analyze.write_unit(tmp_path / "no-libraries", "demo", no_libraries, unit), plan, systemd
    )
    noexec = _line(no_libraries, "NoExecPaths=/")
    assert any(
        each.startswith(f"NoExecPaths=/ (line {noexec}) refuses the map-exec of /lib/x86_64-linux-gnu/lib")
        and each.endswith(": ExecPaths=/lib/x86_64-linux-gnu")
        for each in refused
    ), refused
    assert any(each.endswith(": ExecPaths=/usr/lib/x86_64-linux-gnu") for each in refused), refused
    failed = system_manager.run("demo-no-libraries", unit, {"profiler.conf": no_libraries})
    assert (failed.result, failed.status) == ("exit-code", 203), failed
