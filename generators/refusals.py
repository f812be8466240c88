"""What a policy refuses of a need, and why: its lists, its overrides, ENOSYS answers, ambient capabilities."""

from collections.abc import Iterable

from generators.comparison import ItemKind, Need
from generators.interface import NameSet, Override, Policy, PolicyFormat
from generators.profile import ALL_NAMESPACE_TYPES
from generators.syscall_plan import FALLS_BACK


def states_capabilities(policy: Policy) -> bool:
    """Whether the policy says which capabilities the workload gets.

    A seccomp profile (OCI JSON, a SeccompProfile) does not: the runtime grants them (docker --cap-add, a
    securityContext), so its reader leaves the bounding set unrestricted, which means "not said" there.
    """
    return policy.format is PolicyFormat.SYSTEMD or not policy.capability_bounding.unrestricted


def ambient_required(policy: Policy) -> bool:
    """Whether a capability reaches the process only as an ambient one.

    A non-root user holds no capability after execve unless it is ambient, or comes from a set-user-ID
    program or a file capability; no-new-privileges switches the last two off (prctl(2) PR_SET_NO_NEW_PRIVS).
    """
    return not policy.runs_as_root and (policy.no_new_privileges is True or bool(policy.no_new_privileges_implied_by))


def refused_errno(policy: Policy, name: str) -> str | None:
    assert policy.syscalls is not None
    return dict(policy.syscalls.errnos).get(name, policy.syscalls.default_errno)


def refusal_of(policy: Policy, need: Need) -> str | None:
    """How the policy refuses a need, or None when it allows it (or answers ENOSYS where the program falls back)."""
    if need.kind is ItemKind.SYSCALL and need.name in FALLS_BACK and enosys_by(policy, need.name):
        return None  # the fallback the program takes is a need of its own (see _implied_needs)
    listed = listed_refusal(policy, need)
    overrides = overrides_of(policy, need)
    if not overrides:
        return listed
    if need.kind is ItemKind.SYSCALL:
        effect = " and ".join(f"refused with {each.errno} by {each.where}" for each in overrides)
    else:
        effect = f"taken out of the bounding set by {' and '.join(each.where for each in overrides)}"
    return f"{effect}, whatever the lists say" + (f"; and {listed}" if listed else "")


def enosys_by(policy: Policy, name: str) -> str | None:
    """What answers the syscall with ENOSYS (a setting, or the syscall filter), or None when nothing does."""
    if policy.syscalls is not None and not policy.syscalls.allows(name):
        # The syscall filter, loaded last, decides among refusals (the kernel keeps the latest filter's errno).
        return "the syscall filter" if refused_errno(policy, name) == "ENOSYS" else None
    return next((each.where for each in policy.syscall_overrides(name) if each.errno == "ENOSYS"), None)


def listed_refusal(policy: Policy, need: Need) -> str | None:
    """How the policy's lists refuse a need (what a line can add to), or None when they allow it."""
    match need.kind:
        case ItemKind.SYSCALL:
            if policy.syscalls is None or policy.syscalls.allows(need.name):
                return None
            errno = refused_errno(policy, need.name)
            return f"refused with {errno} by the syscall filter" if errno else "the syscall filter kills the process"
        case ItemKind.CAPABILITY:
            return None if policy.capability_bounding.allows(need.name) else "not in the capability bounding set"
        case ItemKind.AMBIENT:
            if need.name in policy.ambient_capabilities:
                return None
            implied = (
                f", which {policy.no_new_privileges_implied_by} turns on for a user without CAP_SYS_ADMIN"
                if policy.no_new_privileges is not True
                else ""
            )
            return (
                f"not ambient, and user {policy.user} holds capabilities only as ambient ones (no-new-privileges"
                f"{implied}, stops set-user-ID programs and file capabilities from granting them)"
            )
        case ItemKind.FAMILY:
            return None if policy.address_families.allows(need.name) else "address family not allowed"
        case ItemKind.NAMESPACE:
            if _namespace_allowed(policy.namespaces, need.name):
                return None
            if need.name == "any":
                return "setns() without a namespace type needs every namespace type allowed"
            return "namespace type not allowed"
        case ItemKind.ARCHITECTURE:
            if policy.architectures is None or need.name in policy.architectures:
                return None
            return "ABI not allowed: every syscall made in it is refused"
        case ItemKind.SETTING:
            return None  # sandboxing settings are compared on their own (compare._sandbox)


def _namespace_allowed(namespaces: NameSet, name: str) -> bool:
    # setns(fd, 0) joins a namespace of any type, so systemd lets it through only when every type is allowed.
    if name == "any":
        return all(namespaces.allows(each) for each in ALL_NAMESPACE_TYPES)
    return namespaces.allows(name)


def ambient_needs(found: Iterable[Need], policy: Policy) -> list[Need]:
    if not ambient_required(policy):
        return []
    return [
        Need(ItemKind.AMBIENT, need.name, need.evidence, paths=need.paths)
        for need in found
        if need.kind is ItemKind.CAPABILITY
    ]


def overrides_of(policy: Policy, need: Need) -> tuple[Override, ...]:
    match need.kind:
        case ItemKind.SYSCALL:
            return policy.syscall_overrides(need.name)
        case ItemKind.CAPABILITY:
            return policy.capability_overrides(need.name)
        case _:
            return ()
