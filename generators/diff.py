"""What traced runs need against what a deployed policy allows (missing, excess), and drift between two profiles.

    compare(profile, policy)  Comparison: missing (the workload would break), excess (allowed, never used,
                              most dangerous first), advisories, the policy's lint findings, the fix
    drift(old, new)           Drift: what NEW started to need and what it stopped using

Every item is a Need of one ItemKind; the comparison is set algebra per kind, with the evidence of each item
kept so that a report can say where it is needed.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from generators.danger import (
    ABI_DANGER,
    CAPABILITY_DANGER,
    FAMILY_DANGER,
    NAMESPACE_DANGER,
    SYSCALL_DANGER,
    Danger,
    Rating,
    rating,
)
from generators.interface import ListMode, NameSet, Override, Policy, PolicyFormat
from generators.oci_runtimes import OCI_RUNTIMES
from generators.profile import NAMESPACE_TYPES, CapabilityPath, Evidence, Profile, merge_evidence
from generators.syscall_plan import FALLS_BACK, Addition, Consequence, SyscallPlan, plan_syscalls
from profiler import abi, syscalls
from profiler.trace import CheckClass


class ItemKind(StrEnum):
    """What an item is; the order is the order of report sections."""

    SYSCALL = "syscall"
    CAPABILITY = "capability"  # in the bounding set
    AMBIENT = "ambient_capability"  # raised for a non-root user
    FAMILY = "family"
    NAMESPACE = "namespace"
    ARCHITECTURE = "architecture"  # a syscall ABI (x86_64, and x86 for 32-bit programs)

    @property
    def label(self) -> str:
        match self:
            case ItemKind.SYSCALL:
                return "syscall"
            case ItemKind.CAPABILITY:
                return "capability"
            case ItemKind.AMBIENT:
                return "ambient capability"
            case ItemKind.FAMILY:
                return "address family"
            case ItemKind.NAMESPACE:
                return "namespace type"
            case ItemKind.ARCHITECTURE:
                return "syscall ABI"


_KIND_ORDER = {kind: index for index, kind in enumerate(ItemKind)}


@dataclass(frozen=True, slots=True)
class Need:
    """One item the traces need, and where they needed it."""

    kind: ItemKind
    name: str
    evidence: Evidence
    detail: str = ""  # socket types of a family, syscalls of a namespace type, ABIs of a syscall; why an
    # implied syscall is needed
    paths: tuple[CapabilityPath, ...] = ()  # the kernel paths that needed a capability
    because: tuple[str, ...] = ()  # the syscalls made that imply a syscall no run made; evidence is theirs

    @property
    def key(self) -> tuple[ItemKind, str]:
        return (self.kind, self.name)


@dataclass(frozen=True, slots=True)
class Missing:
    need: Need
    refused: str  # how the policy refuses it
    uncertain: bool  # seen in fewer runs than --min-runs asks


@dataclass(frozen=True, slots=True)
class Excess:
    """Allowed and never used: a candidate to remove, not an automatic removal."""

    kind: ItemKind
    name: str
    rating: Rating
    note: str = ""  # what the traces did see of it (a refused attempt, a noaudit probe)


class Topic(StrEnum):
    PORTABILITY = "portability"  # the policy refuses what other hosts or C libraries need though unseen here
    PRIVILEGE = "privilege"  # a capability may not reach the process though the bounding set allows it
    COVERAGE = "coverage"  # what the traces cannot tell


@dataclass(frozen=True, slots=True)
class Advisory:
    topic: Topic
    subject: str  # the items it is about, separated by spaces, or "" for the traces as a whole
    message: str


@dataclass(frozen=True, slots=True)
class Fix:
    """What to change so that the policy allows everything missing, and what portability recommends."""

    allow: tuple[tuple[ItemKind, tuple[str, ...]], ...]  # names to allow, per kind, in kind order
    portable: tuple[str, ...] = ()  # unseen syscalls to allow (vDSO fallbacks, calls that never return)
    enosys: tuple[str, ...] = ()  # unseen syscalls to refuse with ENOSYS instead
    undo: tuple[Override, ...] = ()  # settings to turn off, since they refuse what is missing whatever the lists say

    def __bool__(self) -> bool:
        return bool(self.allow or self.portable or self.enosys or self.undo)


@dataclass(frozen=True, slots=True)
class Comparison:
    profile: Profile
    policy: Policy
    min_runs: int
    needs: tuple[Need, ...]  # everything compared: missing ones and satisfied ones
    missing: tuple[Missing, ...]
    excess: tuple[Excess, ...]  # most dangerous first
    advisories: tuple[Advisory, ...]
    fix: Fix

    def passed(self, strict: bool = False) -> bool:
        """Whether `check` passes: nothing missing, and with strict nothing in excess either."""
        return not self.missing and not (strict and self.excess)

    def satisfied(self) -> tuple[Need, ...]:
        missing = {item.need.key for item in self.missing}
        return tuple(need for need in self.needs if need.key not in missing)


@dataclass(frozen=True, slots=True)
class Drift:
    old: Profile
    new: Profile
    started: tuple[Need, ...]  # needed by NEW, not by OLD; evidence from NEW
    stopped: tuple[Need, ...]  # needed by OLD, not by NEW; evidence from OLD
    notes: tuple[str, ...]


def needs(profile: Profile) -> tuple[Need, ...]:
    """Every item the profile needs, in kind order then name order."""
    found = [
        Need(
            ItemKind.SYSCALL,
            need.name,
            need.evidence,
            f"called in the {', '.join(need.abis)} ABI" if need.abis != (profile.native_abi,) else "",
        )
        for need in profile.syscalls
    ]
    found += [
        Need(
            ItemKind.CAPABILITY,
            use.name,
            use.evidence,
            paths=tuple(p for p in use.paths if p.classification is CheckClass.NEEDED and p.initial_user_ns),
        )
        for use in profile.capabilities
        if use.needed
    ]
    found += [
        Need(ItemKind.FAMILY, use.name, use.evidence, f"socket types {', '.join(use.types)}")
        for use in profile.families
        if use.restricted_by_socket_filters
    ]
    found += [
        Need(ItemKind.NAMESPACE, need.name, need.evidence, f"through {', '.join(need.syscalls)}")
        for need in profile.namespaces
    ]
    for used_abi in profile.abis():
        names = sorted(need.name for need in profile.syscalls if used_abi in need.abis)
        # Programs run in one ABI each, so syscalls called in this ABI only name the right programs and runs.
        own = [need.evidence for need in profile.syscalls if need.abis == (used_abi,)]
        detail = f"{len(names)} syscalls, such as {', '.join(names[:5])}"
        found.append(Need(ItemKind.ARCHITECTURE, used_abi, merge_evidence(own), detail))
    return tuple(sorted(found, key=_need_order))


def _need_order(need: Need) -> tuple[int, str]:
    return (_KIND_ORDER[need.kind], need.name)


# --- what a policy allows -------------------------------------------------------------------------------------------


def _states_capabilities(policy: Policy) -> bool:
    """Whether the policy says which capabilities the workload gets.

    A seccomp profile (OCI JSON, a SeccompProfile) does not: the runtime grants them (docker --cap-add, a
    securityContext), so its reader leaves the bounding set unrestricted, which means "not said" there.
    """
    return policy.format is PolicyFormat.SYSTEMD or not policy.capability_bounding.unrestricted


def _is_root(user: str | None) -> bool:
    return user is None or user in ("root", "0")


def _ambient_required(policy: Policy) -> bool:
    """Whether a capability reaches the process only as an ambient one.

    A non-root user holds no capability after execve unless it is ambient, or comes from a set-user-ID
    program or a file capability; no-new-privileges switches the last two off (prctl(2) PR_SET_NO_NEW_PRIVS).
    """
    return not _is_root(policy.user) and (policy.no_new_privileges is True or bool(policy.no_new_privileges_implied_by))


def _refused_errno(policy: Policy, name: str) -> str | None:
    assert policy.syscalls is not None
    return dict(policy.syscalls.errnos).get(name, policy.syscalls.default_errno)


def _refusal(policy: Policy, need: Need) -> str | None:
    """How the policy refuses a need, or None when it allows it (or answers ENOSYS where the program falls back)."""
    if need.kind is ItemKind.SYSCALL and need.name in FALLS_BACK and _enosys_by(policy, need.name):
        return None  # the fallback the program takes is a need of its own (see _implied_needs)
    listed = _listed_refusal(policy, need)
    overrides = _overrides(policy, need)
    if not overrides:
        return listed
    if need.kind is ItemKind.SYSCALL:
        effect = " and ".join(f"refused with {each.errno} by {each.where}" for each in overrides)
    else:
        effect = f"taken out of the bounding set by {' and '.join(each.where for each in overrides)}"
    return f"{effect}, whatever the lists say" + (f"; and {listed}" if listed else "")


def _enosys_by(policy: Policy, name: str) -> str | None:
    """What answers the syscall with ENOSYS (a setting, or the syscall filter), or None when nothing does."""
    if policy.syscalls is not None and not policy.syscalls.allows(name):
        # The syscall filter, loaded last, decides among refusals (the kernel keeps the latest filter's errno).
        return "the syscall filter" if _refused_errno(policy, name) == "ENOSYS" else None
    return next((each.where for each in policy.syscall_overrides(name) if each.errno == "ENOSYS"), None)


def _listed_refusal(policy: Policy, need: Need) -> str | None:
    """How the policy's lists refuse a need (what a line can add to), or None when they allow it."""
    match need.kind:
        case ItemKind.SYSCALL:
            if policy.syscalls is None or policy.syscalls.allows(need.name):
                return None
            errno = _refused_errno(policy, need.name)
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


