"""The comparison of what traces need with what a policy allows: missing, excess, advisories, the fix."""

from dataclasses import replace
from pathlib import Path

import pytest

from generators.compare import compare, drift
from generators.comparison import ItemKind, Topic
from generators.danger import (
    ABI_DANGER,
    CAPABILITY_DANGER,
    FAMILY_DANGER,
    NAMESPACE_DANGER,
    SYSCALL_DANGER,
    Danger,
)
from generators.interface import PolicyFormat
from generators.profile import ALL_NAMESPACE_TYPES, Profile, UnresolvedSyscall
from generators.syscall_plan import plan_syscalls
from profiler import abi, syscalls
from profiler.errors import PolicyParseError
from profiler.pipeline import read_policy
from profiler.trace import CapabilitySource, DropCounters
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import CHOWN_FRAMES, allow, deny, evidence, make_policy, make_profile


def missing_names(profile: Profile, **policy: object) -> set[tuple[ItemKind, str]]:
    return {item.need.key for item in compare(profile, make_policy(**policy)).missing}  # type: ignore[arg-type]


def excess_names(profile: Profile, kind: ItemKind, **policy: object) -> list[str]:
    comparison = compare(profile, make_policy(**policy))  # type: ignore[arg-type]
    return [item.name for item in comparison.excess if item.kind is kind]


# --- missing --------------------------------------------------------------------------------------------------------


def test_a_syscall_the_filter_refuses_is_missing_with_its_errno_and_evidence() -> None:
    profile = make_profile(syscalls=("read", "fchownat", "exit_group"))
    comparison = compare(profile, make_policy(syscalls=allow("read", "exit_group")))
    [item] = comparison.missing
    assert item.need.key == (ItemKind.SYSCALL, "fchownat")
    assert item.refused == "refused with EPERM by the syscall filter"
    assert item.need.evidence.programs == ("/usr/bin/service",) and not item.uncertain
    assert not comparison.passed()


def test_a_filter_that_kills_says_so() -> None:
    comparison = compare(make_profile(syscalls=("read",)), make_policy(syscalls=deny("read"), default_errno=None))
    assert [item.refused for item in comparison.missing] == ["the syscall filter kills the process"]


def test_a_per_syscall_errno_is_the_one_reported() -> None:
    policy = make_policy(syscalls=allow("read", "exit_group"), errnos=(("statx", "ENOSYS"),))
    [item] = compare(make_profile(syscalls=("read", "statx")), policy).missing
    assert item.refused == "refused with ENOSYS by the syscall filter"


def test_a_syscall_answered_with_enosys_where_the_c_library_falls_back_needs_the_fallback() -> None:
    """clone3 refused with ENOSYS is no break by itself: glibc then calls clone, which the policy must allow."""
    profile = make_profile(syscalls=("read", "clone3", "exit_group"))
    policy = make_policy(syscalls=allow("read", "exit_group", "exit"), errnos=(("clone3", "ENOSYS"),))
    [item] = compare(profile, policy).missing
    assert (item.need.key, item.refused) == ((ItemKind.SYSCALL, "clone"), "refused with EPERM by the syscall filter")
    assert item.need.evidence.programs == ("/usr/bin/service",), "the evidence is clone3's"
    assert item.need.detail == (
        "needed though no run called it: the C library falls back to clone when clone3 answers ENOSYS; here clone3 "
        "is answered with ENOSYS by the syscall filter"
    )
    fallback = make_policy(syscalls=allow("read", "exit_group", "exit", "clone"), errnos=(("clone3", "ENOSYS"),))
    assert compare(profile, fallback).passed()
    eperm = make_policy(syscalls=allow("read", "exit_group", "exit", "clone"), errnos=(("clone3", "EPERM"),))
    assert [item.need.name for item in compare(profile, eperm).missing] == ["clone3"], "EPERM has no fallback"


def test_no_filter_misses_no_syscall() -> None:
    assert missing_names(make_profile(syscalls=("ptrace", "bpf"))) == set()


def test_a_needed_capability_outside_the_bounding_set_is_missing_with_its_kernel_path() -> None:
    comparison = compare(make_profile(needed=["CAP_CHOWN"]), make_policy(bounding=allow("CAP_KILL")))
    [item] = comparison.missing
    assert item.need.key == (ItemKind.CAPABILITY, "CAP_CHOWN")
    assert item.refused == "not in the capability bounding set"
    assert [path.frames for path in item.need.paths] == [CHOWN_FRAMES]
    assert [path.via for path in item.need.paths] == ["setattr_prepare"]


