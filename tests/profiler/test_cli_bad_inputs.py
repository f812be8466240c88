"""Every command: every unreadable trace or policy is one line on stderr and exit status 2, never a traceback or a
hang."""

import copy
import gc
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiler import trace
from profiler.cli import main
from profiler.trace import FileOp, KernelUse
from profiler.trace.columns import SCHEMA_VERSION
from tests.generators.sandbox_builders import recorded

REPOSITORY = Path(__file__).resolve().parents[2]
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


def a_fifo(name: str) -> Make:
    def make(directory: Path) -> Path:
        os.mkfifo(directory / name)
        return directory / name

    return make


TRACE_TEXT = TRACE.read_text()
# The trace as if recorded with files and kernel interfaces: what the path tables' bad inputs are made from.
WITH_PATHS = json.loads(
    recorded(
        trace.load(TRACE),
        [
            ("/etc/gitconfig", FileOp.READ),
            ("/root/.gitconfig", FileOp.READ, "ENOENT"),
            ("/srv/repo/HEAD", FileOp.CREATE),
        ],
        [(KernelUse.NETWORK, "connect 140.82.121.3:443")],
    ).to_json()
)


def with_paths(name: str, change: Callable[[dict[str, Any]], object]) -> Make:
    data = copy.deepcopy(WITH_PATHS)
    change(data)
    return written(name, json.dumps(data))


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
        written(
            "newer.trace.json", TRACE_TEXT.replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 99', 1)
        ),
        "written by a newer profiler (trace schema 99, this one reads up to 2); upgrade profiler",
    ),
    "directory": (a_directory("traces.trace.json"), "is a directory; give a trace file"),
    "empty": (written("empty.trace.json", ""), "empty file; record the run again"),
    "absent": (absent("absent.trace.json"), "cannot read: No such file or directory"),
    "fifo": (a_fifo("pipe.trace.json"), "is a FIFO (a named pipe), not a regular file; give a trace file"),
    "device": (lambda _: Path("/dev/zero"), "is a character device, not a regular file; give a trace file"),
    "one-path-table": (
        with_paths("one.trace.json", lambda d: d["tables"].pop("kernel_uses")),
        "invalid trace at tables: file_accesses without kernel_uses: a run records both or neither; record the run",
    ),
    "unknown-op": (
        with_paths("op.trace.json", lambda d: d["tables"]["file_accesses"]["rows"][0].__setitem__(3, "chown")),
        "invalid trace at tables.file_accesses.rows[0].op: must be one of read, write, create",
    ),
    "unknown-use": (
        with_paths("use.trace.json", lambda d: d["tables"]["kernel_uses"]["rows"][0].__setitem__(2, "ptrace")),
        "invalid trace at tables.kernel_uses.rows[0].use: must be one of write-execute, personality",
    ),
    "escaping-path": (
        with_paths(
            "dots.trace.json", lambda d: d["tables"]["file_accesses"]["rows"][2].__setitem__(2, "/srv/../etc/shadow")
        ),
        'tables.file_accesses.rows[2].path: "/srv/../etc/shadow" is not an absolute, normalised path',
    ),
}


def commands(bad: Path) -> dict[str, list[str]]:
    return {
        "show": ["show", str(TRACE), str(bad)],
        "show-json": ["show", "--format", "json", str(bad)],
        "show-csv": ["show", "--format", "csv", "--table", "syscalls", str(bad)],
        "generate": ["generate", "--format", "systemd", str(TRACE), str(bad)],
        "generate-oci": ["generate", "--format", "oci", "--args", str(bad)],
        "generate-k8s": ["generate", "--format", "k8s", str(bad)],
        "generate-docker": ["generate", "--format", "docker", str(bad)],
        "generate-json": ["generate", "--format", "json", str(bad)],
        "explain": ["explain", str(bad), "openat"],
        "diff": ["diff", "--policy", str(UNIT), str(bad)],
        "drift": ["diff", str(TRACE), str(bad)],
        "check": ["check", "--policy", str(UNIT), str(TRACE), str(bad)],
    }


