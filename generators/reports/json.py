"""The JSON report, for other tools: stable keys, escaped exactly (profiler.escaping.json_dumps).

JSON of a comparison ("schema": "profiler-comparison", "schema_version": 2):
    component, runs [{source, started_at, hostname, user, program}], policy {source, format},
    passed (nothing missing), passed_strict (nothing missing and nothing in excess),
    missing [{kind, name, refused, uncertain, because, count, runs, programs, first_s, detail,
              paths [{program, syscall, via, frames, inferred, count, runs}]}],
    excess [{kind, name, danger, why, note}]   most dangerous first,
    warnings [{topic, subject, message}], lint [{source, line, rule, message}],
    fix: null, or {allow {KIND: [names]}, portable [names], enosys [names], undo [{setting, source, line, undo}],
          how, text, language, notes}
JSON of a drift ("schema": "profiler-drift", "schema_version": 2):
    old, new {component, runs}, started, stopped [{kind, name, count, runs, programs, first_s, detail}], notes
JSON of a lint ("schema": "profiler-lint", "schema_version": 1):
    policies [{source, format, lint [{source, line, rule, message}]}]
KIND is one of syscall, capability, ambient_capability, family, namespace, architecture; runs are indexes
into the runs of the profile the item comes from; frames are innermost first; inferred is null, or why a need
no check showed was inferred; first_s is null when unknown. A syscall no run made but a rule makes a need (the
runtime's calls, restart_syscall after a timed sleep, clone where clone3 answers ENOSYS) says why in detail;
because names the syscalls that imply it, whose evidence count, runs and programs are. Version 2 holds each
run's program where version 1 held its whole command.
"""

from collections.abc import Sequence
from typing import Any

from generators.comparison import Comparison, Drift, Need
from generators.formats import correction
from generators.interface import LintFinding, Policy
from generators.profile import Evidence, Profile
from generators.reports.interface import Report
from profiler.escaping import json_dumps

COMPARISON_SCHEMA = "profiler-comparison"


DRIFT_SCHEMA = "profiler-drift"


LINT_SCHEMA = "profiler-lint"


SCHEMA_VERSION = 2


def _evidence_json(evidence: Evidence) -> dict[str, Any]:
    return {
        "count": evidence.count,
        "runs": list(evidence.runs),
        "programs": list(evidence.programs),
        "first_s": evidence.first_s,
    }


def _need_json(need: Need) -> dict[str, Any]:
    return {"kind": need.kind.value, "name": need.name, **_evidence_json(need.evidence), "detail": need.detail}


def _finding_json(finding: LintFinding) -> dict[str, Any]:
    return {"source": finding.source, "line": finding.line, "rule": finding.rule, "message": finding.message}


def _profile_json(profile: Profile) -> dict[str, Any]:
    return {
        "component": profile.component,
        "runs": [
            {
                "source": run.source,
                "started_at": run.started_at,
                "hostname": run.hostname,
                "user": run.user,
                "program": run.program,
            }
            for run in profile.runs
        ],
    }


class JsonReport(Report):
    def comparison(self, comparison: Comparison) -> str:
        fix = correction(comparison)
        data = {
            "schema": COMPARISON_SCHEMA,
            "schema_version": SCHEMA_VERSION,
            **_profile_json(comparison.profile),
            "policy": {"source": comparison.policy.source, "format": comparison.policy.format.value},
            "passed": comparison.passed(),
            "passed_strict": comparison.passed(strict=True),
            "missing": [
                {
                    **_need_json(item.need),
                    "refused": item.refused,
                    "uncertain": item.uncertain,
                    "because": list(item.need.because),
                    "paths": [
                        {
                            "program": path.program,
                            "syscall": path.syscall,
                            "via": path.via,
                            "frames": list(path.frames),
                            "inferred": path.inferred,
                            "count": path.evidence.count,
                            "runs": list(path.evidence.runs),
                        }
                        for path in item.need.paths
                    ],
                }
                for item in comparison.missing
            ],
            "excess": [
                {
                    "kind": item.kind.value,
                    "name": item.name,
                    "danger": item.rating.danger.label,
                    "why": item.rating.why,
                    "note": item.note,
                }
                for item in comparison.excess
            ],
            "warnings": [
                {"topic": item.topic.value, "subject": item.subject, "message": item.message}
                for item in comparison.advisories
            ],
            "lint": [_finding_json(finding) for finding in comparison.policy.findings],
            "fix": None
            if fix is None
            else {
                "allow": {kind.value: list(names) for kind, names in comparison.fix.allow},
                "portable": list(comparison.fix.portable),
                "enosys": list(comparison.fix.enosys),
                "undo": [
                    {"setting": each.setting, "source": each.source, "line": each.line, "undo": each.undo}
                    for each in comparison.fix.undo
                ],
                "how": fix.how,
                "text": fix.text,
                "language": fix.language,
                "notes": list(fix.notes),
            },
        }
        return json_dumps(data, indent=2) + "\n"

    def drift(self, drift: Drift) -> str:
        data = {
            "schema": DRIFT_SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "old": _profile_json(drift.old),
            "new": _profile_json(drift.new),
            "started": [_need_json(need) for need in drift.started],
            "stopped": [_need_json(need) for need in drift.stopped],
            "notes": list(drift.notes),
        }
        return json_dumps(data, indent=2) + "\n"

    def lint(self, policies: Sequence[Policy]) -> str:
        data = {
            "schema": LINT_SCHEMA,
            "schema_version": 1,
            "policies": [
                {
                    "source": policy.source,
                    "format": policy.format.value,
                    "lint": [_finding_json(finding) for finding in policy.findings],
                }
                for policy in policies
            ],
        }
        return json_dumps(data, indent=2) + "\n"