@pytest.mark.parametrize(
    ("bounding", "missing"),
    [(deny("CAP_CHOWN"), True), (deny("CAP_KILL"), False), (allow(), True), (allow("CAP_CHOWN"), False)],
    ids=["deny-it", "deny-other", "empty", "allow-it"],
)
def test_bounding_set_modes(bounding: object, missing: bool) -> None:
    assert bool(missing_names(make_profile(needed=["CAP_CHOWN"]), bounding=bounding)) is missing


def test_denied_probed_and_user_namespace_checks_are_not_needs() -> None:
    profile = make_profile(denied=["CAP_DAC_OVERRIDE"], probed=["CAP_SYS_ADMIN"], user_namespace_only=["CAP_NET_ADMIN"])
    assert missing_names(profile, bounding=allow()) == set()


def test_a_non_root_user_with_no_new_privileges_needs_the_capability_ambient() -> None:
    profile = make_profile(needed=["CAP_NET_BIND_SERVICE"])
    policy = dict(bounding=allow("CAP_NET_BIND_SERVICE"), user="www", no_new_privileges=True)
    assert missing_names(profile, **policy) == {(ItemKind.AMBIENT, "CAP_NET_BIND_SERVICE")}
    assert missing_names(profile, **policy, ambient=["CAP_NET_BIND_SERVICE"]) == set()
    comparison = compare(profile, make_policy(bounding=allow(), user="www", no_new_privileges=True))  # type: ignore[arg-type]
    assert {item.need.kind for item in comparison.missing} == {ItemKind.CAPABILITY, ItemKind.AMBIENT}
    assert dict(comparison.fix.allow) == {
        ItemKind.CAPABILITY: ("CAP_NET_BIND_SERVICE",),
        ItemKind.AMBIENT: ("CAP_NET_BIND_SERVICE",),
    }


def test_no_new_privileges_that_a_seccomp_setting_implies_needs_the_capability_ambient_too() -> None:
    profile = make_profile(needed=["CAP_NET_BIND_SERVICE"])
    implied = "SystemCallFilter= (svc.service:3)"
    policy = make_policy(bounding=allow("CAP_NET_BIND_SERVICE"), user="www", no_new_privileges_implied_by=implied)
    [missing] = compare(profile, policy).missing
    assert (missing.need.kind, missing.need.name) == (ItemKind.AMBIENT, "CAP_NET_BIND_SERVICE")
    assert f"no-new-privileges, which {implied} turns on for a user without CAP_SYS_ADMIN" in missing.refused


def test_a_non_root_user_without_no_new_privileges_is_a_warning_not_a_miss() -> None:
    comparison = compare(make_profile(needed=["CAP_NET_BIND_SERVICE"]), make_policy(user="www"))
    assert not comparison.missing
    [advisory] = comparison.advisories
    assert advisory.topic is Topic.PRIVILEGE and advisory.subject == "CAP_NET_BIND_SERVICE"
    assert "user www holds it only if it is ambient or a set-user-ID program or file capability" in advisory.message


@pytest.mark.parametrize("user", [None, "root", "0"])
def test_root_needs_no_ambient_capability(user: str | None) -> None:
    comparison = compare(make_profile(needed=["CAP_CHOWN"]), make_policy(user=user, no_new_privileges=True))
    assert comparison.passed() and not comparison.advisories


def test_families() -> None:
    profile = make_profile(families=["AF_UNIX", "AF_NETLINK"])
    assert missing_names(profile, families=allow("AF_UNIX")) == {(ItemKind.FAMILY, "AF_NETLINK")}
    assert missing_names(profile, families=deny("AF_PACKET")) == set()
    assert missing_names(profile, families=allow()) == {(ItemKind.FAMILY, "AF_UNIX"), (ItemKind.FAMILY, "AF_NETLINK")}


def test_a_family_made_only_by_socketpair_needs_no_permission(committed_profile: LoadTraces) -> None:
    """RestrictAddressFamilies= and socket() argument filters do not limit socketpair() (systemd.exec(5))."""
    profile = make_profile(paired=["AF_UNIX"])
    assert missing_names(profile, families=allow()) == set()
    excess = compare(profile, make_policy(families=allow("AF_UNIX"))).excess
    [item] = [item for item in excess if item.kind is ItemKind.FAMILY]
    assert (item.name, item.note) == ("AF_UNIX", "made only by socketpair(), which family restrictions do not limit")
    cargo = committed_profile("cargo-build-debug")
    assert [(use.name, use.syscalls) for use in cargo.families] == [("AF_UNIX", ("socketpair",))]
    assert compare(cargo, make_policy(families=allow())).passed()