@pytest.mark.parametrize("command", list(commands(Path("bad"))))
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


# --- malformed policies of every format, for every command that reads one -----------------------------------------

POLICY_SEEDS = {
    "unit.service": UNIT.read_bytes(),
    "drop-in.conf": (REPOSITORY / "tests" / "generators" / "golden" / "systemd" / "chown.conf").read_bytes(),
    "seccomp.json": (REPOSITORY / "tests" / "fixtures" / "oci" / "docker-style.json").read_bytes(),
    "profile.yaml": (REPOSITORY / "tests" / "generators" / "golden" / "k8s" / "chown.yaml").read_bytes(),
}
JUNK = st.sampled_from(
    [b"\x00", b"\xff\xfe", b"\\\n", b"\\", b"[", b"{", b"]]]", b"&a [*a, *a]", b"*a", b"!!python/object:os.system",
     b'"', b"\n[Service]\n", b"~", b"=", b": ", b"- ", b"\t", b"\r", b"1e999", b"NaN", b"\xef\xbb\xbf", b"%n"]
)  # fmt: skip


@st.composite
def malformed_policies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real policy of one format, cut, spliced with junk, or with lines repeated."""
    name = draw(st.sampled_from(sorted(POLICY_SEEDS)))
    content = POLICY_SEEDS[name]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(content)))
        match draw(st.sampled_from(["cut", "splice", "repeat", "drop"])):
            case "cut":
                content = content[:at]
            case "splice":
                content = content[:at] + draw(JUNK) + content[at:]
            case "repeat":
                content = content[:at] + content[at : at + draw(st.integers(1, 200))] * draw(st.integers(2, 50))
            case _:
                content = content[:at] + content[at + draw(st.integers(1, 40)) :]
    return name, content


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=malformed_policies(), command=st.sampled_from(["check", "diff"]), report=st.sampled_from(
    ["text", "markdown", "json"]))  # fmt: skip
def test_a_malformed_policy_gives_a_report_or_one_line(
    tmp_path: Path, policy: tuple[str, bytes], command: str, report: str
) -> None:
    name, content = policy
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(main, [command, "--policy", str(path), "--format", report, str(TRACE)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 2:
        assert result.stdout == ""
        assert result.stderr.startswith(f"profiler: error: {path}") and result.stderr.count("\n") == 1


HOSTILE_POLICIES: dict[str, tuple[str, bytes]] = {
    "deep-json": ("deep.json", b"[" * 100_000 + b"]" * 100_000),
    "deep-yaml": ("deep.yaml", b"- " * 100_000 + b"x\n"),
    "billion-laughs": (
        "bomb.yaml",
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        + b"".join(f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]\n".encode() for n in range(9))
        + b"kind: SeccompProfile\n",
    ),
    "long-continuation": ("long.service", b"[Service]\nSystemCallFilter=read \\\n" + b"write \\\n" * 150_000),
    "long-line": ("wide.service", b"[Service]\nSystemCallFilter=" + b"read " * 250_000 + b"\n"),
    "huge-manifest": ("huge.yaml", b"kind: SeccompProfile\n" + b"# padding\n" * 300_000),
}


@pytest.mark.parametrize("kind", list(HOSTILE_POLICIES))
def test_a_hostile_policy_is_one_line_in_a_real_process(tmp_path: Path, kind: str) -> None:
    """Each of these hung, crashed the process or took minutes; timeout 60 s is no timing, only a hang's end."""
    name, content = HOSTILE_POLICIES[kind]
    (tmp_path / name).write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "profiler.cli", "check", "--policy", str(tmp_path / name), str(TRACE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, ""), result.stderr[-500:]
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1


def _at_most_4_gib() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def _special_file(kind: str, directory: Path) -> Path:
    if kind == "fifo":
        fifo = directory / "policy.service"
        os.mkfifo(fifo)
        return fifo
    return Path("/dev/zero")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("command", ["check", "diff", "drift", "generate", "explain"])
