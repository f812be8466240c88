"""The text report of a comparison and of a drift, for a terminal: every line escaped (profiler.escaping.visible)."""

import textwrap
from collections.abc import Iterable, Sequence

from generators.comparison import Comparison, Drift, Missing
from generators.correction import Correction
from generators.formats import correction
from generators.interface import Policy
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

TEXT_WIDTH = 120  # long lists of names wrap; the lines that say where an item is needed do not


def _text(lines: Iterable[str]) -> str:
    """Lines for a terminal, each escaped whole: a field that holds a newline or ESC cannot break or act."""
    return "".join(visible(line) + "\n" for line in lines)


class TextReport(Report):
    def comparison(self, comparison: Comparison) -> str:
        profile, policy = comparison.profile, comparison.policy
        lines = [f"profiler: {runs_text(profile)} against {policy.source} ({policy.format.value})", ""]
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
            for first, names in excess_groups(comparison.excess):
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
        lines.append(verdict_summary(comparison))
        return _text(lines)

    @staticmethod
    def _missing(item: Missing, comparison: Comparison) -> list[str]:
        need = item.need
        lines = [f"  {need.kind.label} {need.name}: {item.refused}"]
        if need.evidence.runs:  # a need implied by a rule, such as the runtime's calls, may have no run of its own
            lines.append(
                f"      {because_prefix(need)}{where_text(need.evidence, comparison.profile, comparison.min_runs)}"
            )
        if need.detail:
            lines.append(f"      {need.detail}")
        for where, origin in path_lines(need):
            lines += [f"      {where}", f"        {origin}"]
        return lines

    @staticmethod
    def _fix(fix: Correction) -> list[str]:
        lines = [f"Fix: {fix.how}"]
        lines += [f"  {line}" for line in fix.text.splitlines()]
        lines += [f"  and {note}" for note in fix.notes]
        return [*lines, ""]

    def drift(self, drift: Drift) -> str:
        lines = [f"profiler: {runs_text(drift.old)} → {runs_text(drift.new)}", ""]
        for title, items, profile in (
            ("Started to need", drift.started, drift.new),
            ("Stopped using", drift.stopped, drift.old),
        ):
            lines.append(f"{title}: {len(items) or 'nothing'}")
            for need in items:
                detail = f"; {need.detail}" if need.detail else ""
                lines.append(f"  {need.kind.label} {need.name}: {where_text(need.evidence, profile, 1)}{detail}")
            lines.append("")
        lines += [f"note: {note}" for note in drift.notes]
        while lines and not lines[-1]:
            lines.pop()
        return _text(lines)

    def lint(self, policies: Sequence[Policy]) -> str:
        return _text([*(str(finding) for policy in policies for finding in policy.findings), lint_summary(policies)])
