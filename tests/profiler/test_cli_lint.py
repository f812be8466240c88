"""`profiler lint`: the lint of `diff --policy` without traces, and check's exit statuses."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
TRACE = str(REPOSITORY / "traces" / "git-clone.trace.json")
POLICIES = [
    *sorted((REPOSITORY / "tests" / "fixtures" / "systemd").glob("*.service")),
    REPOSITORY / "tests" / "fixtures" / "oci" / "docker-style.json",
    REPOSITORY / "examples" / "git-clone.service",
]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(each) for each in args])


@pytest.mark.parametrize("policy", POLICIES, ids=lambda path: path.name)
def test_lint_finds_what_the_lint_section_of_diff_finds(policy: Path) -> None:
    compared = json.loads(invoke("diff", "--policy", policy, "--format", "json", TRACE).stdout)
    result = invoke("lint", policy, "--format", "json")
    linted = json.loads(result.stdout)
    assert linted["schema"] == "profiler-lint"
    ((read,),) = [linted["policies"]]
    assert read["source"] == str(policy)
    assert read["lint"] == compared["lint"]
    assert result.exit_code == (1 if compared["lint"] else 0)


def test_the_text_is_one_line_a_finding_and_a_count() -> None:
    unit = REPOSITORY / "examples" / "git-clone.service"
    result = invoke("lint", unit, REPOSITORY / "examples" / "corrected" / "git-clone.service")
    assert result.exit_code == 1
    finding, summary = result.stdout.splitlines()
    assert finding.startswith(f"{unit}:14: '~@privileged' is not the first word of the value")
    assert summary == "profiler lint: 2 policy files, 1 finding"


def test_a_clean_policy_exits_0() -> None:
    result = invoke("lint", REPOSITORY / "examples" / "corrected" / "git-clone.service")
    assert (result.exit_code, result.stdout) == (0, "profiler lint: 1 policy file, no findings\n")


def test_markdown_is_a_list_of_findings_under_the_count() -> None:
    unit = REPOSITORY / "examples" / "git-clone.service"
    result = invoke("lint", unit, "--format", "markdown")
    assert result.exit_code == 1
    heading, blank, finding = result.stdout.splitlines()
    assert (heading, blank) == ("### profiler lint: 1 policy file, 1 finding", "")
    assert finding.startswith(f"- `{unit}:14`: '\\~@privileged' is not the first word")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nothing-here.service"], "nothing-here.service"),
        (["policy.txt"], "cannot tell the policy format from the file name; give --policy-format"),
    ],
)
def test_an_unreadable_policy_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "policy.txt").write_text("[Service]\n")
    result = invoke("lint", *(tmp_path / each for each in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("profiler: error: ") and message in line


def test_lint_needs_a_policy() -> None:
    result = invoke("lint")
    assert result.exit_code == 2
    assert "missing argument 'POLICY...'" in result.stderr


def test_a_drop_in_beside_its_unit_is_linted_as_systemd_loads_it(tmp_path: Path) -> None:
    """Alone, the corrected drop-in restricts families with no SystemCallArchitectures=native to make that hold
    for 32-bit programs; with its unit (which sets it) it has nothing to find, and the unit is read once."""
    unit = tmp_path / "git-clone.service"
    drop_ins = tmp_path / "git-clone.service.d"
    drop_ins.mkdir()
    corrected = REPOSITORY / "examples" / "corrected"
    unit.write_bytes((corrected / "git-clone.service").read_bytes())
    (drop_ins / "50-profiler.conf").write_bytes((corrected / "git-clone.service.d" / "50-profiler.conf").read_bytes())
    result = invoke("lint", drop_ins / "50-profiler.conf", unit)
    assert (result.exit_code, result.stdout) == (0, "profiler lint: 1 policy file, no findings\n")
    (drop_ins.parent / "elsewhere").mkdir()
    alone = drop_ins.parent / "elsewhere" / "50-profiler.conf"
    alone.write_bytes((drop_ins / "50-profiler.conf").read_bytes())
    result = invoke("lint", alone)
    assert result.exit_code == 1
    assert "RestrictAddressFamilies= does not apply to 32-bit x86 programs" in result.stdout
