"""The SARIF report: valid against the published SARIF 2.1.0 schema, each finding at its policy's file and line."""

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from generators.systemd.names import SETTINGS
from profiler.cli import main

REPOSITORY = Path(__file__).resolve().parents[3]
SCHEMA = REPOSITORY / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
SYSTEMD = Path("tests/fixtures/systemd")
GIT_TRACES = [f"traces/{name}.trace.json" for name in ("git-clone", "git-clone-bare", "git-clone-shallow")]


@functools.cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def sarif(*args: str, exit_code: int) -> dict[str, Any]:
    """The SARIF profiler prints, run in the checkout (paths relative, as CI gives them), validated."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPOSITORY)
        result = CliRunner().invoke(main, [*args, "--format", "sarif"])
    assert result.exit_code == exit_code, result.output
    log: dict[str, Any] = json.loads(result.stdout)
    _validator().validate(log)
    return log


def results(log: dict[str, Any]) -> list[dict[str, Any]]:
    (run,) = log["runs"]
    return list(run["results"])


def places(result: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [
        (
            each["physicalLocation"]["artifactLocation"]["uri"],
            each["physicalLocation"].get("region", {}).get("startLine"),
        )
        for each in result["locations"]
    ]


def lines_setting(path: Path, key: str) -> list[int]:
    return [
        number
        for number, line in enumerate((REPOSITORY / path).read_text().splitlines(), 1)
        if line.startswith(f"{key}=")
    ]


def test_the_validator_refuses_what_sarif_does_not_allow() -> None:
    """The schema is what holds the line: a log without its version, or a result at line 0, is refused."""
    log = sarif("check", "--policy", "examples/git-clone.service", *GIT_TRACES, exit_code=1)
    for damage in (
        lambda each: each.pop("version"),
        lambda each: results(each)[0]["locations"][0]["physicalLocation"].update(region={"startLine": 0}),
    ):
        damaged = json.loads(json.dumps(log))
        damage(damaged)
        with pytest.raises(jsonschema.ValidationError):
            _validator().validate(damaged)


def test_a_missing_family_is_at_the_restrict_address_families_lines() -> None:
    log = sarif("check", "--policy", "examples/git-clone.service", *GIT_TRACES, exit_code=1)
    (missing,) = [each for each in results(log) if each["level"] == "error"]
    assert missing["ruleId"] == "missing/family"
    assert missing["message"]["text"].startswith("address family AF_UNIX: address family not allowed; needed by ")
    unit = Path("examples/git-clone.service")
    assert places(missing) == [(str(unit), line) for line in lines_setting(unit, "RestrictAddressFamilies")]
    (lint,) = [each for each in results(log) if each["ruleId"].startswith("lint/")]
    assert (lint["ruleId"], lint["level"], places(lint)) == (
        "lint/systemd/misplaced-tilde",
        "warning",
        [(str(unit), 14)],
    )
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[each["ruleIndex"]]["id"] == each["ruleId"] for each in results(log))


def test_a_missing_syscall_is_at_every_system_call_filter_line() -> None:
    """Several assignments, one continued over three lines: each is a location, at the line systemd names in its
    own messages (the last of a continued one), as lint findings are."""
    unit = SYSTEMD / "several-lines.service"
    log = sarif("check", "--policy", str(unit), *GIT_TRACES, exit_code=1)
    missing = [each for each in results(log) if each["ruleId"] == "missing/syscall"]
    assert missing
    assert lines_setting(unit, "SystemCallFilter") == [4, 7, 8]
    assert {tuple(places(each)) for each in missing} == {((str(unit), 6), (str(unit), 7), (str(unit), 8))}


def test_drop_ins_are_located_in_their_own_files() -> None:
    unit = SYSTEMD / "drop-ins.service"
    log = sarif("check", "--policy", str(unit), *GIT_TRACES, exit_code=1)
    located = {uri for each in results(log) for uri, _ in places(each)}
    assert any(uri.startswith(f"{unit}.d/") for uri in located), located


def test_an_oci_profile_is_located_at_its_json_lines(tmp_path: Path) -> None:
    profile = tmp_path / "git.json"
    rule = '{"names": ["read"], "action": "SCMP_ACT_ALLOW"}'
    profile.write_text(f'{{\n  "defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [\n    {rule}\n  ]\n}}\n')
    log = sarif("check", "--policy", str(profile), "--runtime", "none", *GIT_TRACES, exit_code=1)
    missing = [each for each in results(log) if each["ruleId"] == "missing/syscall"]
    assert missing
    assert {tuple(places(each)) for each in missing} == {((profile.as_uri(), 2), (profile.as_uri(), 3))}


def test_lint_rule_ids_are_names_profiler_owns_never_text_of_the_file() -> None:
    """unknown-names.service holds misspelt keys and sections: the rule ids stay a fixed vocabulary."""
    log = sarif("lint", str(SYSTEMD / "unknown-names.service"), "tests/fixtures/oci/docker-style.json", exit_code=1)
    syntax = {"unknown-key", "unknown-section", "wrong-section", "no-section", "no-equals", "no-key", "misplaced-tilde"}
    oci_keys = {"syscalls", "archMap", "architectures", "defaultErrnoRet", "comment", "unknown-key", "shadowed-rule"}
    for each in results(log):
        kind, policy_format, rule = each["ruleId"].split("/")
        assert kind == "lint"
        assert rule in (syntax | set(SETTINGS) if policy_format == "systemd" else oci_keys), each["ruleId"]
        ((_, line),) = places(each)
        assert line is not None and line > 0
    ids = {each["ruleId"] for each in results(log)}
    assert {"lint/systemd/unknown-key", "lint/systemd/unknown-section", "lint/oci/unknown-key"} <= ids


def test_a_drift_is_valid_sarif_with_no_location() -> None:
    log = sarif("diff", "traces/git-clone-bare.trace.json", "traces/git-clone.trace.json", exit_code=0)
    assert results(log)
    assert all(re.fullmatch(r"(started|stopped)/[a-z_]+", each["ruleId"]) for each in results(log))
    assert all(each["locations"] == [] for each in results(log))


def test_a_clean_lint_is_a_log_with_no_results() -> None:
    log = sarif("lint", "examples/corrected/git-clone.service", exit_code=0)
    assert results(log) == []


@pytest.mark.parametrize("name", ["git-clone-check.sarif", "git-clone-drift.sarif"])
def test_the_golden_sarif_is_valid(name: str) -> None:
    _validator().validate(json.loads((REPOSITORY / "tests" / "generators" / "golden" / name).read_text()))
