"""Reports of a comparison (traces against a policy) and of drift (two profiles), as text, Markdown or JSON.

    ReportFormat    the formats; .report() maps each to its class, exhaustively
    Report          renders a Comparison and a Drift
    TextReport      for a terminal
    MarkdownReport  for a pull-request comment
    JsonReport      for other tools: stable keys, described below

Every string from a trace or a policy (paths, names, lint messages that quote a file) is escaped for the
format's reader: text through profiler.escaping.visible, line by line, so that no control character reaches a
terminal or forges a line; Markdown also with its own syntax escaped (markdown_text, markdown_code), so that
nothing recorded adds a table cell, a link or an image to a pull-request comment; JSON exactly, with JSON's
escapes (profiler.escaping.json_dumps). A run is named by its program, never its command line: reports get
published, and arguments can hold secrets.

JSON of a comparison ("schema": "profiler-comparison", "schema_version": 2):
    component, runs [{source, started_at, hostname, user, program}], policy {source, format},
    passed (nothing missing), passed_strict (nothing missing and nothing in excess),
    missing [{kind, name, refused, uncertain, because, count, runs, programs, first_s, detail,
              paths [{program, syscall, via, frames, inferred, count, runs}]}],
    excess [{kind, name, danger, why, note}]   most dangerous first,
    warnings [{topic, subject, message}], lint [{source, line, message}],
    fix: null, or {allow {KIND: [names]}, portable [names], enosys [names], undo [{setting, source, line, undo}],
          how, text, language, notes}
JSON of a drift ("schema": "profiler-drift", "schema_version": 2):
    old, new {component, runs}, started, stopped [{kind, name, count, runs, programs, first_s, detail}], notes
KIND is one of syscall, capability, ambient_capability, family, namespace, architecture; runs are indexes
into the runs of the profile the item comes from; frames are innermost first; inferred is null, or why a need
no check showed was inferred; first_s is null when unknown. A syscall no run made but a rule makes a need (the
runtime's calls, restart_syscall after a timed sleep, clone where clone3 answers ENOSYS) says why in detail;
because names the syscalls that imply it, whose evidence count, runs and programs are. Version 2 holds each
run's program where version 1 held its whole command.
"""

import re
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, assert_never

from generators.correction import Correction
from generators.diff import Comparison, Drift, Excess, Missing, Need
from generators.evidence_text import describe_evidence
from generators.explain import path_origin
from generators.formats import correction
from generators.profile import Evidence, Profile
from profiler.escaping import json_dumps, visible

COMPARISON_SCHEMA = "profiler-comparison"
DRIFT_SCHEMA = "profiler-drift"
SCHEMA_VERSION = 2
TEXT_WIDTH = 120  # long lists of names wrap; the lines that say where an item is needed do not


class ReportFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"

    def report(self) -> "Report":
        match self:
            case ReportFormat.TEXT:
                return TextReport()
            case ReportFormat.MARKDOWN:
                return MarkdownReport()
            case ReportFormat.JSON:
                return JsonReport()
            case _:
                assert_never(self)


class Report(ABC):
    @abstractmethod
    def comparison(self, comparison: Comparison) -> str:
        """The report of `profiler diff --policy` and `profiler check`."""

    @abstractmethod
    def drift(self, drift: Drift) -> str:
        """The report of `profiler diff OLD NEW`."""


# --- what every format says the same way ----------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _runs(profile: Profile) -> str:
    sources = ", ".join(run.source for run in profile.runs)
    return f"{profile.component} ({_count(len(profile.runs), 'run')}: {sources})"


def _where(evidence: Evidence, profile: Profile, min_runs: int) -> str:
    text = describe_evidence(evidence, profile, min_runs)
    return text + (f", first at {evidence.first_s:.3f}s" if evidence.first_s is not None else "")


def _because(need: Need) -> str:
    """For a need implied by other syscalls, whose evidence it shows: "futex, poll: "."""
    return f"{', '.join(need.because)}: " if need.because else ""


def _path_line(need: Need) -> list[tuple[str, str]]:
    """(where, origin) of each path that needed a capability: its kernel path, or why it was inferred."""
    lines = []
    for path in need.paths:
        where = f"{path.program} in {path.syscall or 'no syscall'}" + (f" via {path.via}" if path.via else "")
        lines.append((f"{where}, {path.evidence.count}×", path_origin(path)))
    return lines


def _excess_groups(excess: Sequence[Excess]) -> list[tuple[Excess, list[str]]]:
    """Candidates sharing danger, kind, reason and note, in order of their first member."""
    groups: dict[tuple[object, ...], tuple[Excess, list[str]]] = {}
    for item in excess:
        key = (item.rating, item.kind, item.note)
        groups.setdefault(key, (item, []))[1].append(item.name)
    return list(groups.values())


