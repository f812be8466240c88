"""generate, explain, diff and check: every unreadable trace or policy is one line on stderr and exit status 2."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
TRACE = REPOSITORY / "traces" / "git-clone.trace.json"
UNIT = REPOSITORY / "examples" / "git-clone.service"


def truncated(directory: Path) -> Path:
    path = directory / "truncated.trace.json"
    text = TRACE.read_text()
    path.write_text(text[: len(text) // 2])
    return path


def foreign(directory: Path) -> Path:
    path = directory / "package.json"
    path.write_text('{"name": "left-pad", "version": "1.3.0"}\n')
    return path


def newer(directory: Path) -> Path:
    path = directory / "newer.trace.json"
    path.write_text(TRACE.read_text().replace('"schema_version": 1', '"schema_version": 99', 1))
    return path


def a_directory(directory: Path) -> Path:
    path = directory / "traces.trace.json"
    path.mkdir()
    return path


def empty(directory: Path) -> Path:
    path = directory / "empty.trace.json"
    path.touch()
    return path


def absent(directory: Path) -> Path:
    return directory / "absent.trace.json"


BAD_TRACES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated": (truncated, "not valid JSON (Unterminated string starting at"),
    "foreign": (foreign, 'not a profiler trace (no "schema": "profiler-trace")'),
    "newer": (newer, "written by a newer profiler (trace schema 99, this one reads up to 1); upgrade profiler"),
    "directory": (a_directory, "is a directory; give a trace file"),
    "empty": (empty, "empty file; record the run again"),
    "absent": (absent, "cannot read: No such file or directory"),
}


def commands(bad: Path) -> dict[str, list[str]]:
    return {
        "generate": ["generate", "--format", "systemd", str(TRACE), str(bad)],
        "explain": ["explain", str(bad), "openat"],
        "diff": ["diff", "--policy", str(UNIT), str(bad)],
        "drift": ["diff", str(TRACE), str(bad)],
        "check": ["check", "--policy", str(UNIT), str(TRACE), str(bad)],
    }


@pytest.mark.parametrize("command", ["generate", "explain", "diff", "drift", "check"])
@pytest.mark.parametrize("kind", list(BAD_TRACES))
def test_a_bad_trace_is_one_line_and_exit_2(tmp_path: Path, command: str, kind: str) -> None:
    make, message = BAD_TRACES[kind]
    bad = make(tmp_path)
    result = CliRunner().invoke(main, commands(bad)[command])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"profiler: error: {bad}: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiler.cli", *args], capture_output=True, text=True)


def test_a_bad_trace_exits_2_in_a_real_process(tmp_path: Path) -> None:
    result = run("check", "--policy", str(UNIT), str(truncated(tmp_path)))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def junk_unit(directory: Path) -> Path:
    path = directory / "junk.service"
    path.write_bytes(bytes(range(256)) * 4)
    return path


def empty_unit(directory: Path) -> Path:
    path = directory / "empty.service"
    path.touch()
    return path


def unit_directory(directory: Path) -> Path:
    path = directory / "dir.service"
    path.mkdir()
    return path


def unknown_name(directory: Path) -> Path:
    path = directory / "policy.txt"
    path.write_text("[Service]\nSystemCallFilter=@system-service\n")
    return path


BAD_POLICIES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "binary-junk": (junk_unit, "junk.service: "),
    "empty": (empty_unit, "empty.service: empty: "),
    "directory": (unit_directory, "dir.service: "),
    "absent": (lambda directory: directory / "absent.service", "absent.service: "),
    "unknown-name": (unknown_name, "cannot tell the policy format from the file name; give --policy-format"),
}


@pytest.mark.parametrize("command", ["diff", "check"])
@pytest.mark.parametrize("kind", list(BAD_POLICIES))
def test_a_bad_policy_is_one_line_and_exit_2(tmp_path: Path, command: str, kind: str) -> None:
    make, message = BAD_POLICIES[kind]
    result = CliRunner().invoke(main, [command, "--policy", str(make(tmp_path)), str(TRACE)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_a_bad_policy_exits_2_in_a_real_process(tmp_path: Path) -> None:
    result = run("check", "--policy", str(junk_unit(tmp_path)), str(TRACE))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
