"""Lint of a unit as read: what systemd ignores or reads differently from how it looks, with file and line."""

import difflib
import functools
import importlib.resources
from collections.abc import Iterable, Sequence

from generators.abis import exists_on
from generators.interface import LintFinding, Policy
from generators.systemd.names import SETTINGS, family_name, short_list
from generators.systemd.settings import MisplacedTilde, UnitReading
from generators.systemd.unit_syntax import Assignment
from profiler import abi


def lint_result(reading: UnitReading, policy: Policy, local_abis: Sequence[str]) -> list[LintFinding]:
    findings = [_misplaced_tilde_finding(reading, policy, each, local_abis) for each in reading.misplaced]
    if reading.error_number_at is not None and policy.syscalls is None:
        at = reading.error_number_at
        findings.append(
            LintFinding(
                at.source, at.line, "SystemCallErrorNumber= has no effect: there is no SystemCallFilter=", at.key
            )
        )
    outside = policy.ambient_capabilities - {
        name for name in abi.CAPABILITIES if policy.capability_bounding.allows(name)
    }
    if outside and reading.ambient_at is not None:
        at = reading.ambient_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                f"AmbientCapabilities= holds {short_list(outside)}, outside CapabilityBoundingSet=: the kernel "
                "refuses an ambient capability that is not in the bounding set (capabilities(7))",
                at.key,
            )
        )
    families_restricted = not policy.address_families.unrestricted
    x86_runs = "x86" in local_abis and (policy.architectures is None or "x86" in policy.architectures)
    if families_restricted and x86_runs and reading.families_at is not None:
        at = reading.families_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                "RestrictAddressFamilies= does not apply to 32-bit x86 programs (systemd cannot filter their "
                "socketcall()), and SystemCallArchitectures= lets them run: add SystemCallArchitectures=native unless "
                "the service runs 32-bit programs",
                at.key,
            )
        )
    if reading.dynamic_user_at is not None and reading.no_new_privileges is False and reading.no_new_privileges_at:
        at, dynamic = reading.no_new_privileges_at, reading.dynamic_user_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                f"NoNewPrivileges=no has no effect: DynamicUser=yes ({dynamic.source}:{dynamic.line}) turns "
                "NoNewPrivileges= on, and it cannot be turned off",
                at.key,
            )
        )
    return findings


def _misplaced_tilde_finding(
    reading: UnitReading, policy: Policy, misplaced: MisplacedTilde, local_abis: Sequence[str]
) -> LintFinding:
    at, word = misplaced.at, misplaced.word
    meant = word[1:]
    lead = (
        f"'{word}' is not the first word of the value: systemd inverts only when '~' is the first character, "
        f"so it takes '{word}' for a name"
    )
    match misplaced.key:
        case "SystemCallFilter":
            filter_ = policy.syscalls
            names = reading.groups.expand(meant) if meant.startswith("@") else frozenset({meant})
            allowed = sorted(
                name
                for name in names
                if (filter_ is None or filter_.allows(name)) and exists_on(name, policy.architectures or local_abis)
            )
            outcome = (
                f"{meant} is not denied: {len(allowed)} of its syscalls stay allowed ({short_list(allowed)})"
                if allowed
                else f"none of the syscalls of {meant} is allowed anyway"
            )
            message = (
                f"{lead}, finds no such syscall and ignores it; {outcome}. Write it on its own line: {at.key}={word}"
            )
        case "CapabilityBoundingSet" | "AmbientCapabilities":
            where = (
                policy.capability_bounding.allows(meant.upper())
                if at.key == "CapabilityBoundingSet"
                else (meant.upper() in policy.ambient_capabilities)
            )
            message = (
                f"{lead}, knows no such capability and ignores it without a warning; {meant} is "
                f"{'in' if where else 'not in'} the resulting set. Write it on its own line: {at.key}={word}"
            )
        case _:
            family = family_name(meant) or meant
            state = "stays allowed" if policy.address_families.allows(family) else "is not allowed anyway"
            message = (
                f"{lead}, knows no such family and ignores it; {family} {state}. "
                f"Write it on its own line: {at.key}={word}"
            )
    return LintFinding(at.source, at.line, message, "misplaced-tilde")


KEYS_TABLE = "systemd-keys.txt"


@functools.cache
def systemd_keys() -> frozenset[str]:
    """Every key systemd reads in a unit file (generators/data/systemd-keys.txt): StateDirectoryMode= is one,
    though it looks like a misspelt StateDirectory=."""
    text = importlib.resources.files("generators").joinpath("data", KEYS_TABLE).read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def near_miss_findings(assignments: Iterable[Assignment], exec_sections: frozenset[str]) -> list[LintFinding]:
    """Keys that look like one of the settings read here but are not what systemd knows: it ignores them."""
    findings = []
    lower = {key.lower(): key for key in SETTINGS}
    known = systemd_keys()
    for at in assignments:
        if at.key in SETTINGS:
            if at.section not in exec_sections:
                findings.append(
                    LintFinding(
                        at.source,
                        at.line,
                        f"{at.key}= in [{at.section}]: systemd reads it only in "
                        f"[{'], ['.join(sorted(exec_sections))}], and ignores this line",
                        "wrong-section",
                    )
                )
            continue
        if at.key in known:
            continue
        match = lower.get(at.key.lower()) or next(
            iter(difflib.get_close_matches(at.key, SETTINGS, n=1, cutoff=0.85)), None
        )
        if match:
            findings.append(
                LintFinding(
                    at.source,
                    at.line,
                    f"unknown key {at.key!r}: systemd ignores the line (keys are case-sensitive); "
                    f"did you mean {match}=?",
                    "unknown-key",
                )
            )
    return findings
