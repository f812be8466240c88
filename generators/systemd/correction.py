"""The correction of a systemd unit: a drop-in whose every line adds to the unit's own setting.

Whatever form that setting has:
    SystemCallFilter=NAME            adds NAME to an allow-list, or takes it out of a deny-list
    SystemCallFilter=~NAME:ENOSYS    refuses NAME with ENOSYS in either mode (one '~', first on the line)
    CapabilityBoundingSet=, AmbientCapabilities=, SystemCallArchitectures=   merge (OR) with earlier lines
    RestrictAddressFamilies=AF_X     adds to an allow-list (also after `none`), or takes out of a deny-list
    RestrictNamespaces=TYPE          merges into the permitted types, also after `yes`
(systemd.exec(5); checked against systemd 252 with `systemd-analyze security --offline=true`.)
"""

import textwrap
from pathlib import Path

from generators.comparison import Comparison, ItemKind
from generators.correction import Correction, allowed, unnamed_families
from generators.interface import ListMode
from generators.systemd.names import systemd_architecture
from profiler.escaping import visible

WRAP = 100  # characters of names per line: systemd accumulates repeated lines, so long lists split cleanly


def _wrapped(setting: str, names: tuple[str, ...] | list[str], invert: bool = False) -> list[str]:
    # systemd inverts only when '~' is the first character of the value: one per line, never one per name.
    start = f"{setting}={'~' if invert else ''}"
    lines: list[str] = []
    current: list[str] = []
    for name in names:
        if current and len(" ".join([*current, name])) > WRAP:
            lines.append(start + " ".join(current))
            current = []
        current.append(name)
    if current:
        lines.append(start + " ".join(current))
    return lines


def systemd_correction(comparison: Comparison) -> Correction:
    """The drop-in that makes the unit allow what it misses."""
    allow = allowed(comparison)
    lines = ["[Service]"]
    notes: list[str] = []
    policy = comparison.policy
    if allow.get(ItemKind.SYSCALL) and policy.syscalls is not None and policy.syscalls.rules.mode is ListMode.DENY:
        lines.append("# SystemCallFilter= of the unit is a deny-list: these names come out of it")
    lines += _wrapped("SystemCallFilter", allow.get(ItemKind.SYSCALL, ()))
    lines += _wrapped("CapabilityBoundingSet", allow.get(ItemKind.CAPABILITY, ()))
    lines += _wrapped("AmbientCapabilities", allow.get(ItemKind.AMBIENT, ()))
    families, unnamed = unnamed_families(allow.get(ItemKind.FAMILY, ()))
    lines += _wrapped("RestrictAddressFamilies", families)
    notes += [
        f"{name}: RestrictAddressFamilies= has no name for this family: only a deny-list allows it" for name in unnamed
    ]
    namespaces = allow.get(ItemKind.NAMESPACE, ())
    if "any" in namespaces:
        lines.append("RestrictNamespaces=no")
    else:
        lines += _wrapped("RestrictNamespaces", namespaces)
    lines += _wrapped(
        "SystemCallArchitectures",
        [systemd_architecture(name) for name in allow.get(ItemKind.ARCHITECTURE, ())],
    )
    settings = allow.get(ItemKind.SETTING, ())
    if settings:
        lines.append("# sandboxing settings: each lets through what the unit's own refuses (see Missing)")
        lines += list(dict.fromkeys(settings))
    for override in comparison.fix.undo:
        # No line of a list gives back what such a setting refuses; turned off, it gives back all of it.
        lines.append(f"# {visible(override.where)} refuses what is missing, whatever the lists say; off, it allows:")
        lines += ["#   " + line for line in textwrap.wrap(" ".join(sorted(override.syscalls | override.capabilities)))]
        lines.append(override.undo)
    if comparison.fix.portable:
        lines.append("# portability: allowed though no trace called them (vDSO fallbacks, calls that never return)")
        lines += _wrapped("SystemCallFilter", comparison.fix.portable)
    if comparison.fix.enosys:
        lines.append("# portability: refused with ENOSYS, so that a C library that tries them falls back")
        lines += _wrapped("SystemCallFilter", [f"{name}:ENOSYS" for name in comparison.fix.enosys], invert=True)
    unit = Path(policy.source).name
    return Correction(
        how=f"Add as a drop-in (systemctl edit {unit}): each line adds to the unit's own setting.",
        text="\n".join(lines) + "\n",
        language="ini",
        notes=tuple(notes),
    )
