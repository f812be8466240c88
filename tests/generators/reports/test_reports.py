"""Reports of a comparison and of drift: golden files for each format, and what each format promises.

Regenerate the golden files after an intended change with PROFILER_UPDATE_GOLDEN=1, and read the diff.
"""

import json
from collections.abc import Callable

import pytest

from generators import reports
from generators.compare import compare, drift
from generators.comparison import Comparison, Drift
from generators.interface import LintFinding, PolicyFormat
from generators.reports.interface import ReportFormat
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import allow, deny, make_policy

Golden = Callable[[str, str], None]
SUFFIXES = {
    ReportFormat.TEXT: "txt",
    ReportFormat.MARKDOWN: "md",
    ReportFormat.JSON: "json",
    ReportFormat.SARIF: "sarif",
}


@pytest.fixture
def git_comparison(committed_profile: LoadTraces) -> Comparison:
    """Three git clones as nobody against a hand-written unit that misses some of what they need."""
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    needed = profile.syscall_names() - {"link", "symlink", "clone3", "fsync"}
    policy = make_policy(
        syscalls=allow(*needed, "ptrace", "mount", "getpid", "clock_gettime"),
        architectures=["x86_64"],
        bounding=allow("CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"),
        families=allow("AF_INET", "AF_INET6"),
        namespaces=deny("user"),
        no_new_privileges=True,
        user="nobody",
        findings=(
            LintFinding(
                "svc.service", 9, "'~' is not the first character: systemd ignores '~@mount'", "misplaced-tilde"
            ),
        ),
    )
    return compare(profile, policy, min_runs=2)


@pytest.fixture
def git_drift(committed_profile: LoadTraces) -> Drift:
    return drift(committed_profile("git-clone"), committed_profile("git-clone-shallow"))


@pytest.mark.parametrize("form", list(ReportFormat))
def test_comparison_report(git_comparison: Comparison, form: ReportFormat, golden: Golden) -> None:
    golden(f"git-clone-check.{SUFFIXES[form]}", reports.report(form).comparison(git_comparison))


@pytest.mark.parametrize("form", list(ReportFormat))
def test_drift_report(git_drift: Drift, form: ReportFormat, golden: Golden) -> None:
    golden(f"git-clone-drift.{SUFFIXES[form]}", reports.report(form).drift(git_drift))


def test_the_text_report_ends_with_the_fix_then_the_verdict(git_comparison: Comparison) -> None:
    lines = reports.report(ReportFormat.TEXT).comparison(git_comparison).splitlines()
    fix = lines.index("Fix: Add as a drop-in (systemctl edit svc.service): each line adds to the unit's own setting.")
    assert lines[fix + 1 : fix + 3] == ["  [Service]", "  SystemCallFilter=clone3 fsync link restart_syscall symlink"]
    assert lines[-1] == "6 missing, 35 in excess, 2 warnings, 1 lint finding: check fails"


def test_json_keys_are_the_documented_ones(git_comparison: Comparison, git_drift: Drift) -> None:
    data = json.loads(reports.report(ReportFormat.JSON).comparison(git_comparison))
    assert list(data) == [
        "schema", "schema_version", "component", "runs", "policy", "passed", "passed_strict",
        "missing", "excess", "warnings", "lint", "fix",
    ]  # fmt: skip
    assert (data["schema"], data["schema_version"]) == ("profiler-comparison", 2)
    assert [set(run) for run in data["runs"]] == [{"source", "started_at", "hostname", "user", "program"}] * 3
    assert set(data["missing"][0]) == {
        "kind", "name", "refused", "uncertain", "because", "count", "runs", "programs", "first_s", "detail", "paths",
    }  # fmt: skip
    assert set(data["excess"][0]) == {"kind", "name", "danger", "why", "note"}
    assert set(data["fix"]) == {"allow", "portable", "enosys", "undo", "how", "text", "language", "notes"}
    assert data["lint"] == [
        {
            "source": "svc.service",
            "line": 9,
            "rule": "misplaced-tilde",
            "message": git_comparison.policy.findings[0].message,
        }
    ]
    drift_data = json.loads(reports.report(ReportFormat.JSON).drift(git_drift))
    assert list(drift_data) == ["schema", "schema_version", "old", "new", "started", "stopped", "notes"]


def test_an_inferred_need_carries_its_reason_in_every_format(committed_profile: LoadTraces) -> None:
    comparison = compare(committed_profile("unshare-user-net"), make_policy(bounding=allow("CAP_SYS_ADMIN")))
    [path] = json.loads(reports.report(ReportFormat.JSON).comparison(comparison))["missing"][0]["paths"]
    assert set(path) == {"program", "syscall", "via", "frames", "inferred", "count", "runs"}
    assert (path["frames"], path["inferred"]) == ([], comparison.missing[0].need.paths[0].inferred)
    for form in (ReportFormat.TEXT, ReportFormat.MARKDOWN):
        text = reports.report(form).comparison(comparison)
        assert "inferred: root created a user namespace" in text and "not captured" not in text


def test_markdown_cells_escape_pipes(git_comparison: Comparison) -> None:
    odd = LintFinding("svc.service", None, "a | b", "syscalls")
    policy = make_policy(syscalls=allow("read"), findings=(odd,), policy_format=PolicyFormat.OCI)
    text = reports.report(ReportFormat.MARKDOWN).comparison(compare(git_comparison.profile, policy))
    assert "- `svc.service`: a \\| b" in text
    missing_rows = [line for line in text.splitlines() if line.startswith("| syscall")]
    assert missing_rows and all(line.count(" | ") == 2 for line in missing_rows)


def test_a_passing_policy_has_no_fix_section(git_comparison: Comparison) -> None:
    comparison = compare(git_comparison.profile, make_policy())
    text = reports.report(ReportFormat.TEXT).comparison(comparison)
    assert "Fix:" not in text and "Missing" not in text
    assert text.endswith("check passes (fails with --strict)\n")
    assert json.loads(reports.report(ReportFormat.JSON).comparison(comparison))["fix"] is None