def _summary(comparison: Comparison) -> str:
    verdict = "check passes" if comparison.passed() else "check fails"
    if comparison.passed() and not comparison.passed(strict=True):
        verdict += " (fails with --strict)"
    return (
        f"{len(comparison.missing)} missing, {len(comparison.excess)} in excess, "
        f"{_count(len(comparison.advisories), 'warning')}, {_count(len(comparison.policy.findings), 'lint finding')}: "
        f"{verdict}"
    )


# --- text -----------------------------------------------------------------------------------------------------------


def _text(lines: Iterable[str]) -> str:
    """Lines for a terminal, each escaped whole: a field that holds a newline or ESC cannot break or act."""
    return "".join(visible(line) + "\n" for line in lines)


class TextReport(Report):
    def comparison(self, comparison: Comparison) -> str:
        profile, policy = comparison.profile, comparison.policy
        lines = [f"profiler: {_runs(profile)} against {policy.source} ({policy.format.value})", ""]
        if comparison.missing:
            lines.append(f"Missing: {len(comparison.missing)} needed, refused by the policy (the workload would break)")
            for item in comparison.missing:
                lines += self._missing(item, comparison)
            lines.append("")
        if comparison.excess:
            lines.append(
                f"Excess: {len(comparison.excess)} allowed, used by no trace "
                "(candidates to remove, most dangerous first)"
            )
            for first, names in _excess_groups(comparison.excess):
                why = f": {first.rating.why}" if first.rating.why else ""
                text = f"{first.rating.danger.label:<8}  {first.kind.label} {' '.join(names)}{why}"
                lines += textwrap.wrap(
                    text, TEXT_WIDTH, initial_indent="  ", subsequent_indent=" " * 12, break_on_hyphens=False
                )
                if first.note:
                    lines.append(f"            {first.note}")
            lines.append("")
        if comparison.advisories:
            lines.append("Warnings")
            for advisory in comparison.advisories:
                subject = f"{advisory.subject}: " if advisory.subject else ""
                lines.append(f"  {advisory.topic.value}: {subject}{advisory.message}")
            lines.append("")
        if policy.findings:
            lines.append("Policy lint")
            lines += [f"  {finding}" for finding in policy.findings]
            lines.append("")
        fix = correction(comparison)
        if fix is not None:
            lines += self._fix(fix)
        lines.append(_summary(comparison))
        return _text(lines)

    @staticmethod
    def _missing(item: Missing, comparison: Comparison) -> list[str]:
        need = item.need
        lines = [f"  {need.kind.label} {need.name}: {item.refused}"]
        if need.evidence.runs:  # a need implied by a rule, such as the runtime's calls, may have no run of its own
            lines.append(f"      {_because(need)}{_where(need.evidence, comparison.profile, comparison.min_runs)}")
        if need.detail:
            lines.append(f"      {need.detail}")
        for where, origin in _path_line(need):
            lines += [f"      {where}", f"        {origin}"]
        return lines

    @staticmethod
    def _fix(fix: Correction) -> list[str]:
        lines = [f"Fix: {fix.how}"]
        lines += [f"  {line}" for line in fix.text.splitlines()]
        lines += [f"  and {note}" for note in fix.notes]
        return [*lines, ""]

    def drift(self, drift: Drift) -> str:
        lines = [f"profiler: {_runs(drift.old)} → {_runs(drift.new)}", ""]
        for title, items, profile in (
            ("Started to need", drift.started, drift.new),
            ("Stopped using", drift.stopped, drift.old),
        ):
            lines.append(f"{title}: {len(items) or 'nothing'}")
            for need in items:
                detail = f"; {need.detail}" if need.detail else ""
                lines.append(f"  {need.kind.label} {need.name}: {_where(need.evidence, profile, 1)}{detail}")
            lines.append("")
        lines += [f"note: {note}" for note in drift.notes]
        while lines and not lines[-1]:
            lines.pop()
        return _text(lines)


# --- Markdown -------------------------------------------------------------------------------------------------------


# What Markdown (CommonMark and GitHub's tables and strikethrough) acts on inside a line: escapes, code, emphasis,
# links and images, HTML, table cells. A backslash before any of them shows it as it is.
_MARKDOWN_ACTIVE = re.compile(r"[\\`*_\[\]<>|~!]")


def markdown_text(text: str) -> str:
    """Text for a line or a table cell of Markdown: escaped visibly, then with every character that Markdown would
    act on escaped, so that a recorded path can neither end the cell nor add a link, an image or HTML."""
    return _MARKDOWN_ACTIVE.sub(lambda match: "\\" + match.group(), visible(text))


def markdown_code(text: str, *, in_table: bool = False) -> str:
    """Text as inline code, escaped visibly: delimited by one backtick more than the longest run of them inside
    (where a code span ends), padded where it starts or ends with one; in a table cell | is escaped too, since
    GitHub ends a cell at | even inside code."""
    shown = visible(text)
    if in_table:
        shown = shown.replace("|", "\\|")
    fence = "`" * (max(map(len, re.findall("`+", shown)), default=0) + 1)
    padded = shown[:1] == "`" or shown[-1:] == "`" or (shown[:1] == " " and shown[-1:] == " ") or not shown
    return f"{fence} {shown} {fence}" if padded else f"{fence}{shown}{fence}"