def test_setns_without_a_type_needs_every_namespace_type() -> None:
    profile = make_profile(namespaces=["any"])
    assert missing_names(profile, namespaces=deny("user")) == {(ItemKind.NAMESPACE, "any")}
    assert missing_names(profile, namespaces=allow(*ALL_NAMESPACE_TYPES)) == set()
    assert excess_names(profile, ItemKind.NAMESPACE) == []


def test_a_32_bit_program_needs_its_abi() -> None:
    profile = make_profile(syscalls=("read", "exit_group", "mmap2"), compat=["mmap2"])
    comparison = compare(profile, make_policy(architectures=["x86_64"]))
    [item] = comparison.missing
    assert item.need.key == (ItemKind.ARCHITECTURE, "x86")
    assert item.need.evidence.programs == ("/opt/old32",)
    assert excess_names(profile, ItemKind.ARCHITECTURE, architectures=["x86_64", "x86"]) == []


def test_items_seen_in_fewer_runs_than_asked_are_uncertain() -> None:
    everywhere = make_profile(syscalls=("read",), runs=3)
    once = replace(everywhere, syscalls=tuple(replace(need, evidence=evidence((0,))) for need in everywhere.syscalls))
    policy = make_policy(syscalls=allow("exit_group"))
    assert [item.uncertain for item in compare(everywhere, policy, min_runs=2).missing] == [False]
    assert [item.uncertain for item in compare(once, policy, min_runs=2).missing] == [True]
    implied = compare(once, make_policy(syscalls=allow("read")), min_runs=2).missing
    assert [(item.need.name, item.uncertain) for item in implied] == [("exit_group", False)], "no run of its own"


# --- excess ---------------------------------------------------------------------------------------------------------


def test_excess_is_ranked_most_dangerous_first() -> None:
    policy = make_policy(
        syscalls=allow("read", "exit_group", "getpid", "ptrace", "mount", "setuid"),
        bounding=allow("CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"),
        families=allow("AF_PACKET", "AF_UNIX"),
        namespaces=allow("user"),
        architectures=["x86_64"],
    )
    comparison = compare(make_profile(syscalls=("read", "exit_group")), policy)
    assert [(item.kind.value, item.name, item.rating.danger) for item in comparison.excess] == [
        ("syscall", "ptrace", Danger.CRITICAL),
        ("capability", "CAP_SYS_ADMIN", Danger.CRITICAL),
        ("syscall", "mount", Danger.HIGH),
        ("family", "AF_PACKET", Danger.HIGH),
        ("namespace", "user", Danger.HIGH),
        ("syscall", "setuid", Danger.MEDIUM),
        ("syscall", "getpid", Danger.LOW),
        ("capability", "CAP_NET_BIND_SERVICE", Danger.LOW),
        ("family", "AF_UNIX", Danger.LOW),
    ]
    assert comparison.passed() and not comparison.passed(strict=True)


def test_without_a_filter_or_with_a_deny_list_the_excess_is_the_dangerous_syscalls_still_allowed() -> None:
    profile = make_profile(syscalls=("read", "exit_group", "ptrace"))
    unfiltered = excess_names(profile, ItemKind.SYSCALL)
    assert "bpf" in unfiltered and "ptrace" not in unfiltered and "getpid" not in unfiltered
    assert all(SYSCALL_DANGER[name].danger > Danger.LOW for name in unfiltered)
    assert "bpf" not in excess_names(profile, ItemKind.SYSCALL, syscalls=deny("bpf"))
    # x86-only names (setuid32 in systemd's @setuid) are surface only where the x86 ABI is let through
    only_native = allow("setuid32", "read")
    assert "setuid32" not in excess_names(profile, ItemKind.SYSCALL, syscalls=only_native, architectures=["x86_64"])
    assert "setuid32" in excess_names(profile, ItemKind.SYSCALL, syscalls=only_native)


