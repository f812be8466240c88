"""Set algebra of the comparison, for any profile and policy: hypothesis draws them."""

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from generators import reports
from generators.compare import compare, drift
from generators.comparison import Fix, ItemKind
from generators.interface import UNRESTRICTED, ListMode, NameSet, Policy
from generators.profile import ALL_NAMESPACE_TYPES, Profile, build_profile
from generators.reports.interface import ReportFormat
from generators.syscall_plan import FALLS_BACK
from tests.generators.conftest import _committed
from tests.generators.profile_builders import policies, profiles


def allowed(policy: Policy, kind: ItemKind, name: str) -> bool:
    """What the policy lets through, from its name lists and the settings that override them."""
    match kind:
        case ItemKind.SYSCALL:
            listed = policy.syscalls is None or policy.syscalls.allows(name)
            return (listed and not policy.syscall_overrides(name)) or (
                name in FALLS_BACK and answers_enosys(policy, name)
            )
        case ItemKind.CAPABILITY:
            return policy.capability_bounding.allows(name) and not policy.capability_overrides(name)
        case ItemKind.AMBIENT:
            return name in policy.ambient_capabilities
        case ItemKind.FAMILY:
            return policy.address_families.allows(name)
        case ItemKind.NAMESPACE:
            names = ALL_NAMESPACE_TYPES if name == "any" else (name,)
            return all(policy.namespaces.allows(each) for each in names)
        case ItemKind.ARCHITECTURE:
            return policy.architectures is None or name in policy.architectures


def answers_enosys(policy: Policy, name: str) -> bool:
    """Whether the policy answers a syscall with ENOSYS: its own errno when the lists refuse it, else a setting's."""
    if policy.syscalls is not None and not policy.syscalls.allows(name):
        return dict(policy.syscalls.errnos).get(name, policy.syscalls.default_errno) == "ENOSYS"
    return any(each.errno == "ENOSYS" for each in policy.syscall_overrides(name))


@given(profiles(), policies())
def test_missing_is_exactly_what_is_needed_and_not_allowed(profile: Profile, policy: Policy) -> None:
    comparison = compare(profile, policy)
    missing = {item.need.key for item in comparison.missing}
    satisfied = {need.key for need in comparison.satisfied()}
    needed = {need.key for need in comparison.needs}
    assert missing | satisfied == needed and not missing & satisfied
    assert not any(allowed(policy, kind, name) for kind, name in missing)
    assert all(allowed(policy, kind, name) for kind, name in satisfied if kind is not ItemKind.AMBIENT)
    assert comparison.passed() == (not missing)


@given(profiles(), policies())
def test_excess_is_allowed_and_never_needed(profile: Profile, policy: Policy) -> None:
    comparison = compare(profile, policy)
    needed = {need.key for need in comparison.needs}
    for item in comparison.excess:
        assert (item.kind, item.name) not in needed
        assert allowed(policy, item.kind, item.name)
    dangers = [item.rating.danger for item in comparison.excess]
    assert dangers == sorted(dangers, reverse=True)


def _with(names: NameSet, added: tuple[str, ...]) -> NameSet:
    if names.mode is ListMode.ALLOW:
        return NameSet(ListMode.ALLOW, names.names | set(added))
    return NameSet(ListMode.DENY, names.names - set(added))


def _fixed(policy: Policy, fix: Fix) -> Policy:
    """The policy with the fix applied as systemd applies the drop-in lines the correction writes."""
    allow = dict(fix.allow)
    syscalls = policy.syscalls
    if syscalls is not None:
        syscalls = replace(syscalls, rules=_with(syscalls.rules, allow.get(ItemKind.SYSCALL, ()) + fix.portable))
    namespaces = allow.get(ItemKind.NAMESPACE, ())
    return replace(
        policy,
        syscalls=syscalls,
        capability_bounding=_with(policy.capability_bounding, allow.get(ItemKind.CAPABILITY, ())),
        ambient_capabilities=policy.ambient_capabilities | set(allow.get(ItemKind.AMBIENT, ())),
        address_families=_with(policy.address_families, allow.get(ItemKind.FAMILY, ())),
        namespaces=UNRESTRICTED if "any" in namespaces else _with(policy.namespaces, namespaces),
        architectures=None
        if policy.architectures is None
        else policy.architectures | set(allow.get(ItemKind.ARCHITECTURE, ())),
        overrides=tuple(each for each in policy.overrides if each not in fix.undo),
    )


@given(profiles(), policies())
def test_the_fix_makes_check_pass_and_leaves_the_excess_alone(profile: Profile, policy: Policy) -> None:
    comparison = compare(profile, policy)
    after = compare(profile, _fixed(policy, comparison.fix))
    assert after.passed()
    # Only what the fix cannot help bringing along may be new excess: the syscalls of an ABI let through, and
    # all that a setting turned off refused besides what was missing.
    given_back = {(ItemKind.SYSCALL, name) for each in comparison.fix.undo for name in each.syscalls}
    given_back |= {(ItemKind.CAPABILITY, name) for each in comparison.fix.undo for name in each.capabilities}
    # And what the fix allows for a setting it also turns off: clone, the fallback while a setting answers clone3
    # with ENOSYS, is excess once that setting is undone (the fix names both; either alone would pass).
    if comparison.fix.undo:
        given_back |= {(kind, name) for kind, names in comparison.fix.allow for name in names}
    if ItemKind.ARCHITECTURE not in dict(comparison.fix.allow):
        assert {(item.kind, item.name) for item in after.excess} <= {
            (item.kind, item.name) for item in comparison.excess
        } | given_back
    assert not after.fix.portable


@given(profiles(), policies(), st.sampled_from(ReportFormat))
def test_every_report_renders_the_same_bytes_twice(profile: Profile, policy: Policy, form: ReportFormat) -> None:
    comparison = compare(profile, policy)
    text = reports.report(form).comparison(comparison)
    assert text == reports.report(form).comparison(compare(profile, policy))
    if form is ReportFormat.JSON:
        assert json.loads(text)["passed"] is comparison.passed()


TRACES = ("git-clone", "git-clone-bare", "git-clone-shallow")


@settings(max_examples=12, deadline=None)
@given(st.permutations(TRACES), policies())
def test_the_order_of_the_traces_does_not_matter(order: list[str], policy: Policy) -> None:
    reference = compare(build_profile([_committed(name) for name in TRACES]), policy)
    shuffled = compare(build_profile([_committed(name) for name in order]), policy)
    assert shuffled == reference
    for form in ReportFormat:
        assert reports.report(form).comparison(shuffled) == reports.report(form).comparison(reference)


@given(profiles(), profiles())
def test_drift_is_the_two_set_differences(old: Profile, new: Profile) -> None:
    forward, backward = drift(old, new), drift(new, old)
    started = {need.key for need in forward.started}
    stopped = {need.key for need in forward.stopped}
    assert started == {need.key for need in backward.stopped}
    assert stopped == {need.key for need in backward.started}
    assert not started & stopped
    assert drift(old, old).started == drift(old, old).stopped == ()