ALL_NAMESPACE_TYPES: tuple[str, ...] = tuple(sorted(NAMESPACE_TYPES.values()))


def _namespace_allowed(namespaces: NameSet, name: str) -> bool:
    # setns(fd, 0) joins a namespace of any type, so systemd lets it through only when every type is allowed.
    if name == "any":
        return all(namespaces.allows(each) for each in ALL_NAMESPACE_TYPES)
    return namespaces.allows(name)


def _ambient_needs(found: Iterable[Need], policy: Policy) -> list[Need]:
    if not _ambient_required(policy):
        return []
    return [
        Need(ItemKind.AMBIENT, need.name, need.evidence, paths=need.paths)
        for need in found
        if need.kind is ItemKind.CAPABILITY
    ]


# --- excess ---------------------------------------------------------------------------------------------------------

_DANGER_TABLES: Mapping[ItemKind, Mapping[str, Rating]] = {
    ItemKind.SYSCALL: SYSCALL_DANGER,
    ItemKind.CAPABILITY: CAPABILITY_DANGER,
    ItemKind.AMBIENT: CAPABILITY_DANGER,
    ItemKind.FAMILY: FAMILY_DANGER,
    ItemKind.NAMESPACE: NAMESPACE_DANGER,
    ItemKind.ARCHITECTURE: ABI_DANGER,
}