def test_syscalls_portability_allows_unseen_are_not_excess() -> None:
    rules = allow("read", "exit_group", "clock_gettime", "rt_sigreturn")
    profile = make_profile(syscalls=("read", "exit_group"))
    assert excess_names(profile, ItemKind.SYSCALL, syscalls=rules) == []
    unportable = compare(profile, make_policy(syscalls=rules), portability=False)
    assert [item.name for item in unportable.excess if item.kind is ItemKind.SYSCALL] == [
        "clock_gettime",
        "rt_sigreturn",
    ]


def test_excess_capabilities_say_what_the_traces_saw_of_them() -> None:
    profile = make_profile(denied=["CAP_DAC_OVERRIDE"], probed=["CAP_SYS_ADMIN"], user_namespace_only=["CAP_NET_ADMIN"])
    comparison = compare(profile, make_policy(bounding=allow("CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN", "CAP_NET_ADMIN")))
    notes = {item.name: item.note for item in comparison.excess}
    assert notes["CAP_DAC_OVERRIDE"].startswith("attempted and refused in the traces")
    assert notes["CAP_SYS_ADMIN"].startswith("only probed")
    assert notes["CAP_NET_ADMIN"].startswith("needed only inside a user namespace")


def test_an_unrestricted_policy_lists_every_capability_family_namespace_and_compat_abi() -> None:
    comparison = compare(make_profile(families=["AF_UNIX"]), make_policy())
    kinds = {kind: {item.name for item in comparison.excess if item.kind is kind} for kind in ItemKind}
    assert kinds[ItemKind.CAPABILITY] == set(abi.CAPABILITIES)
    assert kinds[ItemKind.FAMILY] == set(abi.ADDRESS_FAMILIES) - {"AF_UNSPEC", "AF_UNIX"}
    assert kinds[ItemKind.NAMESPACE] == set(ALL_NAMESPACE_TYPES)
    assert kinds[ItemKind.ARCHITECTURE] == {"x86", "x32"}


def test_unneeded_ambient_capabilities_are_excess() -> None:
    assert excess_names(make_profile(), ItemKind.AMBIENT, ambient=["CAP_NET_RAW"], bounding=allow()) == ["CAP_NET_RAW"]


# --- advisories -----------------------------------------------------------------------------------------------------


def test_portability_warnings_match_the_syscall_plan() -> None:
    profile = make_profile(syscalls=("read", "exit_group"))
    comparison = compare(profile, make_policy(syscalls=allow("read", "exit_group")))
    advisories = {advisory.subject: advisory.message for advisory in comparison.advisories}
    assert advisories["clock_getres clock_gettime getcpu gettimeofday time"].endswith(
        "answered by the vDSO where the clocksource allows"
    )
    assert advisories["exit rt_sigreturn"].endswith("never returns, so a filter must not refuse it")
    enosys = next(subject for subject in advisories if subject.startswith("clone3"))
    assert advisories[enosys].startswith("refused with EPERM: a C library that tries them falls back")
    assert comparison.passed(), "a portability warning is not a missing item"
    assert "clock_gettime" in comparison.fix.portable and "clone3" in comparison.fix.enosys
    plain = compare(profile, make_policy(syscalls=allow("read", "exit_group")), portability=False)
    assert [advisory.subject for advisory in plain.advisories] == []


def test_a_policy_that_already_answers_enosys_gets_no_enosys_warning() -> None:
    errnos = tuple((name, "ENOSYS") for name in ("clone3", "close_range", "copy_file_range", "epoll_pwait2",
                   "faccessat2", "fchmodat2", "openat2", "pidfd_open", "pidfd_send_signal", "statx"))  # fmt: skip
    comparison = compare(make_profile(), make_policy(syscalls=allow("read"), errnos=errnos))
    assert not comparison.fix.enosys


def test_traces_without_capability_checks_compare_no_capability() -> None:
    profile = make_profile(capability_source=CapabilitySource.NONE)
    comparison = compare(profile, make_policy(bounding=allow("CAP_SYS_ADMIN")))
    assert not [item for item in comparison.excess if item.kind is ItemKind.CAPABILITY]
    assert [advisory.topic for advisory in comparison.advisories] == [Topic.COVERAGE]


def test_a_seccomp_profile_says_nothing_of_capabilities() -> None:
    profile = make_profile(needed=["CAP_CHOWN"])
    comparison = compare(profile, make_policy(syscalls=allow("read"), policy_format=PolicyFormat.OCI))
    assert not [item for item in comparison.excess if item.kind is ItemKind.CAPABILITY]
    assert [need.kind for need in comparison.needs].count(ItemKind.CAPABILITY) == 0
    assert comparison.advisories[-1].message == (
        "a seccomp profile (oci) does not say which capabilities the workload gets (the runtime grants them): "
        "capabilities not compared"
    )
    stated = compare(profile, make_policy(bounding=allow("CAP_KILL"), policy_format=PolicyFormat.K8S))
    assert [item.need.name for item in stated.missing] == ["CAP_CHOWN"]


