"""What traced runs need against what a deployed policy allows (missing, excess), and drift between two profiles.

    compare(profile, policy)  Comparison: missing (the workload would break), excess (allowed, never used,
                              most dangerous first), advisories, the policy lint findings, the fix
    drift(old, new)           Drift: what NEW started to need and what it stopped using

The comparison is set algebra per kind (generators.comparison), with the evidence of each item kept so that a
report can say where it is needed.
"""

from collections.abc import Iterable, Mapping

from generators.abis import exists_on, kernel_abis
from generators.advisories import coverage_advisories, portability_advisories, privilege_advisories
from generators.comparison import KIND_ORDER, Comparison, Drift, Excess, Fix, ItemKind, Missing, Need, need_order, needs
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
from generators.profile import ALL_NAMESPACE_TYPES, Evidence, Profile, merge_evidence
from generators.refusals import ambient_needs, enosys_by, listed_refusal, overrides_of, refusal_of, states_capabilities
from generators.sandbox import plan_sandbox, profile_facts
from generators.syscall_plan import Addition, SyscallPlan, plan_syscalls
from generators.systemd.groups import syscall_groups
from generators.systemd.sandbox import refused_by_settings, sandbox_refusals, sandbox_tightenings
from profiler import abi

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
    return set(kernel_abis(profile.native_abi))


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
        and exists_on(name, abis)
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
    if profile.capabilities_known and states_capabilities(policy):
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
    return sorted(found_excess, key=_excess_order)


def _excess_order(item: Excess) -> tuple[int, int, str]:
    return (-item.rating.danger, KIND_ORDER[item.kind], item.name)


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
        f"{name} is answered with ENOSYS by {where}" for name in addition.because if (where := enosys_by(policy, name))
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
    compared = profile.capabilities_known and states_capabilities(policy)
    answered = [name for name in profile.syscall_names() if enosys_by(policy, name)]
    chosen = deploying_runtimes(policy) if runtimes is None else runtimes
    plan = plan_syscalls(profile, portability, answered_enosys=answered, runtimes=chosen)
    found = [need for need in needs(profile) if compared or need.kind is not ItemKind.CAPABILITY]
    found = sorted([*found, *_implied_needs(profile, plan, policy), *ambient_needs(found, policy)], key=need_order)
    missing = [
        Missing(need, refused, bool(need.evidence.runs) and profile.is_uncertain(need.evidence, min_runs))
        for need in found
        if (refused := refusal_of(policy, need)) is not None
    ]
    settings_missing, settings_excess = _sandbox(profile, policy, min_runs)
    found += [item.need for item in settings_missing]
    missing += settings_missing
    advisories, portability_fix = portability_advisories(policy, plan)
    allow: dict[ItemKind, list[str]] = {}
    undo: dict[Override, None] = {}
    for item in missing:
        if item.need.kind is ItemKind.SETTING or listed_refusal(policy, item.need) is not None:
            allow.setdefault(item.need.kind, []).append(item.need.name)
        undo |= dict.fromkeys(overrides_of(policy, item.need))
    return Comparison(
        profile=profile,
        policy=policy,
        min_runs=min_runs,
        needs=tuple(found),
        missing=tuple(missing),
        excess=tuple(sorted(_excess(profile, policy, found, plan) + settings_excess, key=_excess_order)),
        advisories=tuple([*advisories, *privilege_advisories(found, policy), *coverage_advisories(profile, policy)]),
        fix=Fix(
            tuple((kind, tuple(names)) for kind, names in allow.items()),
            portability_fix.portable,
            portability_fix.enosys,
            tuple(undo),
        ),
    )


def _sandbox(profile: Profile, policy: Policy, min_runs: int) -> tuple[list[Missing], list[Excess]]:
    """What a unit's sandboxing settings would refuse of the runs, and what they leave open that no run needs:
    where the traces recorded files and the policy is a systemd unit, whose settings these are."""
    if profile.sandbox is None or policy.format is not PolicyFormat.SYSTEMD:
        return [], []
    plan = plan_sandbox(profile.sandbox, profile_facts(profile, min_runs), refused_by_settings(syscall_groups()))
    missing = [
        Missing(
            Need(ItemKind.SETTING, refusal.fix, refusal.evidence or Evidence((), 0, (), None)),
            f"{refusal.at.where} refuses {refusal.refused}",
            refusal.evidence is not None and profile.is_uncertain(refusal.evidence, min_runs),
        )
        for refusal in sandbox_refusals(policy.sandbox, plan)
    ]
    excess = [
        Excess(ItemKind.SETTING, f"{each.key}={each.value}", Rating(each.danger, each.why))
        for each in sandbox_tightenings(policy.sandbox, plan)
    ]
    return missing, excess


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
