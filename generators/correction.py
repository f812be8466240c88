"""The lines that make a deployed policy allow what it misses, in the policy's own format, ready to paste.

The correction adds what is missing and nothing else: excess stays a list of candidates for a person to
weigh, never an automatic removal, and the rest of the policy stays as its authors wrote it. For systemd
that is a drop-in whose every line adds to the unit's own setting, whatever form that setting has:
    SystemCallFilter=NAME            adds NAME to an allow-list, or takes it out of a deny-list
    SystemCallFilter=~NAME:ENOSYS    refuses NAME with ENOSYS in either mode (one '~', first on the line)
    CapabilityBoundingSet=, AmbientCapabilities=, SystemCallArchitectures=   merge (OR) with earlier lines
    RestrictAddressFamilies=AF_X     adds to an allow-list (also after `none`), or takes out of a deny-list
    RestrictNamespaces=TYPE          merges into the permitted types, also after `yes`
(systemd.exec(5); checked against systemd 252 with `systemd-analyze security --offline=true`.)
A regenerated policy would do more than asked: it drops everything the traces did not use.
Names are checked (generators.policy_names) and comments escaped, as in the formats' own renderers: the text
is pasted into a policy.
"""

import errno
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from generators.diff import Comparison, ItemKind
from generators.interface import ListMode, PolicyFormat
from generators.k8s import yaml_scalar
from generators.policy_names import check_profile_names
from profiler import abi
from profiler.escaping import visible

# systemd names the ABIs its own way (SystemCallArchitectures=); libseccomp names are the Policy's.
SYSTEMD_ARCHITECTURES: dict[str, str] = {
    "x86_64": "x86-64",
    "x86": "x86",
    "x32": "x32",
    "aarch64": "arm64",
    "arm": "arm",
}
OCI_ARCHITECTURES: dict[str, str] = {
    "x86_64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "x32": "SCMP_ARCH_X32",
    "aarch64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
}
WRAP = 100  # characters of names per line: systemd accumulates repeated lines, so long lists split cleanly


@dataclass(frozen=True, slots=True)
class Correction:
    how: str  # where the text goes, in one sentence
    text: str  # the lines to paste
    language: str  # of the text, for a Markdown code fence: ini, json, yaml
    notes: tuple[str, ...] = ()  # changes that cannot be pasted, such as taking a name out of a rule


def correction(comparison: Comparison) -> Correction | None:
    """The correction of the compared policy, or None when it needs none."""
    if not comparison.fix:
        return None
    check_profile_names(comparison.profile)
    match comparison.policy.format:
        case PolicyFormat.SYSTEMD:
            return _systemd(comparison)
        case PolicyFormat.OCI:
            return _oci(comparison)
        case PolicyFormat.K8S:
            return _kubernetes(comparison)
        case PolicyFormat.DOCKER | PolicyFormat.JSON:
            return _plain(comparison)
        case _:
            assert_never(comparison.policy.format)


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


def _allow(comparison: Comparison) -> dict[ItemKind, tuple[str, ...]]:
    return dict(comparison.fix.allow)


def _unnamed_families(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Families a policy can name, and the numbered ones profiler's table does not know (AF_<number>)."""
    named = [name for name in names if name in abi.ADDRESS_FAMILIES]
    return named, [name for name in names if name not in abi.ADDRESS_FAMILIES]


def _systemd(comparison: Comparison) -> Correction:
    allow = _allow(comparison)
    lines = ["[Service]"]
    notes: list[str] = []
    policy = comparison.policy
    if allow.get(ItemKind.SYSCALL) and policy.syscalls is not None and policy.syscalls.rules.mode is ListMode.DENY:
        lines.append("# SystemCallFilter= of the unit is a deny-list: these names come out of it")
    lines += _wrapped("SystemCallFilter", allow.get(ItemKind.SYSCALL, ()))
    lines += _wrapped("CapabilityBoundingSet", allow.get(ItemKind.CAPABILITY, ()))
    lines += _wrapped("AmbientCapabilities", allow.get(ItemKind.AMBIENT, ()))
    families, unnamed = _unnamed_families(allow.get(ItemKind.FAMILY, ()))
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
        [SYSTEMD_ARCHITECTURES.get(name, name) for name in allow.get(ItemKind.ARCHITECTURE, ())],
    )
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