def _allowed_of(names: NameSet, universe: Iterable[str]) -> set[str]:
    """The names a list allows: its names for an allow-list, the universe less its names for a deny-list."""
    return set(names.names) if names.mode is ListMode.ALLOW else {name for name in universe if names.allows(name)}


def _policy_abis(profile: Profile, policy: Policy) -> set[str]:
    """The ABIs whose syscalls reach the kernel under the policy."""
    if policy.architectures is not None:
        return set(policy.architectures)
    # x32 runs x86_64 numbers with a high bit set: the kernel answers them where it was built with x32 support.
    x32 = ("x32",) if profile.native_abi == "x86_64" else ()
    compat = syscalls.COMPAT_ABIS.get(profile.native_abi)
    return {profile.native_abi, *x32, *([compat] if compat else [])}


def _allowed_syscalls(profile: Profile, policy: Policy) -> set[str]:
    """Syscalls the policy allows that exist on an ABI it lets through.

    Without a filter, or with a deny-list, every syscall is allowed: only the rated ones are worth naming.
    """
    abis = _policy_abis(profile, policy)
    if policy.syscalls is None or policy.syscalls.rules.mode is ListMode.DENY:
        candidates: Iterable[str] = (name for name, rated in SYSCALL_DANGER.items() if rated.danger > Danger.LOW)
    else:
        candidates = policy.syscalls.rules.names
    return {
        name
        for name in candidates
        if (policy.syscalls is None or policy.syscalls.allows(name))
        and not policy.syscall_overrides(name)
        and any(syscalls.syscall_number(each, name) is not None for each in abis)
    }


def _note(profile: Profile, kind: ItemKind, name: str) -> str:
    """What the traces saw of an item in excess, where they saw something."""
    if kind is ItemKind.FAMILY and name in profile.family_names():
        return "made only by socketpair(), which family restrictions do not limit"
    if kind not in (ItemKind.CAPABILITY, ItemKind.AMBIENT):
        return ""
    use = next((use for use in profile.capabilities if use.name == name), None)
    if use is None:
        return ""
    if use.denied:
        return "attempted and refused in the traces: allowing it changes what the workload does"
    if use.needed_in_user_namespace_only:
        return "needed only inside a user namespace the workload creates, where the bounding set does not apply"
    return "only probed (noaudit checks such as the one on every mmap): not a need"


