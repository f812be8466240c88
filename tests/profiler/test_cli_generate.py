"""`profiler generate`: to stdout, or atomically to -o (never over a file without --force); it passes check."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from generators import formats
from generators.interface import PolicyFormat, RenderOptions
from profiler.cli import main
from profiler.pipeline import load_profile

REPOSITORY = Path(__file__).resolve().parents[2]
TRACES = sorted(str(path) for path in (REPOSITORY / "traces").glob("*.trace.json"))
GIT = [path for path in TRACES if "/git-clone" in path]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_stdout_is_the_renderer_output_and_the_same_bytes_every_time() -> None:
    result = invoke("generate", "--format", "systemd", "--min-runs", "2", *GIT)
    assert result.exit_code == 0, result.output
    expected = formats.renderer(PolicyFormat.SYSTEMD).render(
        load_profile([Path(p) for p in GIT]), RenderOptions(min_runs=2)
    )
    assert result.stdout == expected
    assert invoke("generate", "--format", "systemd", "--min-runs", "2", *reversed(GIT)).stdout == expected


def test_options_reach_the_renderer() -> None:
    plain = invoke("generate", "--format", "systemd", "--no-comments", "--no-portability", *GIT).stdout
    options = RenderOptions(comments=False, portability=False)
    assert plain == formats.renderer(PolicyFormat.SYSTEMD).render(load_profile([Path(p) for p in GIT]), options)


def test_docker_and_k8s_options_reach_their_renderers() -> None:
    docker = invoke("generate", "--format", "docker", "--seccomp-file", "/etc/docker/git.json", *GIT)
    assert "  --security-opt=seccomp=/etc/docker/git.json \\\n" in docker.stdout
    k8s = invoke("generate", "--format", "k8s", "--namespace", "ci", *GIT)
    assert "  namespace: ci\n" in k8s.stdout
    bad = invoke("generate", "--format", "k8s", "--namespace", "Not_A_Name", *GIT)
    assert bad.exit_code == 2 and "is not a Kubernetes namespace name" in bad.output
    misplaced = invoke("generate", "--format", "oci", "--seccomp-file", "x.json", *GIT)
    assert misplaced.exit_code == 2 and "--seccomp-file applies to --format docker" in misplaced.output


def test_the_runtime_chosen_decides_which_runtime_calls_the_profile_allows() -> None:
    """runc's fstatfs (it checks /proc/self/fd) and crun's setresuid (without no_new_privileges) are theirs only."""
    both = invoke("generate", "--format", "oci", *GIT).stdout
    assert '"fstatfs"' in both and '"setresuid"' in both
    runc = invoke("generate", "--format", "oci", "--runtime", "runc", *GIT).stdout
    assert '"fstatfs"' in runc and '"setresuid"' not in runc
    crun = invoke("generate", "--format", "oci", "--runtime", "crun", *GIT).stdout
    assert '"fstatfs"' not in crun and '"setresuid"' in crun
    none = invoke("generate", "--format", "oci", "--runtime", "none", *GIT).stdout
    assert '"fstatfs"' not in none and '"setresuid"' not in none and "the runtime's" not in none
    based = invoke("generate", "--format", "k8s", "--base-profile", "runc-v1.2.3", *GIT).stdout
    assert "  baseProfileName: runc-v1.2.3\n" in based and "fstatfs" not in based


def test_output_file_is_written_and_kept_without_force(tmp_path: Path) -> None:
    output = tmp_path / "profiler.conf"
    assert invoke("generate", "--format", "systemd", "-o", str(output), *GIT).exit_code == 0
    written = output.read_text()
    assert written.startswith("# systemd drop-in for git-clone")
    output.write_text("kept")
    result = invoke("generate", "--format", "systemd", "-o", str(output), *GIT)
    assert result.exit_code == 2
    assert result.stderr == f"profiler: error: {output}: already exists; use --force to overwrite it\n"
    assert output.read_text() == "kept"
    assert invoke("generate", "--format", "systemd", "-o", str(output), "--force", *GIT).exit_code == 0
    assert output.read_text() == written


def test_a_missing_output_directory_is_one_line(tmp_path: Path) -> None:
    result = invoke("generate", "--format", "systemd", "-o", str(tmp_path / "no" / "x.conf"), *GIT)
    assert result.exit_code == 2 and "does not exist; create it or choose another -o path" in result.stderr


@pytest.mark.parametrize(
    ("policy_format", "name"), [("systemd", "profiler.conf"), ("oci", "seccomp.json"), ("k8s", "profile.yaml")]
)
@pytest.mark.parametrize("trace", TRACES, ids=lambda path: Path(path).name.removesuffix(".trace.json"))
def test_a_generated_policy_passes_check_on_its_own_trace(
    tmp_path: Path, trace: str, policy_format: str, name: str
) -> None:
    policy = tmp_path / name
    assert invoke("generate", "--format", policy_format, "-o", str(policy), trace).exit_code == 0
    result = invoke("check", "--policy", str(policy), trace)
    assert result.exit_code == 0, result.stdout
    assert "0 missing" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "oci", "--groups"], "--groups applies to --format systemd"),
        (["--format", "systemd", "--args"], "--args applies to --format oci and k8s"),
        ([], "generate: missing option '--format'. Choose from: systemd, oci"),
        (["--format", "yaml"], "'yaml' is not one of"),
        (["--format", "systemd", "--runtime", "runc"], "--runtime applies to --format oci and k8s"),
        (["--format", "oci", "--base-profile", "runc-v1.2.3"], "--base-profile applies to --format k8s"),
        (["--format", "k8s", "--base-profile", "b", "--runtime", "crun"], "give it or --runtime, not both"),
        (["--format", "k8s", "--base-profile", "Not_A_Name"], "is not the name of a SeccompProfile"),
    ],
    ids=[
        "groups-not-systemd",
        "args-systemd",
        "no-format",
        "unknown-format",
        "runtime-systemd",
        "base-oci",
        "base-and-runtime",
        "bad-base",
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = invoke("generate", *args, *GIT)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1


def test_several_components_need_one_chosen() -> None:
    mixed = [GIT[0], next(path for path in TRACES if "curl" in path)]
    result = invoke("generate", "--format", "systemd", *mixed)
    assert result.exit_code == 2
    assert "the traces hold several components (curl, git-clone): choose one with --component" in result.stderr
    assert invoke("generate", "--format", "systemd", "--component", "curl", *mixed).exit_code == 0


SECRET = "--password=hunter2"


@pytest.fixture
def trace_with_a_secret(tmp_path: Path) -> Path:
    """A real trace whose command line holds a password, as the attacker of issue 13 recorded it."""
    data = json.loads((REPOSITORY / "traces" / "curl-fetch.trace.json").read_text())
    data["run"]["command"] = [*data["run"]["command"], SECRET]
    path = tmp_path / "curl-secret.trace.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("policy_format", [each.value for each in PolicyFormat])
def test_no_policy_holds_the_arguments_unless_asked(trace_with_a_secret: Path, policy_format: str) -> None:
    policy = invoke("generate", "--format", policy_format, str(trace_with_a_secret))
    assert policy.exit_code == 0 and "curl" in policy.stdout and "hunter2" not in policy.stdout
    asked = invoke("generate", "--format", policy_format, "--command-lines", str(trace_with_a_secret))
    assert asked.exit_code == 0
    assert (SECRET in asked.stdout) is (policy_format in ("systemd", "json")), "the formats that name runs"


@pytest.mark.parametrize("report_format", ["text", "markdown", "json"])
def test_no_report_holds_the_arguments(trace_with_a_secret: Path, report_format: str) -> None:
    unit = REPOSITORY / "examples" / "git-clone.service"
    check = invoke("check", "--policy", str(unit), "--format", report_format, str(trace_with_a_secret))
    drift = invoke("diff", "--format", report_format, str(trace_with_a_secret), str(trace_with_a_secret))
    for result in (check, drift):
        assert result.exit_code in (0, 1) and "curl" in result.stdout and "hunter2" not in result.stdout
