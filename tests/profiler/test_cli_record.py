"""`profiler record` refuses what it cannot do with one line and exit status 2, before recording anything."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROFILER = [sys.executable, "-m", "profiler.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROFILER, *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "no-such-user", "--", "true"], "unknown user 'no-such-user': give a name from /etc/passwd"),
        (["--user", "", "--", "true"], "--user is empty (an unset variable?): give a user name or a numeric uid"),
        (["--", "no-such-command"], "command not found: no-such-command; check the name or give its path"),
        (["--pid", "4194000", "--duration", "1"], "no process with pid 4194000"),
        (["--cgroup", "no/such/group", "--duration", "1"], "no/such/group: not a cgroup v2 directory"),
    ],
    ids=["unknown-user", "empty-user", "command-not-found", "no-such-pid", "no-such-cgroup"],
)
def test_a_target_that_cannot_be_recorded_is_one_line(args: list[str], message: str) -> None:
    result = run("record", *args)
    assert result.returncode == 2
    assert result.stderr == f"profiler: error: {result.stderr.removeprefix('profiler: error: ')}"
    assert message in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of COMMAND (after --), --pid or --cgroup"),
        (["--pid", "1", "--", "true"], "give exactly one of COMMAND"),
        (["--user", "nobody", "--pid", "1"], "--user applies to a COMMAND only"),
        (["--duration", "0", "--pid", "1"], "must be a finite number of seconds more than 0, not 0.0"),
        # A duration that never comes would record forever.
        (["--duration", "nan", "--pid", "1"], "must be a finite number of seconds more than 0, not nan"),
        (["--duration", "inf", "--pid", "1"], "must be a finite number of seconds more than 0, not inf"),
    ],
    ids=["no-target", "two-targets", "user-with-pid", "zero-duration", "nan-duration", "infinite-duration"],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run("record", *args)
    assert result.returncode == 2 and message in result.stderr


def test_a_program_that_cannot_run_is_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a program\n")
    assert run("record", "--", str(text)).stderr == f"profiler: error: {text}: not executable; check its permissions\n"
    text.chmod(0o755)
    assert run("record", "--", str(text)).stderr == f"profiler: error: {text}: cannot run: Exec format error\n"


def test_an_existing_trace_is_not_overwritten_and_nothing_is_recorded(tmp_path: Path) -> None:
    existing = tmp_path / "kept.trace.json"
    existing.write_text("precious")
    result = run("record", "-o", str(existing), "--", "true")
    assert result.returncode == 2
    assert "kept.trace.json: already exists; use --force" in result.stderr
    assert existing.read_text() == "precious"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_recording_as_an_ordinary_user_says_it_needs_root() -> None:
    result = subprocess.run(
        ["runuser", "-u", "nobody", "--", *PROFILER, "record", "--", "true"], capture_output=True, text=True, cwd="/"
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == "profiler: error: recording needs root (it loads eBPF programs): run profiler record with sudo\n"
    )