def _excess(profile: Profile, policy: Policy, found: Iterable[Need], plan: SyscallPlan) -> list[Excess]:
    needed: dict[ItemKind, set[str]] = {kind: set() for kind in ItemKind}
    for need in found:
        needed[need.kind].add(need.name)
    if "any" in needed[ItemKind.NAMESPACE]:
        needed[ItemKind.NAMESPACE].update(ALL_NAMESPACE_TYPES)
    justified = {name for name, _ in plan.added} | {name for name, _ in plan.runtime}
    if policy.syscalls is not None:
        justified |= policy.syscalls.implied
    allowed: dict[ItemKind, set[str]] = {
        ItemKind.SYSCALL: _allowed_syscalls(profile, policy) - justified,
        ItemKind.FAMILY: _allowed_of(policy.address_families, abi.ADDRESS_FAMILIES[1:]),  # AF_UNSPEC makes none
        ItemKind.NAMESPACE: _allowed_of(policy.namespaces, ALL_NAMESPACE_TYPES),
        ItemKind.ARCHITECTURE: _policy_abis(profile, policy),
    }
    if profile.capabilities_known and _states_capabilities(policy):
        allowed[ItemKind.CAPABILITY] = {
            name
            for name in _allowed_of(policy.capability_bounding, abi.CAPABILITIES)
            if not policy.capability_overrides(name)
        }
        allowed[ItemKind.AMBIENT] = set(policy.ambient_capabilities)
        needed[ItemKind.AMBIENT] = needed[ItemKind.CAPABILITY]
    found_excess = [
        Excess(
            kind,
            name,
            rating(_DANGER_TABLES[kind], name),
            _note(profile, kind, name),
        )
        for kind, names in allowed.items()
        for name in names - needed[kind]
    ]
    return sorted(found_excess, key=lambda item: (-item.rating.danger, _KIND_ORDER[item.kind], item.name))


# --- advisories -----------------------------------------------------------------------------------------------------


def _portability(policy: Policy, plan: SyscallPlan) -> tuple[list[Advisory], Fix]:
    """What the policy refuses that other hosts or C libraries need though the traces did not: one line per reason."""
    filter_ = policy.syscalls
    if filter_ is None:
        return [], Fix(())
    portable = [each for each in plan.additions if each.consequence is Consequence.PORTABILITY]
    by_reason: dict[str, list[str]] = {}
    for each in portable:
        if not filter_.allows(each.name):
            by_reason.setdefault(f"refused though no trace called them: {each.why}", []).append(each.name)
    enosys = [name for name in plan.enosys if not filter_.allows(name) and _refused_errno(policy, name) != "ENOSYS"]
    for name in enosys:
        answer = _refused_errno(policy, name) or "SIGSYS"
        reason = f"refused with {answer}: a C library that tries them falls back to an older call only on ENOSYS"
        by_reason.setdefault(reason, []).append(name)
    advisories = [Advisory(Topic.PORTABILITY, " ".join(names), reason) for reason, names in by_reason.items()]
    refused = [each.name for each in portable if not filter_.allows(each.name)]
    return advisories, Fix((), tuple(refused), tuple(enosys))


def _privilege(found: Iterable[Need], policy: Policy) -> list[Advisory]:
    if _is_root(policy.user) or _ambient_required(policy):
        return []
    return [
        Advisory(
            Topic.PRIVILEGE,
            need.name,
            f"needed, but user {policy.user} holds it only if it is ambient or a set-user-ID program or "
            f"file capability of {', '.join(need.evidence.programs)} grants it",
        )
        for need in found
        if need.kind is ItemKind.CAPABILITY and need.name not in policy.ambient_capabilities
    ]


def _coverage(profile: Profile, policy: Policy) -> list[Advisory]:
    found: list[Advisory] = []
    if not profile.capabilities_known:
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                "some traces recorded no capability checks (a kernel without the probes): capabilities not compared",
            )
        )
    if profile.capabilities_known and not _states_capabilities(policy):
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                f"a seccomp profile ({policy.format.value}) does not say which capabilities the workload gets "
                "(the runtime grants them): capabilities not compared",
            )
        )
    if profile.dropped.total:
        lost = ", ".join(f"{count} {table}" for table, count in profile.dropped.nonzero().items())
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                f"the traces are incomplete ({lost} not recorded): something needed may be absent from this report",
            )
        )
    if policy.syscalls is not None:
        found += [
            Advisory(
                Topic.COVERAGE,
                f"#{item.nr}",
                f"syscall {item.nr} of the {item.abi} ABI has no name ({item.reason}): not compared",
            )
            for item in profile.unresolved
        ]
        if profile.uses_io_uring:
            found.append(
                Advisory(
                    Topic.COVERAGE,
                    "io_uring_setup",
                    "the workload uses io_uring, whose operations seccomp never sees: the filter cannot confine them",
                )
            )
    return found


# --- the comparisons ------------------------------------------------------------------------------------------------


