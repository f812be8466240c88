"""Advisories of a comparison: what portability, privilege and the traces coverage say about the policy."""

from collections.abc import Iterable

from generators.comparison import Advisory, Fix, ItemKind, Need, Topic
from generators.interface import Policy
from generators.profile import Profile
from generators.refusals import ambient_required, refused_errno, states_capabilities
from generators.syscall_plan import Consequence, SyscallPlan


def portability_advisories(policy: Policy, plan: SyscallPlan) -> tuple[list[Advisory], Fix]:
    """What the policy refuses that other hosts or C libraries need though the traces did not: one line per reason."""
    filter_ = policy.syscalls
    if filter_ is None:
        return [], Fix(())
    portable = [each for each in plan.additions if each.consequence is Consequence.PORTABILITY]
    by_reason: dict[str, list[str]] = {}
    for each in portable:
        if not filter_.allows(each.name):
            by_reason.setdefault(f"refused though no trace called them: {each.why}", []).append(each.name)
    enosys = [name for name in plan.enosys if not filter_.allows(name) and refused_errno(policy, name) != "ENOSYS"]
    for name in enosys:
        answer = refused_errno(policy, name) or "SIGSYS"
        reason = f"refused with {answer}: a C library that tries them falls back to an older call only on ENOSYS"
        by_reason.setdefault(reason, []).append(name)
    advisories = [Advisory(Topic.PORTABILITY, " ".join(names), reason) for reason, names in by_reason.items()]
    refused = [each.name for each in portable if not filter_.allows(each.name)]
    return advisories, Fix((), tuple(refused), tuple(enosys))


def privilege_advisories(found: Iterable[Need], policy: Policy) -> list[Advisory]:
    if policy.runs_as_root or ambient_required(policy):
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


def coverage_advisories(profile: Profile, policy: Policy) -> list[Advisory]:
    found: list[Advisory] = []
    if not profile.capabilities_known:
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                "some traces recorded no capability checks (a kernel without the probes): capabilities not compared",
            )
        )
    if profile.capabilities_known and not states_capabilities(policy):
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                f"a seccomp profile ({policy.format.value}) does not say which capabilities the workload gets "
                "(the runtime grants them): capabilities not compared",
            )
        )
    unmodeled = policy.sandbox.unmodeled
    if unmodeled:
        # A read-only bind, a root directory, a resource limit: each can refuse what the runs did, unseen here.
        lines = ", ".join(at.where for at in unmodeled)
        found.append(
            Advisory(
                Topic.COVERAGE,
                "",
                f"{lines}: check does not model {'these settings' if len(unmodeled) > 1 else 'this setting'}; what "
                f"{'they refuse' if len(unmodeled) > 1 else 'it refuses'} of the runs is not compared",
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
