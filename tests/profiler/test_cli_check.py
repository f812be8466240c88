"""`profiler diff` and `profiler check`: reports, exit statuses, and the README's worked example."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
GIT_TRACES = [
    str(REPOSITORY / "traces" / f"{name}.trace.json") for name in ("git-clone", "git-clone-bare", "git-clone-shallow")
]
UNIT = REPOSITORY / "examples" / "git-clone.service"
CORRECTED = REPOSITORY / "examples" / "corrected" / "git-clone.service"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_check_fails_on_the_hand_written_unit_and_says_why() -> None:
    result = invoke("check", "--policy", str(UNIT), *GIT_TRACES)
    assert result.exit_code == 1, result.output
    assert (
        "  address family AF_UNIX: address family not allowed\n      8× in 2/3 runs by /usr/bin/git\n" in result.stdout
    )
    assert ":14: '~@privileged' is not the first word of the value" in result.stdout
    assert "Fix: Add as a drop-in (systemctl edit git-clone.service)" in result.stdout
    assert "  [Service]\n  RestrictAddressFamilies=AF_UNIX\n" in result.stdout
    assert result.stdout.endswith("1 missing, 242 in excess, 0 warnings, 1 lint finding: check fails\n")


def test_the_printed_fix_is_the_committed_drop_in_and_makes_check_pass() -> None:
    report = json.loads(invoke("check", "--policy", str(UNIT), "--format", "json", *GIT_TRACES).stdout)
    drop_in = CORRECTED.parent / "git-clone.service.d" / "50-profiler.conf"
    assert report["fix"]["text"] == drop_in.read_text()
    result = invoke("check", "--policy", str(CORRECTED), *GIT_TRACES)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        "0 missing, 220 in excess, 0 warnings, 0 lint findings: check passes (fails with --strict)\n"
    )
    assert invoke("check", "--strict", "--policy", str(CORRECTED), *GIT_TRACES).exit_code == 1


def test_systemd_reads_the_example_as_the_report_says() -> None:
    """systemd-analyze is the oracle: AF_UNIX refused before the fix, allowed after, and verify has no complaint."""
    before = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True, text=True
    ).stdout
    after = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(CORRECTED)], capture_output=True, text=True
    ).stdout
    assert "✓ RestrictAddressFamilies=~AF_UNIX" in before and "✗ RestrictAddressFamilies=~AF_UNIX" in after
    verify = subprocess.run(["systemd-analyze", "verify", str(CORRECTED)], capture_output=True, text=True)
    assert (verify.returncode, verify.stderr) == (0, "")


def test_diff_reports_the_same_but_exits_0() -> None:
    result = invoke("diff", "--policy", str(UNIT), *GIT_TRACES)
    assert result.exit_code == 0
    assert result.stdout == invoke("check", "--policy", str(UNIT), *GIT_TRACES).stdout


def test_markdown_and_json() -> None:
    markdown = invoke("check", "--policy", str(UNIT), "--format", "markdown", *GIT_TRACES)
    assert markdown.exit_code == 1
    assert markdown.stdout.startswith("### profiler check fails: `git-clone` against")
    assert "```ini\n[Service]\nRestrictAddressFamilies=AF_UNIX\n```" in markdown.stdout
    data = json.loads(invoke("diff", "--policy", str(UNIT), "--format", "json", *GIT_TRACES).stdout)
    assert (data["passed"], data["missing"][0]["name"], data["fix"]["allow"]) == (
        False,
        "AF_UNIX",
        {"family": ["AF_UNIX"]},
    )


def test_policy_format_overrides_the_file_name(tmp_path: Path) -> None:
    unit = tmp_path / "unit.txt"
    unit.write_text(UNIT.read_text())
    result = invoke("check", "--policy", str(unit), "--policy-format", "systemd", *GIT_TRACES)
    assert result.exit_code == 1 and "address family AF_UNIX: address family not allowed" in result.stdout


def test_drift_between_two_traces() -> None:
    result = invoke("diff", GIT_TRACES[0], GIT_TRACES[2])
    assert result.exit_code == 0
    assert "Started to need: 6\n  syscall alarm: 5× in 1/1 runs by /usr/lib/git-core/git-upload-pack" in result.stdout
    assert "Stopped using: nothing" in result.stdout


def test_drift_reads_a_profile_written_by_generate_as_it_reads_the_trace(tmp_path: Path) -> None:
    profile = tmp_path / "old.profile.json"
    assert invoke("generate", "--format", "json", "-o", str(profile), GIT_TRACES[0]).exit_code == 0
    from_profile = invoke("diff", str(profile), GIT_TRACES[2])
    assert from_profile.exit_code == 0
    assert from_profile.stdout == invoke("diff", GIT_TRACES[0], GIT_TRACES[2]).stdout
    wrong = invoke("diff", "--component", "curl", str(profile), GIT_TRACES[2])
    assert (wrong.exit_code, wrong.stderr) == (2, f"profiler: error: {profile}: a profile of git-clone, not of curl\n")


def test_min_runs_marks_uncertain_needs() -> None:
    strict = invoke("check", "--policy", str(UNIT), "--min-runs", "3", *GIT_TRACES)
    assert "8× in 2/3 runs by /usr/bin/git (uncertain: seen in fewer than 3 runs)" in strict.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", GIT_TRACES[0]], "give --policy POLICY TRACE..., or exactly two inputs: OLD NEW"),
        (["diff", "--policy-format", "oci", *GIT_TRACES[:2]], "--policy-format applies to --policy"),
        (["diff", "--runtime", "runc", *GIT_TRACES[:2]], "--runtime applies to --policy"),
        (["check", "--policy", str(UNIT), "--runtime", "runc", *GIT_TRACES], "--runtime applies to seccomp profiles"),
        (["check", *GIT_TRACES], "check: missing option '--policy' (see profiler check --help)"),
        (["check", "--policy", str(UNIT), "--format", "html", *GIT_TRACES], "'html' is not one of"),
        (["check", "--policy", str(UNIT), "--min-runs", "0", *GIT_TRACES], "0 is not in the range x>=1"),
        (["check", "--policy", str(UNIT), "--component", "cargo", *GIT_TRACES], "no trace of component 'cargo'"),
    ],
    ids=[
        "one-input",
        "policy-format-alone",
        "runtime-alone",
        "runtime-systemd",
        "no-policy",
        "bad-format",
        "zero-runs",
        "unknown-component",
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1


def test_exit_statuses_in_a_real_process() -> None:
    def status(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "profiler.cli", *args], capture_output=True).returncode

    assert status("check", "--policy", str(UNIT), *GIT_TRACES) == 1
    assert status("check", "--policy", str(CORRECTED), *GIT_TRACES) == 0
    assert status("diff", "--policy", str(UNIT), *GIT_TRACES) == 0


def test_a_dynamic_user_unit_misses_a_capability_that_is_not_ambient(tmp_path: Path) -> None:
    chown = str(REPOSITORY / "tests" / "fixtures" / "traces" / "chown.trace.json")
    unit = tmp_path / "chowner.service"
    unit.write_text(
        "[Service]\nExecStart=/usr/bin/chown nobody /srv/f\nDynamicUser=yes\nCapabilityBoundingSet=CAP_CHOWN\n"
    )
    result = invoke("check", "--policy", str(unit), chown)
    assert result.exit_code == 1, result.output
    assert "ambient capability CAP_CHOWN: not ambient, and user chowner holds capabilities only as ambient" in (
        result.stdout
    )
    unit.write_text(unit.read_text() + "AmbientCapabilities=CAP_CHOWN\n")
    assert invoke("check", "--policy", str(unit), chown).exit_code == 0


# --- the outputs of issue 12, made before profiler knew what deployment adds (tests/fixtures/before-12) ---------------

BEFORE = REPOSITORY / "tests" / "fixtures" / "before-12"
FIXTURE_TRACES = REPOSITORY / "tests" / "fixtures" / "traces"


def test_check_fails_the_old_drop_in_whose_threads_cannot_start_under_restrict_namespaces() -> None:
    policy = BEFORE / "python-thread.conf"
    result = invoke("check", "--policy", str(policy), str(FIXTURE_TRACES / "python-thread.trace.json"))
    assert result.exit_code == 1, result.stdout
    line = next(
        number
        for number, text in enumerate(policy.read_text().splitlines(), 1)
        if text.startswith("RestrictNamespaces=")
    )
    assert (
        "  syscall clone: refused with EPERM by the syscall filter\n"
        "      clone3: 1× in 1/1 runs by /usr/bin/python3, first at 0.016s\n"
        "      needed though no run called it: the C library falls back to clone when clone3 answers ENOSYS; here "
        f"clone3 is answered with ENOSYS by RestrictNamespaces=yes ({policy}:{line})\n"
    ) in result.stdout
    assert "  [Service]\n  SystemCallFilter=clone\n" in result.stdout


def test_check_fails_the_old_oci_profile_that_refuses_the_runtimes_own_calls() -> None:
    policy, trace = str(BEFORE / "true.seccomp.json"), str(FIXTURE_TRACES / "true.trace.json")
    result = invoke("check", "--policy", policy, trace)
    assert result.exit_code == 1, result.stdout
    assert (
        "  syscall fstatfs: refused with EPERM by the syscall filter\n"
        "      needed though no run called it: the runtime's, not the workload's: runc 1.1.5+ds1 (200/200 starts with "
        "no_new_privileges, 200/200 without) calls it between loading the filter and the exec\n"
    ) in result.stdout
    assert "  syscall setresuid: refused with EPERM by the syscall filter\n" in result.stdout  # crun's
    runc = invoke("check", "--policy", policy, "--runtime", "runc", trace)
    assert runc.exit_code == 1 and "fstatfs" in runc.stdout and "setresuid" not in runc.stdout
    workload_only = invoke("check", "--policy", policy, "--runtime", "none", trace)
    assert workload_only.exit_code == 0, workload_only.stdout


def test_check_fails_the_old_oci_profile_of_a_sleep_that_cannot_resume_after_a_stop() -> None:
    result = invoke("check", "--policy", str(BEFORE / "sleep.seccomp.json"), "--runtime", "none",
                    str(FIXTURE_TRACES / "sleep.trace.json"))  # fmt: skip
    assert result.exit_code == 1, result.stdout
    assert (
        "  syscall restart_syscall: refused with EPERM by the syscall filter\n"
        "      clock_nanosleep, futex: 2× in 1/1 runs by /bin/sleep, first at 0.001s\n"
        "      needed though no run called it: a process stopped and continued (SIGSTOP and SIGCONT, docker pause, a "
        "debugger) in a timed sleep resumes it through restart_syscall\n"
    ) in result.stdout
    assert result.stdout.startswith("profiler: sleep") and "1 missing" in result.stdout
