"""The CI recipes of examples/ci/ as data, and their shell steps run here as each CI system runs them."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
GITHUB = REPOSITORY / "examples" / "ci" / "github-actions.yml"
GITLAB = REPOSITORY / "examples" / "ci" / "gitlab-ci.yml"
BIN = Path(sys.executable).parent  # this environment's profiler


def github_workflow() -> dict[str, Any]:
    workflow: dict[str, Any] = yaml.safe_load(GITHUB.read_text())
    return workflow


def github_step(name: str) -> dict[str, Any]:
    (job,) = github_workflow()["jobs"].values()
    (step,) = [each for each in job["steps"] if each.get("name") == name]
    return dict(step)


def gitlab_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(GITLAB.read_text())["profiler"]
    return job


def stub(directory: Path, name: str, script: str) -> None:
    """A stand-in for a command CI has and this machine must not run for real (gh, curl: no network here)."""
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}")
    path.chmod(0o755)


def run_shell(
    script: str, workdir: Path, env: Mapping[str, str], stubs: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A script as GitHub's `shell: bash` and GitLab's runner run it: bash, -e and pipefail, no rc files."""
    path = os.pathsep.join([*([str(stubs)] if stubs else []), str(BIN), os.environ["PATH"]])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=workdir,
        env={**os.environ, "PATH": path, "PROFILER": str(BIN / "profiler"), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_github_step(
    name: str, workdir: Path, env: Mapping[str, str], stubs: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A step's script with the workflow's env and its own, the ${{ }} values given by the caller."""
    step = github_step(name)
    step_env = {key: value for key, value in step.get("env", {}).items() if "${{" not in str(value)}
    return run_shell(step["run"], workdir, {**github_workflow()["env"], **step_env, **env}, stubs)


def gitlab_script(job: Mapping[str, Any]) -> str:
    """The job's script lines as the runner joins them: one shell, in order."""
    return "\n".join(job["script"])
