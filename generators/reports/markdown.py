"""The Markdown report, for a pull-request comment: what is recorded cannot add a cell, a link or an image."""

import re
from collections.abc import Sequence

from generators.comparison import Comparison, Drift
from generators.formats import correction
from generators.interface import LintFinding, Policy
from generators.reports.interface import Report
from generators.reports.phrases import (
    because_prefix,
    excess_groups,
    lint_summary,
    path_lines,
    runs_text,
    verdict_summary,
    where_text,
)
from profiler.escaping import visible

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
            f"{markdown_text(verdict_summary(comparison))}. Runs: {runs}.",
            "",
        ]
        if comparison.missing:
            lines += ["#### Missing: needed, refused by the policy", "", "| item | refused | where |", "|---|---|---|"]
            for item in comparison.missing:
                need = item.need
                where = (
                    because_prefix(need) + where_text(need.evidence, profile, comparison.min_runs)
                    if need.evidence.runs
                    else ""
                )
                parts = ["; ".join(part for part in (where, need.detail) if part)]
                parts += [f"{path_where}: {origin}" for path_where, origin in path_lines(need)]
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
            for first, names in excess_groups(comparison.excess):
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
            lines += ["#### Policy lint", "", *map(_finding_line, policy.findings), ""]
        fix = correction(comparison)
        if fix is not None:
            lines += ["#### Fix", "", markdown_text(fix.how), ""]
            if fix.text:
                lines += [*_code_block(fix.text, fix.language), ""]
            lines += [f"- and {markdown_text(note)}" for note in fix.notes]
        return _markdown(lines)

    def lint(self, policies: Sequence[Policy]) -> str:
        lines = [f"### {markdown_text(lint_summary(policies))}", ""]
        lines += [_finding_line(finding) for policy in policies for finding in policy.findings]
        return _markdown(lines)

    def drift(self, drift: Drift) -> str:
        lines = [
            f"### profiler diff: {markdown_text(runs_text(drift.old))} → {markdown_text(runs_text(drift.new))}",
            "",
        ]
        for title, items, profile in (
            ("Started to need", drift.started, drift.new),
            ("Stopped using", drift.stopped, drift.old),
        ):
            lines += [f"#### {title}: {len(items) or 'nothing'}", ""]
            if items:
                lines += ["| item | where |", "|---|---|"]
                for need in items:
                    where = where_text(need.evidence, profile, 1) + (f"; {need.detail}" if need.detail else "")
                    lines.append(
                        f"| {need.kind.label} {markdown_code(need.name, in_table=True)} | {markdown_text(where)} |"
                    )
                lines.append("")
        lines += [f"- note: {markdown_text(note)}" for note in drift.notes]
        return _markdown(lines)


def _finding_line(finding: LintFinding) -> str:
    location = f"{finding.source}:{finding.line}" if finding.line else finding.source
    return f"- {markdown_code(location)}: {markdown_text(finding.message)}"
