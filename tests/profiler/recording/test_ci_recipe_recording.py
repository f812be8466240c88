"""The record steps of the CI recipes (examples/ci/), run for real: a test suite recorded, then checked."""

import json
import subprocess
from pathlib import Path

from tests.ci_recipes import BIN, gitlab_job, run_github_step, run_shell, stub

SUITE = "echo suite-passed"  # a test suite's command: words, as the workflow splits them


def test_the_github_record_step_records_the_suite_as_the_user(tmp_path: Path) -> None:
    """As root here, sudo is only a way in: a stand-in that runs the command, as it does for the runner."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub(stubs, "sudo", 'exec "$@"\n')
    env = {"PROFILER_TEST_COMMAND": SUITE, "PROFILER_COMPONENT": "suite"}
    recorded = run_github_step("Record the test suite", tmp_path, env, stubs)
    assert recorded.returncode == 0, recorded.stderr
    assert "suite-passed" in recorded.stdout
    trace = json.loads((tmp_path / "profiler.trace.json").read_text())
    assert (trace["run"]["component"], trace["run"]["exit_status"]) == ("suite", 0)
    # The policy of this run passes the workflow's check; the committed one of the project would be checked so.
    policy = tmp_path / "suite.service"
    subprocess.run(
        [BIN / "profiler", "generate", "--format", "systemd", "-o", policy, "profiler.trace.json"],
        cwd=tmp_path,
        check=True,
    )
    output = tmp_path / "github-output"
    checked = run_github_step(
        "Check the policy", tmp_path, {"PROFILER_POLICY": str(policy), "GITHUB_OUTPUT": str(output)}
    )
    assert checked.returncode == 0, checked.stderr
    assert output.read_text() == "status=0\n"


def test_a_failing_suite_fails_the_record_step(tmp_path: Path) -> None:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    stub(stubs, "sudo", 'exec "$@"\n')
    recorded = run_github_step("Record the test suite", tmp_path, {"PROFILER_TEST_COMMAND": "false"}, stubs)
    assert recorded.returncode == 1


def test_the_gitlab_job_records_as_its_test_user(tmp_path: Path) -> None:
    job = gitlab_job()
    script = "\n".join(job["script"])
    env = {
        **{key: str(value) for key, value in job["variables"].items()},
        "PROFILER_TEST_COMMAND": SUITE,
        "PROFILER_POLICY": str(tmp_path / "none.service"),
    }
    # The first lines: the checkout handed to the test user, the suite recorded as it. Then check, which is
    # tested against committed policies in tests/test_ci_recipes.py: an unreadable policy fails here.
    ran = run_shell(script, tmp_path, env)
    assert "suite-passed" in ran.stdout
    trace = json.loads((tmp_path / "profiler.trace.json").read_text())
    assert trace["run"]["user"] == "nobody"
    assert ran.returncode != 0 and "none.service: cannot read" in ran.stderr
