"""The SARIF 2.1.0 report, for code scanning: every finding a result at the lines of the policy it is about.

One run of the tool `profiler`. Rule ids are stable, and made of names profiler owns, never of text from a file:
    missing/KIND        the traces need it and the policy refuses it (level error: `check` fails)
    excess/KIND         allowed, used by no trace (note: `check --strict` fails on it); one result per
                        danger and reason, as the text report groups them
    warning/TOPIC       portability, privilege, coverage (note)
    lint/FORMAT/RULE    what the consumer ignores or reads differently (warning); RULE is LintFinding.rule:
                        the setting read (SystemCallFilter, defaultErrnoRet) or the syntax rule broken
    started/KIND, stopped/KIND   of a drift (note; at no line: two profiles have none)
KIND is an ItemKind (syscall, capability, ...), TOPIC a Topic. A missing or excess item is located at every line
that sets its part of the policy (each SystemCallFilter= line of the unit and its drop-ins, an OCI profile's
defaultAction and syscalls), the file itself where no line does; a relative path stays relative, for the
checkout it was given in (code scanning resolves it against the repository).
"""

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any, assert_never
from urllib.parse import quote

from generators.comparison import Comparison, Drift, ItemKind
from generators.interface import LintFinding, Place, Policy, PolicyPart
from generators.reports.interface import Report
from generators.reports.phrases import excess_groups, where_text
from profiler import __version__
from profiler.escaping import json_dumps

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def policy_part(kind: ItemKind) -> PolicyPart:
    """The part of a policy that allows or refuses items of a kind."""
    match kind:
        case ItemKind.SYSCALL:
            return PolicyPart.SYSCALLS
        case ItemKind.CAPABILITY:
            return PolicyPart.CAPABILITY_BOUNDING
        case ItemKind.AMBIENT:
            return PolicyPart.AMBIENT_CAPABILITIES
        case ItemKind.FAMILY:
            return PolicyPart.ADDRESS_FAMILIES
        case ItemKind.NAMESPACE:
            return PolicyPart.NAMESPACES
        case ItemKind.ARCHITECTURE:
            return PolicyPart.ARCHITECTURES
        case ItemKind.SETTING:
            return PolicyPart.SANDBOX
        case _:
            assert_never(kind)


def _uri(source: str) -> str:
    path = PurePosixPath(source)
    return path.as_uri() if path.is_absolute() else quote(source)


def _location(place: Place) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(place.source)}}
    if place.line:
        physical["region"] = {"startLine": place.line}
    return {"physicalLocation": physical}


class _Log:
    """The results of one run, with the rules they name, each described once in the order first used."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self.results: list[dict[str, Any]] = []

    def add(self, rule: str, description: str, level: str, message: str, places: Iterable[Place]) -> None:
        self.rules.setdefault(rule, description)
        self.results.append(
            {
                "ruleId": rule,
                "ruleIndex": list(self.rules).index(rule),
                "level": level,
                "message": {"text": message},
                "locations": [_location(place) for place in places],
            }
        )

    def add_finding(self, policy: Policy, finding: LintFinding) -> None:
        self.add(
            f"lint/{policy.format.value}/{finding.rule}",
            f"{policy.format.value} policy lint: {finding.rule}",
            "warning",
            finding.message,
            [Place(finding.source, finding.line)],
        )

    def text(self) -> str:
        driver = {
            "name": "profiler",
            "version": __version__,
            "rules": [{"id": rule, "shortDescription": {"text": text}} for rule, text in self.rules.items()],
        }
        log = {
            "$schema": SARIF_SCHEMA_URI,
            "version": SARIF_VERSION,
            "runs": [{"tool": {"driver": driver}, "results": self.results}],
        }
        return json_dumps(log, indent=2) + "\n"


def _places(policy: Policy, kind: ItemKind) -> tuple[Place, ...]:
    return policy.places_of(policy_part(kind)) or (Place(policy.source, None),)


class SarifReport(Report):
    def comparison(self, comparison: Comparison) -> str:
        log, policy = _Log(), comparison.policy
        for item in comparison.missing:
            need = item.need
            where = where_text(need.evidence, comparison.profile, comparison.min_runs) if need.evidence.runs else ""
            log.add(
                f"missing/{need.kind.value}",
                f"{need.kind.label}: needed by the traces, refused by the policy",
                "error",
                f"{need.kind.label} {need.name}: {item.refused}" + (f"; needed by {where}" if where else ""),
                _places(policy, need.kind),
            )
        for first, names in excess_groups(comparison.excess):
            why = f": {first.rating.why}" if first.rating.why else ""
            note = f"; {first.note}" if first.note else ""
            log.add(
                f"excess/{first.kind.value}",
                f"{first.kind.label}: allowed by the policy, used by no trace",
                "note",
                f"{first.rating.danger.label} {first.kind.label} {' '.join(names)}{why}: allowed, and no trace used "
                f"{'them' if len(names) > 1 else 'it'}{note}",
                _places(policy, first.kind),
            )
        for advisory in comparison.advisories:
            subject = f"{advisory.subject}: " if advisory.subject else ""
            log.add(
                f"warning/{advisory.topic.value}",
                f"{advisory.topic.value}: what the policy or the traces cannot show",
                "note",
                subject + advisory.message,
                [Place(policy.source, None)],
            )
        for finding in policy.findings:
            log.add_finding(policy, finding)
        return log.text()

    def drift(self, drift: Drift) -> str:
        log = _Log()
        for change, verb, needs, profile in (
            ("started", "started to need", drift.started, drift.new),
            ("stopped", "stopped using", drift.stopped, drift.old),
        ):
            for need in needs:
                log.add(
                    f"{change}/{need.kind.value}",
                    f"{need.kind.label}: the component {verb} it",
                    "note",
                    f"{verb} {need.kind.label} {need.name}: {where_text(need.evidence, profile, 1)}",
                    (),
                )
        return log.text()

    def lint(self, policies: Sequence[Policy]) -> str:
        log = _Log()
        for policy in policies:
            for finding in policy.findings:
                log.add_finding(policy, finding)
        return log.text()