def test_a_special_file_as_any_input_is_one_line_not_a_hang(tmp_path: Path, kind: str, command: str) -> None:
    special = _special_file(kind, tmp_path)
    args = {
        "check": ["check", "--policy", str(special), "--policy-format", "systemd", str(TRACE)],
        "diff": ["diff", "--policy", str(UNIT), str(special)],
        "drift": ["diff", str(TRACE), str(special)],
        "generate": ["generate", "--format", "oci", str(special)],
        "explain": ["explain", str(special), "read"],
    }[command]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "profiler.cli", *args],
            capture_output=True,
            text=True,
            timeout=20,
            preexec_fn=_at_most_4_gib,  # /dev/zero read without bound would take the machine's memory
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} hung on {kind}")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1


# --- usage errors ---------------------------------------------------------------------------------------------------

USAGE = {
    "record": ["record", "--duration", "soon", "--", "true"],
    "show": ["show"],
    "schema": ["schema", "extra"],
    "generate": ["generate", "--format", "nope", str(TRACE)],
    "explain": ["explain", str(TRACE)],
    "diff": ["diff", "--min-runs", "zero", str(TRACE)],
    "check": ["check", str(TRACE)],
    "group": ["nosuchcommand"],
}


@pytest.mark.parametrize("command", list(USAGE))
def test_a_usage_error_of_any_command_is_one_line_and_exit_2(command: str) -> None:
    result = run(*USAGE[command])
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1
    name = "" if command == "group" else f" {command}"
    assert result.stderr.endswith(f"(see profiler{name} --help)\n")


def test_a_fifo_trace_does_not_hang_a_real_process(tmp_path: Path) -> None:
    for command in commands(a_fifo("pipe.trace.json")(tmp_path)).values():
        result = subprocess.run(
            [sys.executable, "-m", "profiler.cli", *command], capture_output=True, text=True, timeout=60
        )
        assert (result.returncode, result.stdout) == (2, "") and result.stderr.count("\n") == 1, command


# Values a damaged or forged trace may hold where a valid one has something else.
NASTY: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 2**31, 2**32, 2**63, -(2**63) - 1, 10**30, 1.5, 1e308, "", [], {}]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["caf\\xe9", "\\xff\\", "a\\\\b", "\\x41"]),  # bytes that are not UTF-8, and forms that are wrong
    st.lists(st.integers(-2, 3), max_size=3),
)

VALID: dict[str, dict[str, Any]] = {
    "v1": json.loads(TRACE.read_text()),
    "v2": json.loads(trace.load(TRACE).to_json()),
    "v2-paths": WITH_PATHS,
}


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A valid trace (version 1 or 2) with one value replaced, one key or row removed, or one row repeated."""
    data = copy.deepcopy(VALID[draw(st.sampled_from(sorted(VALID)))])
    parent: Any = data
    key: Any = draw(st.sampled_from(sorted(data)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.integers(0, 4)):
        parent = parent[key]
        key = (
            draw(st.sampled_from(sorted(parent))) if isinstance(parent, dict) else draw(st.integers(0, len(parent) - 1))
        )
    action = draw(st.sampled_from(["replace", "replace", "remove", "repeat"]))
    if action == "remove":
        del parent[key]
    elif action == "repeat" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = draw(NASTY)
    return json.dumps(data, allow_nan=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=damaged(), command=st.sampled_from(sorted(commands(Path("bad")))))
def test_every_command_over_a_damaged_trace_gives_its_output_or_one_line(
    tmp_path: Path, text: str, command: str
) -> None:
    bad = tmp_path / "damaged.trace.json"
    bad.write_text(text)
    result = CliRunner().invoke(main, commands(bad)[command])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 2:
        assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_command_gives_the_cyclic_collector_back_to_its_caller() -> None:
    for args in (["show", str(TRACE)], ["check", "--policy", str(UNIT), str(TRACE)]):
        CliRunner().invoke(main, args)
        assert gc.isenabled(), args
