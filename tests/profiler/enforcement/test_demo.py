"""The demo executor under its own learned policy: enforced with the same output; with a syscall it needs taken
out, it fails and the report names the syscall and the program; audited, the run goes on and the audit names it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.profiler.enforcement.conftest import PROFILER, RunProfiler
from tests.profiler.recording.conftest import _tracing_unavailable

DEMO = Path(__file__).parents[3] / "demo" / "tool_executor.py"
# Python lists directories as it starts, and the demo runs `ls`: both need it.
NEEDED = "getdents64"


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(the trace of a recorded demo run, its drop-in without one needed line, the demo's output)."""
    reason = _tracing_unavailable()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("demo")
    trace = directory / "demo.trace.json"
    recorded = subprocess.run(
        [PROFILER, "record", "-o", str(trace), "--", sys.executable, str(DEMO)], capture_output=True, text=True
    )
    assert recorded.returncode == 0, recorded.stderr
    dropin = subprocess.run([PROFILER, "generate", "--format", "systemd", str(trace)], capture_output=True, text=True)
    lines = dropin.stdout.splitlines()
    assert f"SystemCallFilter={NEEDED}" in lines
    broken = directory / "demo-without-getdents64.conf"
    broken.write_text("".join(f"{line}\n" for line in lines if line != f"SystemCallFilter={NEEDED}"))
    return trace, broken, recorded.stdout


pytestmark = pytest.mark.tracing


def test_the_demo_runs_enforced_under_its_own_policy_with_the_same_output(
    profiler_run: RunProfiler, learned: tuple[Path, Path, str], tmp_path: Path
) -> None:
    trace, _, output = learned
    report = tmp_path / "report.json"
    done = profiler_run("--policy", str(trace), "--report", str(report), "--", sys.executable, str(DEMO))
    assert (done.returncode, done.stdout) == (0, output), done.stderr
    refused = json.loads(report.read_text())["refused"]
    # Only what the policy refuses by design: clone3 with ENOSYS (RestrictNamespaces=), so libc uses clone.
    assert {(each["syscall"], each["errno"]) for each in refused} <= {("clone3", "ENOSYS")}


def test_without_a_needed_syscall_it_fails_and_the_report_names_it(
    profiler_run: RunProfiler, learned: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, broken, _ = learned
    report = tmp_path / "report.json"
    done = profiler_run("--policy", str(broken), "--report", str(report), "--", sys.executable, str(DEMO))
    assert done.returncode != 0
    assert f"refused: {NEEDED} by /usr/bin/python3" in done.stderr
    assert "EPERM from SystemCallFilter=" in done.stderr
    named = [each for each in json.loads(report.read_text())["refused"] if each.get("syscall") == NEEDED]
    assert named and named[0]["program"].startswith("/usr/bin/python3") and named[0]["errno"] == "EPERM"


def test_the_audit_names_it_without_breaking_the_run(
    profiler_run: RunProfiler, learned: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, broken, output = learned
    report = tmp_path / "report.json"
    done = profiler_run("--audit", "--policy", str(broken), "--report", str(report), "--", sys.executable, str(DEMO))
    assert (done.returncode, done.stdout) == (1, output), done.stderr
    assert f"would refuse: syscall {NEEDED} by " in done.stderr
    assert f"SystemCallFilter={NEEDED}" in done.stderr  # the line that fixes the policy
    would = json.loads(report.read_text())["would_refuse"]
    assert [each["name"] for each in would] == [NEEDED]
    assert "/usr/bin/ls" in would[0]["programs"]


def test_the_audit_of_the_whole_policy_finds_nothing(
    profiler_run: RunProfiler, learned: tuple[Path, Path, str]
) -> None:
    trace, _, output = learned
    done = profiler_run("--audit", "--policy", str(trace), "--", sys.executable, str(DEMO))
    assert (done.returncode, done.stdout) == (0, output), done.stderr