def _seccomp_changes(comparison: Comparison) -> tuple[list[dict[str, object]], list[str]]:
    """Rules to add to an OCI or Kubernetes seccomp profile, and the changes a rule cannot make."""
    policy = comparison.policy
    allow = _allow(comparison)
    rules: list[dict[str, object]] = []
    notes: list[str] = []
    refusing_default = policy.syscalls is not None and policy.syscalls.rules.mode is ListMode.ALLOW
    names = sorted({*allow.get(ItemKind.SYSCALL, ()), *comparison.fix.portable})
    if names and policy.syscalls is not None:
        if refusing_default:
            rules.append({"names": names, "action": "SCMP_ACT_ALLOW"})
        # libseccomp keeps the first rule of a syscall and ignores a later ALLOW for it (2.5.4), and refuses
        # an ALLOW rule when ALLOW is the default: names refused by a rule must come out of that rule.
        in_rules = sorted(set(names) & {name for name, _ in policy.syscalls.errnos}) if refusing_default else names
        if in_rules:
            notes.append(f"take {', '.join(in_rules)} out of the rules that refuse them")
    if comparison.fix.enosys:
        rules.append({"names": list(comparison.fix.enosys), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS})
    families, unnamed = _unnamed_families(allow.get(ItemKind.FAMILY, ()))
    for family in families:
        number = abi.address_family_number(family)
        rules.append(
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": number, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
            }
        )
    notes += [f"allow socket() for {name}, whose number profiler cannot name" for name in unnamed]
    architectures = [OCI_ARCHITECTURES.get(name, name) for name in allow.get(ItemKind.ARCHITECTURE, ())]
    if architectures:
        notes.append(f'add {", ".join(json.dumps(name) for name in architectures)} to "architectures"')
    namespaces = allow.get(ItemKind.NAMESPACE, ())
    if namespaces:
        notes.append(f"let the clone, clone3, unshare and setns rules permit namespace types {', '.join(namespaces)}")
    return rules, notes


def _oci(comparison: Comparison) -> Correction:
    rules, notes = _seccomp_changes(comparison)
    allow = _allow(comparison)
    capabilities = allow.get(ItemKind.CAPABILITY, ()) + allow.get(ItemKind.AMBIENT, ())
    if capabilities:
        notes.append(
            f"grant {', '.join(sorted(set(capabilities)))} in the container's capabilities "
            f"(docker run {' '.join(f'--cap-add={name}' for name in sorted(set(capabilities)))})"
        )
    text = ",\n".join(json.dumps(rule) for rule in rules)
    return Correction(
        how=f'Add to the "syscalls" array of {comparison.policy.source}:' if rules else "Change the profile:",
        text=text + "\n" if text else "",
        language="json",
        notes=tuple(notes),
    )


def _yaml_list(items: list[str], indent: str) -> list[str]:
    return [f"{indent}- {yaml_scalar(item)}" for item in items]


def _kubernetes(comparison: Comparison) -> Correction:
    rules, notes = _seccomp_changes(comparison)
    lines: list[str] = []
    if rules:
        lines.append("# under spec.syscalls of the SeccompProfile")
    for rule in rules:
        lines.append(f"- action: {rule['action']}")
        names = rule["names"]
        assert isinstance(names, list)
        lines.append("  names:")
        lines += _yaml_list([str(name) for name in names], "  ")
        if "errnoRet" in rule:
            lines.append(f"  errnoRet: {rule['errnoRet']}")
        if "args" in rule:
            lines.append(f"  args: {json.dumps(rule['args'])}")
    allow = _allow(comparison)
    capabilities = sorted(set(allow.get(ItemKind.CAPABILITY, ()) + allow.get(ItemKind.AMBIENT, ())))
    if capabilities:
        # Kubernetes names capabilities without the CAP_ prefix.
        lines += ["# in the container's securityContext", "capabilities:", "  add:"]
        lines += _yaml_list([name.removeprefix("CAP_") for name in capabilities], "  ")
    return Correction(
        how=f"Add to {comparison.policy.source}:",
        text="\n".join(lines) + "\n" if lines else "",
        language="yaml",
        notes=tuple(notes),
    )


def _plain(comparison: Comparison) -> Correction:
    lines = [f"{kind.label}: {' '.join(names)}" for kind, names in comparison.fix.allow]
    if comparison.fix.portable:
        lines.append(f"syscall (portability): {' '.join(comparison.fix.portable)}")
    if comparison.fix.enosys:
        lines.append(f"refuse with ENOSYS: {' '.join(comparison.fix.enosys)}")
    return Correction(how="Allow:", text="\n".join(lines) + "\n", language="text")
