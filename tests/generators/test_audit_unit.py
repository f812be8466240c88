"""The job a tool executor exists for, a dependency audit by pip-audit from PyPI as an unprivileged user, run by a real
systemd 252 under the whole unit generated from its committed recording (traces/pip-audit.trace.json), and measured
against the drop-in of before: the system manager of systemd_manager.py, since the unit has ProtectHome= and
ProtectKernelTunables= and their kin, which the user manager cannot set up."""

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from generators.interface import RenderOptions
from generators.profile import Evidence, FileNeed, FileOp
from generators.sandbox import plan_sandbox, profile_facts
from generators.systemd.format import SystemdFormat
from generators.systemd.sandbox import refused_by_settings
from tests.generators import systemd_analyze
from tests.generators.conftest import LoadTraces
from tests.generators.systemd_manager import SystemManager
from tests.generators.test_demo_unit import _line, _refusals

# Where traces/record-all.sh installed the audit it recorded (the unit names these paths).
AUDIT = Path("/opt/profiler-pip-audit")
PIP_AUDIT = AUDIT / "venv" / "bin" / "pip-audit"
REQUIREMENTS = AUDIT / "requirements.txt"
CACHE = Path("/var/cache/profiler-pip-audit")
# profiler record --user keeps the recorder's environment, so the recorded run had root's HOME (its probes of
# /root failed with EACCES) and this machine's certificate settings (TLS to PyPI passes a proxy whose CA only the
# system bundle holds, which pip's and requests' own bundles lack): the unit gives the job the same ones.
PASSED = ("HOME", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "PIP_FIND_LINKS")
COMMAND = f"{PIP_AUDIT} --cache-dir {CACHE} --requirement {REQUIREMENTS} --progress-spinner off"


def _installed_audit() -> None:
    """The audit as record-all.sh installs it; a test skips only where PyPI cannot be reached to install it."""
    if not PIP_AUDIT.exists():
        made = subprocess.run(["/usr/bin/python3", "-m", "venv", str(AUDIT / "venv")], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        pip = [str(AUDIT / "venv" / "bin" / "pip"), "install", "--quiet", "pip-audit==2.10.1"]
        if subprocess.run(pip, capture_output=True, text=True).returncode != 0:
            pytest.skip("PyPI cannot be reached: pip-audit 2.10.1 cannot be installed")
    REQUIREMENTS.write_text("requests==2.25.0\n")


@pytest.mark.usefixtures("systemd_analyze")
def test_pip_audit_runs_under_its_whole_unit_which_scores_below_the_drop_in(
    system_manager: SystemManager, systemd: SystemdFormat, committed_profile: LoadTraces, tmp_path: Path
) -> None:
    _installed_audit()
    CACHE.mkdir(exist_ok=True)
    shutil.chown(CACHE, "nobody")  # as record-all.sh makes it for the recording
    unconfined = subprocess.run(
        ["runuser", "-u", "nobody", "--", "env", f"HOME={os.environ['HOME']}", *COMMAND.split()],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    if unconfined.returncode != 0:
        pytest.skip(f"PyPI cannot be reached: pip-audit cannot install the requirements: {unconfined.stderr[-300:]}")
    profile = committed_profile("pip-audit")
    assert profile.sandbox is not None, "traces/pip-audit.trace.json recorded no files"
    plan = plan_sandbox(profile.sandbox, profile_facts(profile, 1), refused_by_settings(systemd.groups))
    whole = systemd.render(profile, RenderOptions())
    drop_in = systemd.render(dataclasses.replace(profile, sandbox=None), RenderOptions())
    environment = "".join(f'Environment="{name}={os.environ[name]}"\n' for name in PASSED if name in os.environ)
    unit = f"[Service]\nType=oneshot\n{environment}ExecStart={COMMAND}\n"
    units = {}
    for name, text in {"whole": whole, "drop-in": drop_in}.items():
        (tmp_path / name).mkdir()
        units[name] = systemd_analyze.write_unit(tmp_path / name, "pip-audit", text, unit)
    scores = {name: systemd_analyze.exposure(path) for name, path in units.items()}
    assert scores["whole"] <= 1.5 < scores["drop-in"], scores
    # It connected beyond loopback (a DNS server, PyPI): the network stays open, and the line says why.
    assert "PrivateNetwork=yes" not in whole and "# PrivateNetwork= left open: connect " in whole

    ran = system_manager.run("pip-audit", unit, {"profiler.conf": whole})
    assert ran.succeeded and ran.stdout == unconfined.stdout, ran
    assert _refusals(units["whole"], plan, systemd) == []

    # The audit's entry point is a script in its venv's bin (its python there is a link to /usr/bin/python3, and
    # noexec applies where a link leads): without ExecPaths= of that directory systemd cannot start it (203); check
    # names the line first.
    exec_bin = f"ExecPaths={PIP_AUDIT.parent}\n"
    assert exec_bin in whole
    broken = whole.replace(exec_bin, "")
    (tmp_path / "no-exec-bin").mkdir()
    refused = _refusals(systemd_analyze.write_unit(tmp_path / "no-exec-bin", "pip-audit", broken, unit), plan, systemd)
    noexec = _line(broken, "NoExecPaths=/")
    assert any(
        each.startswith(f"NoExecPaths=/ (line {noexec}) refuses the exec of {PIP_AUDIT}")
        and each.endswith(f": {exec_bin.strip()}")
        for each in refused
    ), refused
    failed = system_manager.run("pip-audit-no-exec-bin", unit, {"profiler.conf": broken})
    assert (failed.result, failed.status) == ("exit-code", 203), failed

    # A run that reaches the vulnerability services writes its cache (levels of directories, then the entry) in
    # the directory record-all.sh made for nobody before the run: one there before is not CacheDirectory=, which
    # would have systemd chown it and all in it at start, so the unit opens it with ReadWritePaths= and runs as
    # nobody, not as a user allocated at start; pip-audit runs under it as well.
    evidence = Evidence((0,), 1, (str(PIP_AUDIT),), None)
    levels = (f"{CACHE}/0", f"{CACHE}/0/a", f"{CACHE}/0/a/entry")
    observed = dataclasses.replace(
        profile.sandbox, files=profile.sandbox.files + tuple(FileNeed(p, FileOp.CREATE, None, evidence) for p in levels)
    )
    cached = systemd.render(dataclasses.replace(profile, sandbox=observed), RenderOptions())
    assert f"ReadWritePaths={CACHE}\n" in cached and "\nCacheDirectory=" not in cached
    assert "User=nobody\n" in cached and "DynamicUser=yes" not in cached
    (tmp_path / "cached").mkdir()
    score = systemd_analyze.exposure(systemd_analyze.write_unit(tmp_path / "cached", "pip-audit", cached, unit))
    assert scores["whole"] < score <= 1.5, score
    ran = system_manager.run("pip-audit-cached", unit, {"profiler.conf": cached})
    assert ran.succeeded and ran.stdout == unconfined.stdout, ran
