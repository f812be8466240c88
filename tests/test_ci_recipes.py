"""The CI recipes (examples/ci/) and the pre-commit hooks: they parse, and their steps run here against a
committed trace and policy, with gh and curl stood in for (no network here); recording is in
tests/profiler/recording/test_ci_recipe_recording.py."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ci_recipes import (
    BIN,
    REPOSITORY,
    github_step,
    github_workflow,
    gitlab_job,
    run_github_step,
    run_shell,
    stub,
)
from tests.sarif_schema import validator

UNIT = REPOSITORY / "examples" / "git-clone.service"  # misses AF_UNIX: check fails
CORRECTED = REPOSITORY / "examples" / "corrected" / "git-clone.service"  # check passes
TRACE = REPOSITORY / "traces" / "git-clone.trace.json"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A checkout after the record step: the trace where the workflow keeps it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(TRACE, checkout / "profiler.trace.json")
    return checkout


@pytest.fixture
def stubs(tmp_path: Path) -> Path:
    """gh that fails --edit-last (no comment yet) and keeps what it is asked to post; curl that keeps its call."""
    directory = tmp_path / "bin"
    directory.mkdir()
    posted = tmp_path / "posted"
    stub(
        directory,
        "gh",
        f'printf "%s\\n" "$*" >> {posted}.calls\n'
        'case " $* " in *" --edit-last "*) echo "no comments found for current user" >&2; exit 1;; esac\n'
        f'while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cp "$2" {posted}; shift; done\n',
    )
    stub(directory, "curl", f'printf "%s\\n" "$@" > {posted}.calls\ncp profiler-report.md {posted}\n')
    return directory


def test_the_workflow_runs_on_pull_requests_and_uploads_sarif() -> None:
    workflow = github_workflow()
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    assert workflow[True] == {"pull_request": None}
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write", "security-events": "write"}
    upload = github_step("Upload the SARIF to code scanning")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "profiler.sarif"
    record = github_step("Record the test suite")["run"]
    assert '--user "$(id -un)"' in record and "-- $PROFILER_TEST_COMMAND" in record


@pytest.mark.parametrize(("policy", "status"), [(UNIT, 1), (CORRECTED, 0)])
def test_the_github_steps_check_comment_and_fail_as_check_does(
    workdir: Path, stubs: Path, tmp_path: Path, policy: Path, status: int
) -> None:
    output = tmp_path / "github-output"
    checked = run_github_step(
        "Check the policy", workdir, {"PROFILER_POLICY": str(policy), "GITHUB_OUTPUT": str(output)}
    )
    assert checked.returncode == 0, checked.stderr
    assert output.read_text() == f"status={status}\n"
    sarif = json.loads((workdir / "profiler.sarif").read_text())
    validator().validate(sarif)
    assert any(result["level"] == "error" for result in sarif["runs"][0]["results"]) == bool(status)
    report = (workdir / "profiler-report.md").read_text()
    assert report.startswith("### profiler check")

    commented = run_github_step(
        "Comment the report on the pull request", workdir, {"GH_TOKEN": "x", "PULL_REQUEST": "7"}, stubs
    )
    assert commented.returncode == 0, commented.stderr
    assert (tmp_path / "posted").read_text() == report
    calls = (tmp_path / "posted.calls").read_text().splitlines()
    assert calls == [
        "pr comment 7 --edit-last --body-file profiler-report.md",
        "pr comment 7 --body-file profiler-report.md",
    ]

    failed = run_github_step("Fail when the policy would break the service", workdir, {"STATUS": str(status)})
    assert failed.returncode == status


def test_an_unreadable_policy_fails_the_check_step_at_once(workdir: Path, tmp_path: Path) -> None:
    output = tmp_path / "github-output"
    env = {"PROFILER_POLICY": str(workdir / "missing.service"), "GITHUB_OUTPUT": str(output)}
    checked = run_github_step("Check the policy", workdir, env)
    assert checked.returncode != 0
    assert "profiler: error: " in checked.stderr
    assert not output.exists()  # no status: the comment and upload steps do not run


def test_the_gitlab_job_checks_and_posts_a_note(workdir: Path, stubs: Path, tmp_path: Path) -> None:
    job = gitlab_job()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["artifacts"]["when"] == "always"
    assert set(job["artifacts"]["paths"]) == {"profiler.sarif", "profiler-report.md", "profiler.trace.json"}
    # Recording is tested where tracing is (tests/profiler/recording); here the record line is left out.
    script = [line for line in job["script"] if " record " not in line and not line.startswith("chown")]
    assert len(script) == len(job["script"]) - 2
    env = {
        **{key: str(value) for key, value in job["variables"].items()},
        "PROFILER_POLICY": str(UNIT),
        "PROFILER_GITLAB_TOKEN": "glpat-x",
        "CI_MERGE_REQUEST_IID": "7",
        "CI_API_V4_URL": "https://gitlab.example/api/v4",
        "CI_PROJECT_ID": "42",
    }
    ran = run_shell("\n".join(script), workdir, env, stubs)
    assert ran.returncode == 1, ran.stderr  # check's status, after the note is posted
    validator().validate(json.loads((workdir / "profiler.sarif").read_text()))
    assert (tmp_path / "posted").read_text() == (workdir / "profiler-report.md").read_text()
    calls = (tmp_path / "posted.calls").read_text().splitlines()
    assert calls[-1] == "https://gitlab.example/api/v4/projects/42/merge_requests/7/notes"
    assert "PRIVATE-TOKEN: glpat-x" in calls and "body@profiler-report.md" in calls


def test_the_pre_commit_hooks_parse() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((REPOSITORY / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"profiler-lint-units", "profiler-lint-seccomp"}
    assert all(hook["entry"].startswith("profiler lint ") for hook in hooks.values())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository of a project that confines its service with a unit and a seccomp profile."""
    repository = tmp_path / "project"
    (repository / "deploy" / "git-clone.service.d").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    shutil.copy(UNIT, repository / "deploy" / "git-clone.service")
    shutil.copy(
        REPOSITORY / "tests" / "fixtures" / "oci" / "docker-style.json", repository / "deploy" / "tool.seccomp.json"
    )
    (repository / "package.json").write_text("{}\n")  # JSON that is no seccomp profile: not the hook's
    return repository


