"""A deployed unit read as systemd reads it: the unit file and its drop-ins, their syntax, their settings, lint."""

import dataclasses
import os
from pathlib import Path

from generators.abis import kernel_abis
from generators.interface import LintFinding, Place, Policy, PolicyPart
from generators.systemd.dropins import unit_files
from generators.systemd.groups import SyscallGroups
from generators.systemd.lint import lint_result, near_miss_findings
from generators.systemd.names import SANDBOX_SETTINGS
from generators.systemd.settings import UnitReading
from generators.systemd.unit_syntax import Assignment, exec_sections_of, parse_unit_text, read_unit_text
from profiler import syscalls
from profiler.errors import PolicyParseError

# The settings that make each part of a Policy, whose lines a report points at (an item missing from
# SystemCallFilter= is found at its lines).
_PART_SETTINGS = {
    "SystemCallFilter": PolicyPart.SYSCALLS,
    "SystemCallArchitectures": PolicyPart.ARCHITECTURES,
    "CapabilityBoundingSet": PolicyPart.CAPABILITY_BOUNDING,
    "AmbientCapabilities": PolicyPart.AMBIENT_CAPABILITIES,
    "RestrictAddressFamilies": PolicyPart.ADDRESS_FAMILIES,
    "RestrictNamespaces": PolicyPart.NAMESPACES,
} | dict.fromkeys(SANDBOX_SETTINGS, PolicyPart.SANDBOX)


def _places(assignments: list[Assignment]) -> tuple[tuple[PolicyPart, tuple[Place, ...]], ...]:
    by_part: dict[PolicyPart, list[Place]] = {}
    for at in assignments:
        part = _PART_SETTINGS.get(at.key)
        if part is not None:
            by_part.setdefault(part, []).append(Place(at.source, at.line))
    return tuple((part, tuple(places)) for part, places in by_part.items())


def read_systemd_unit(path: Path, groups: SyscallGroups) -> Policy:
    """A unit file and its drop-ins read as systemd reads them, with lint findings; PolicyParseError when unreadable."""
    loaded = unit_files(path)
    files = [path, *loaded.drop_ins]
    exec_sections = exec_sections_of(path)
    assignments: list[Assignment] = []
    findings: list[LintFinding] = []
    if loaded.overridden_by is not None:
        masked = os.path.realpath(loaded.overridden_by) == os.devnull
        findings.append(
            LintFinding(
                str(path),
                None,
                f"{loaded.overridden_by} masks the unit: systemd will not start it"
                if masked
                else f"systemd loads {loaded.overridden_by} instead of this file, which it overrides: give that one",
                "overridden",
            )
        )
    for index, each in enumerate(files):
        text = read_unit_text(each)
        if index == 0 and not text:
            raise PolicyParseError(
                f"{each}: empty: systemd treats an empty unit file as masked; give the unit that runs"
            )
        parsed = parse_unit_text(text, str(each), exec_sections)
        if index == 0 and parsed.sections == 0:
            raise PolicyParseError(
                f"{each}: no [section] in it: not a systemd unit file; give a .service unit or drop-in"
            )
        assignments += parsed.assignments
        findings += parsed.findings
    reading = UnitReading(groups)
    exec_assignments = [at for at in assignments if at.section in exec_sections]
    for at in exec_assignments:
        reading.apply(at)
    policy = reading.policy(path)
    local_abis = kernel_abis(syscalls.native_abi())
    findings += reading.findings + near_miss_findings(assignments, exec_sections)
    findings += lint_result(reading, policy, local_abis)
    order = {str(each): index for index, each in enumerate(files)}
    findings.sort(key=lambda finding: (order.get(finding.source, len(order)), finding.line or 0))
    return dataclasses.replace(policy, findings=tuple(findings), places=_places(exec_assignments))
