"""What every report format says the same way: counts, runs, where an item was needed, the verdict."""

from collections.abc import Sequence

from generators.comparison import Comparison, Excess, Need
from generators.evidence import describe_evidence, path_origin
from generators.interface import Policy
from generators.profile import Evidence, Profile


def count_text(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def runs_text(profile: Profile) -> str:
    sources = ", ".join(run.source for run in profile.runs)
    return f"{profile.component} ({count_text(len(profile.runs), 'run')}: {sources})"


def where_text(evidence: Evidence, profile: Profile, min_runs: int) -> str:
    text = describe_evidence(evidence, profile, min_runs)
    return text + (f", first at {evidence.first_s:.3f}s" if evidence.first_s is not None else "")


def because_prefix(need: Need) -> str:
    """For a need implied by other syscalls, whose evidence it shows: "futex, poll: "."""
    return f"{', '.join(need.because)}: " if need.because else ""


def path_lines(need: Need) -> list[tuple[str, str]]:
    """(where, origin) of each path that needed a capability: its kernel path, or why it was inferred."""
    lines = []
    for path in need.paths:
        where = f"{path.program} in {path.syscall or 'no syscall'}" + (f" via {path.via}" if path.via else "")
        lines.append((f"{where}, {path.evidence.count}×", path_origin(path)))
    return lines


def excess_groups(excess: Sequence[Excess]) -> list[tuple[Excess, list[str]]]:
    """Candidates sharing danger, kind, reason and note, in order of their first member."""
    groups: dict[tuple[object, ...], tuple[Excess, list[str]]] = {}
    for item in excess:
        key = (item.rating, item.kind, item.note)
        groups.setdefault(key, (item, []))[1].append(item.name)
    return list(groups.values())


def verdict_summary(comparison: Comparison) -> str:
    verdict = "check passes" if comparison.passed() else "check fails"
    if comparison.passed() and not comparison.passed(strict=True):
        verdict += " (fails with --strict)"
    return (
        f"{len(comparison.missing)} missing, {len(comparison.excess)} in excess, "
        f"{count_text(len(comparison.advisories), 'warning')}, "
        f"{count_text(len(comparison.policy.findings), 'lint finding')}: {verdict}"
    )


def lint_summary(policies: Sequence[Policy]) -> str:
    """The last line of `profiler lint`: how many policy files, and how many findings."""
    found = sum(len(policy.findings) for policy in policies)
    findings = count_text(found, "finding") if found else "no findings"
    return f"profiler lint: {count_text(len(policies), 'policy file')}, {findings}"