def pre_commit(project: Path, hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    """The real pre-commit, running a hook of this checkout (try-repo: uncommitted changes included)."""
    return run_shell(
        f"pre-commit try-repo {REPOSITORY} {hook} --files {' '.join(files)}",
        project,
        {"PRE_COMMIT_HOME": str(project.parent / "pre-commit-home"), "PATH": f"{BIN}:/usr/bin:/bin"},
    )


def test_the_unit_hook_fails_on_a_finding_with_its_line(project: Path) -> None:
    ran = pre_commit(project, "profiler-lint-units", "deploy/git-clone.service", "package.json")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "deploy/git-clone.service:14: '~@privileged' is not the first word of the value" in ran.stdout
    assert "profiler lint: 1 policy file, 1 finding" in ran.stdout


def test_the_unit_hook_passes_a_clean_unit_and_skips_other_files(project: Path) -> None:
    shutil.copy(CORRECTED, project / "deploy" / "git-clone.service")
    shutil.copy(
        CORRECTED.parent / "git-clone.service.d" / "50-profiler.conf", project / "deploy" / "git-clone.service.d"
    )
    files = ("deploy/git-clone.service", "deploy/git-clone.service.d/50-profiler.conf", "package.json")
    ran = pre_commit(project, "profiler-lint-units", *files)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Passed" in ran.stdout


def test_the_seccomp_hook_lints_profiles_and_leaves_other_json(project: Path) -> None:
    ran = pre_commit(project, "profiler-lint-seccomp", "deploy/tool.seccomp.json", "package.json")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "deploy/tool.seccomp.json:66: defaultErrno: unknown key 'defaultErrno'" in ran.stdout
    assert "package.json" not in ran.stdout
