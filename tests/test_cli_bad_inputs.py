"""generate, explain, diff and check: every unreadable trace or policy is one line on stderr and exit status 2."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
TRACE = REPOSITORY / "traces" / "git-clone.trace.json"
UNIT = REPOSITORY / "examples" / "git-clone.service"


Make = Callable[[Path], Path]


def written(name: str, content: str | bytes) -> Make:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return make


def a_directory(name: str) -> Make:
    def make(directory: Path) -> Path:
        (directory / name).mkdir()
        return directory / name

    return make


def absent(name: str) -> Make:
    return lambda directory: directory / name


TRACE_TEXT = TRACE.read_text()
BAD_TRACES: dict[str, tuple[Make, str]] = {
    "truncated": (
        written("truncated.trace.json", TRACE_TEXT[: len(TRACE_TEXT) // 2]),
        "not valid JSON (Unterminated string starting at",
    ),
    "foreign": (
        written("package.json", '{"name": "left-pad", "version": "1.3.0"}\n'),
        'not a profiler trace (no "schema": "profiler-trace")',
    ),
    "newer": (
        written("newer.trace.json", TRACE_TEXT.replace('"schema_version": 1', '"schema_version": 99', 1)),
        "written by a newer profiler (trace schema 99, this one reads up to 1); upgrade profiler",
    ),
    "directory": (a_directory("traces.trace.json"), "is a directory; give a trace file"),
    "empty": (written("empty.trace.json", ""), "empty file; record the run again"),
    "absent": (absent("absent.trace.json"), "cannot read: No such file or directory"),
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
    result = run("check", "--policy", str(UNIT), str(BAD_TRACES["truncated"][0](tmp_path)))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


BAD_POLICIES: dict[str, tuple[Make, str]] = {
    "binary-junk": (written("junk.service", bytes(range(256)) * 4), "junk.service: "),
    "empty": (written("empty.service", ""), "empty.service: empty: "),
    "directory": (a_directory("dir.service"), "dir.service: "),
    "absent": (absent("absent.service"), "absent.service: "),
    "yaml-junk": (written("profile.yaml", "a: [\n"), "profile.yaml:2: not valid YAML"),
    "unknown-name": (
        written("policy.txt", "[Service]\nSystemCallFilter=@system-service\n"),
        "cannot tell the policy format from the file name; give --policy-format",
    ),
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
    result = run("check", "--policy", str(BAD_POLICIES["binary-junk"][0](tmp_path)), str(TRACE))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    name=st.sampled_from(["unit.service", "unit.conf", "seccomp.json", "profile.yaml"]),
)
def test_any_policy_file_gives_a_report_or_one_line(tmp_path: Path, content: bytes, name: str) -> None:
    policy = tmp_path / name
    policy.write_bytes(content)
    result = CliRunner().invoke(main, ["check", "--policy", str(policy), str(TRACE)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 2:
        assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_trace_file_gives_one_line(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "fuzzed.trace.json"
    bad.write_bytes(content)
    result = CliRunner().invoke(main, ["diff", str(TRACE), str(bad)])
    assert (result.exit_code, result.exception.__class__) == (2, SystemExit)
    assert result.stderr.startswith(f"profiler: error: {bad}: ") and result.stderr.count("\n") == 1