def deploying_runtimes(policy: Policy) -> tuple[str, ...]:
    """The OCI runtimes whose calls the policy must allow when none is named: every one for a seccomp profile,
    unless it leaves them to a base profile (SPO's baseProfileName) that holds them."""
    seccomp_profile = policy.format in (PolicyFormat.OCI, PolicyFormat.K8S)
    return OCI_RUNTIMES if seccomp_profile and policy.base_profile is None else ()


def _implied_needs(profile: Profile, plan: SyscallPlan, policy: Policy) -> list[Need]:
    """The syscalls the rules of syscall_plan make a need though no run made them, each saying why."""
    found = []
    for addition in plan.needs():
        evidence = merge_evidence(need.evidence for need in profile.syscalls if need.name in addition.because)
        detail = _implied_detail(addition, policy)
        found.append(Need(ItemKind.SYSCALL, addition.name, evidence, detail, because=addition.because))
    return found


def _implied_detail(addition: Addition, policy: Policy) -> str:
    detail = f"needed though no run called it: {addition.why}"
    refused = [
        f"{name} is answered with ENOSYS by {where}" for name in addition.because if (where := _enosys_by(policy, name))
    ]
    if refused:
        return f"{detail}; here {', '.join(refused)}"
    return detail


def compare(
    profile: Profile,
    policy: Policy,
    *,
    portability: bool = True,
    min_runs: int = 1,
    runtimes: tuple[str, ...] | None = None,
) -> Comparison:
    """Compare what the profile needs with what the policy allows.

    runtimes: the OCI runtimes that load the policy, whose own calls it must allow; None: every one for a
    seccomp profile, none for a systemd unit (deploying_runtimes).
    """
    compared = profile.capabilities_known and _states_capabilities(policy)
    answered = [name for name in profile.syscall_names() if _enosys_by(policy, name)]
    chosen = deploying_runtimes(policy) if runtimes is None else runtimes
    plan = plan_syscalls(profile, portability, answered_enosys=answered, runtimes=chosen)
    found = [need for need in needs(profile) if compared or need.kind is not ItemKind.CAPABILITY]
    found = sorted([*found, *_implied_needs(profile, plan, policy), *_ambient_needs(found, policy)], key=_need_order)
    missing = [
        Missing(need, refused, bool(need.evidence.runs) and profile.is_uncertain(need.evidence, min_runs))
        for need in found
        if (refused := _refusal(policy, need)) is not None
    ]
    advisories, portability_fix = _portability(policy, plan)
    allow: dict[ItemKind, list[str]] = {}
    undo: dict[Override, None] = {}
    for item in missing:
        if _listed_refusal(policy, item.need) is not None:
            allow.setdefault(item.need.kind, []).append(item.need.name)
        undo |= dict.fromkeys(_overrides(policy, item.need))
    return Comparison(
        profile=profile,
        policy=policy,
        min_runs=min_runs,
        needs=tuple(found),
        missing=tuple(missing),
        excess=tuple(_excess(profile, policy, found, plan)),
        advisories=tuple([*advisories, *_privilege(found, policy), *_coverage(profile, policy)]),
        fix=Fix(
            tuple((kind, tuple(names)) for kind, names in allow.items()),
            portability_fix.portable,
            portability_fix.enosys,
            tuple(undo),
        ),
    )


def _overrides(policy: Policy, need: Need) -> tuple[Override, ...]:
    match need.kind:
        case ItemKind.SYSCALL:
            return policy.syscall_overrides(need.name)
        case ItemKind.CAPABILITY:
            return policy.capability_overrides(need.name)
        case _:
            return ()


def drift(old: Profile, new: Profile) -> Drift:
    """What NEW started to need that OLD did not, and what it stopped using."""
    notes: list[str] = []
    if old.component != new.component:
        notes.append(f"comparing different components: {old.component} (old) and {new.component} (new)")
    skip: set[ItemKind] = set()
    if not (old.capabilities_known and new.capabilities_known):
        skip.add(ItemKind.CAPABILITY)
        notes.append("capabilities not compared: one side recorded no capability checks")
    for side, profile in (("old", old), ("new", new)):
        if profile.dropped.total:
            notes.append(f"the {side} traces are incomplete: they lost {profile.dropped.total} records")
    old_needs = {need.key: need for need in needs(old) if need.kind not in skip}
    new_needs = {need.key: need for need in needs(new) if need.kind not in skip}
    return Drift(
        old=old,
        new=new,
        started=tuple(need for key, need in new_needs.items() if key not in old_needs),
        stopped=tuple(need for key, need in old_needs.items() if key not in new_needs),
        notes=tuple(notes),
    )