def _code_block(text: str, language: str) -> list[str]:
    """A fenced code block of our own text, with a fence longer than any run of backticks in it."""
    lines = [visible(line) for line in text.rstrip("\n").split("\n")]
    fence = "`" * max(3, max((len(run) + 1 for line in lines for run in re.findall("`+", line)), default=0))
    return [f"{fence}{language}", *lines, fence]


def _markdown(lines: list[str]) -> str:
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


class MarkdownReport(Report):
    """Every line is built from escaped parts: markdown_text for prose, markdown_code for names and paths."""

    def comparison(self, comparison: Comparison) -> str:
        profile, policy = comparison.profile, comparison.policy
        mark = "passes" if comparison.passed() else "fails"
        runs = ", ".join(markdown_code(run.source) for run in profile.runs)
        lines = [
            f"### profiler check {mark}: {markdown_code(profile.component)} against {markdown_code(policy.source)} "
            f"({policy.format.value})",
            "",
            f"{markdown_text(_summary(comparison))}. Runs: {runs}.",
            "",
        ]
        if comparison.missing:
            lines += ["#### Missing: needed, refused by the policy", "", "| item | refused | where |", "|---|---|---|"]
            for item in comparison.missing:
                need = item.need
                where = (
                    _because(need) + _where(need.evidence, profile, comparison.min_runs) if need.evidence.runs else ""
                )
                parts = ["; ".join(part for part in (where, need.detail) if part)]
                parts += [f"{path_where}: {origin}" for path_where, origin in _path_line(need)]
                lines.append(
                    f"| {need.kind.label} {markdown_code(need.name, in_table=True)} | {markdown_text(item.refused)} | "
                    f"{'<br>'.join(map(markdown_text, parts))} |"
                )
            lines.append("")
        if comparison.excess:
            lines += [
                "#### Excess: allowed, used by no trace (candidates to remove, most dangerous first)",
                "",
                "| danger | items | why |",
                "|---|---|---|",
            ]
            for first, names in _excess_groups(comparison.excess):
                why = "; ".join(part for part in (first.rating.why, first.note) if part)
                items = " ".join(markdown_code(name, in_table=True) for name in names)
                lines.append(f"| {first.rating.danger.label} | {first.kind.label} {items} | {markdown_text(why)} |")
            lines.append("")
        if comparison.advisories:
            lines += ["#### Warnings", ""]
            for advisory in comparison.advisories:
                subject = f"{markdown_code(advisory.subject)}: " if advisory.subject else ""
                lines.append(f"- **{advisory.topic.value}** {subject}{markdown_text(advisory.message)}")
            lines.append("")
        if policy.findings:
            lines += ["#### Policy lint", ""]
            for finding in policy.findings:
                location = f"{finding.source}:{finding.line}" if finding.line else finding.source
                lines.append(f"- {markdown_code(location)}: {markdown_text(finding.message)}")
            lines.append("")
        fix = correction(comparison)
        if fix is not None:
            lines += ["#### Fix", "", markdown_text(fix.how), ""]
            if fix.text:
                lines += [*_code_block(fix.text, fix.language), ""]
            lines += [f"- and {markdown_text(note)}" for note in fix.notes]
        return _markdown(lines)

    def drift(self, drift: Drift) -> str:
        lines = [f"### profiler diff: {markdown_text(_runs(drift.old))} → {markdown_text(_runs(drift.new))}", ""]
        for title, items, profile in (
            ("Started to need", drift.started, drift.new),
            ("Stopped using", drift.stopped, drift.old),
        ):
            lines += [f"#### {title}: {len(items) or 'nothing'}", ""]
            if items:
                lines += ["| item | where |", "|---|---|"]
                for need in items:
                    where = _where(need.evidence, profile, 1) + (f"; {need.detail}" if need.detail else "")
                    lines.append(
                        f"| {need.kind.label} {markdown_code(need.name, in_table=True)} | {markdown_text(where)} |"
                    )
                lines.append("")
        lines += [f"- note: {markdown_text(note)}" for note in drift.notes]
        return _markdown(lines)


# --- JSON -----------------------------------------------------------------------------------------------------------


def _evidence_json(evidence: Evidence) -> dict[str, Any]:
    return {
        "count": evidence.count,
        "runs": list(evidence.runs),
        "programs": list(evidence.programs),
        "first_s": evidence.first_s,
    }


def _need_json(need: Need) -> dict[str, Any]:
    return {"kind": need.kind.value, "name": need.name, **_evidence_json(need.evidence), "detail": need.detail}


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
            "lint": [
                {"source": finding.source, "line": finding.line, "message": finding.message}
                for finding in comparison.policy.findings
            ],
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
