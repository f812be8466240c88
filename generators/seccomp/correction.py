"""What a correction of a seccomp profile (OCI JSON, or the spec of an SPO SeccompProfile) adds, as rules and notes.

The OCI and Kubernetes formats each write these in their own syntax.
"""

import errno
import json

from generators.comparison import Comparison, ItemKind
from generators.correction import allowed, unnamed_families
from generators.interface import ListMode
from generators.seccomp.spec import scmp_arch
from profiler import abi


def seccomp_changes(comparison: Comparison) -> tuple[list[dict[str, object]], list[str]]:
    """Rules to add to an OCI or Kubernetes seccomp profile, and the changes a rule cannot make."""
    policy = comparison.policy
    allow = allowed(comparison)
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
    families, unnamed = unnamed_families(allow.get(ItemKind.FAMILY, ()))
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
    architectures = [scmp_arch(name) for name in allow.get(ItemKind.ARCHITECTURE, ())]
    if architectures:
        notes.append(f'add {", ".join(json.dumps(name) for name in architectures)} to "architectures"')
    namespaces = allow.get(ItemKind.NAMESPACE, ())
    if namespaces:
        notes.append(f"let the clone, clone3, unshare and setns rules permit namespace types {', '.join(namespaces)}")
    return rules, notes


def granted_capabilities(comparison: Comparison) -> list[str]:
    """The capabilities a container must be granted: the bounding and the ambient ones, which it does not tell apart."""
    allow = allowed(comparison)
    return sorted(set(allow.get(ItemKind.CAPABILITY, ()) + allow.get(ItemKind.AMBIENT, ())))