def test_incomplete_traces_unresolved_numbers_and_io_uring_are_said() -> None:
    profile = replace(
        make_profile(syscalls=("read", "io_uring_setup")),
        unresolved=(UnresolvedSyscall(999, "x86_64", "libseccomp 2.5.4 knows no syscall 999", evidence()),),
        dropped=DropCounters(syscalls=3),
    )
    messages = [advisory.message for advisory in compare(profile, make_policy(syscalls=deny())).advisories]
    assert messages == [
        "the traces are incomplete (3 syscalls not recorded): something needed may be absent from this report",
        "syscall 999 of the x86_64 ABI has no name (libseccomp 2.5.4 knows no syscall 999): not compared",
        "the workload uses io_uring, whose operations seccomp never sees: the filter cannot confine them",
    ]


# --- real traces ----------------------------------------------------------------------------------------------------


def test_git_clone_as_nobody_attempted_cap_dac_override_and_does_not_need_it(committed_profile: LoadTraces) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    comparison = compare(profile, make_policy(bounding=allow("CAP_DAC_OVERRIDE")))
    [item] = [item for item in comparison.excess if item.kind is ItemKind.CAPABILITY]
    assert (item.name, item.note) == (
        "CAP_DAC_OVERRIDE",
        "attempted and refused in the traces: allowing it changes what the workload does",
    )
    assert comparison.passed()


def test_a_policy_generated_from_the_needs_passes(committed_profile: LoadTraces) -> None:
    profile = committed_profile("curl-fetch-v1")  # the lists alone: a trace without paths
    policy = make_policy(
        syscalls=allow(*plan_syscalls(profile, portability=False).allowed),  # with what the rules make needs
        bounding=allow(*profile.bounding_set()),
        families=allow(*profile.family_names()),
        namespaces=allow(*profile.namespace_types()),
        architectures=profile.abis(),
    )
    comparison = compare(profile, policy)
    assert comparison.passed() and not comparison.fix.allow
    assert [item.kind for item in comparison.excess] == [], "nothing allowed beyond the needs"


# --- the danger table names real things -----------------------------------------------------------------------------


def test_every_rated_syscall_exists_on_a_supported_abi() -> None:
    unknown = [
        name
        for name in SYSCALL_DANGER
        if all(syscalls.syscall_number(each, name) is None for each in ("x86_64", "aarch64", "x86", "arm"))
    ]
    assert unknown == []


def test_every_rated_name_is_known() -> None:
    assert set(CAPABILITY_DANGER) <= set(abi.CAPABILITIES)
    assert set(FAMILY_DANGER) <= set(abi.ADDRESS_FAMILIES)
    assert set(NAMESPACE_DANGER) <= set(ALL_NAMESPACE_TYPES)
    assert all(syscalls.syscall_number(name, "read") is not None for name in ABI_DANGER)


# --- inputs and drift -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["policy", "policy.txt", "unit.service.bak"])
def test_a_policy_whose_format_its_name_does_not_tell_is_one_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(
        PolicyParseError, match=r"cannot tell the policy format from the file name; give --policy-format"
    ):
        read_policy(tmp_path / name)


def test_drift_lists_what_started_and_stopped(committed_profile: LoadTraces) -> None:
    old, new = committed_profile("git-clone"), committed_profile("git-clone-shallow")
    result = drift(old, new)
    assert ("syscall", "clone3") in {(need.kind.value, need.name) for need in result.started}
    assert {need.key for need in result.started}.isdisjoint({need.key for need in result.stopped})
    assert result.notes == ()
    backwards = drift(new, old)
    assert {need.key for need in backwards.stopped} == {need.key for need in result.started}
    assert drift(old, old).started == drift(old, old).stopped == ()


def test_drift_skips_capabilities_one_side_did_not_record() -> None:
    old = make_profile(needed=["CAP_CHOWN"])
    new = make_profile(capability_source=CapabilitySource.NONE)
    result = drift(old, new)
    assert result.stopped == ()
    assert result.notes == ("capabilities not compared: one side recorded no capability checks",)
