"""The systemd drop-in: golden files of real traces, systemd's own verdict on them, and properties of the rendering.

Regenerate the golden files after an intended change with PROFILER_UPDATE_GOLDEN=1, and read the diff.
"""

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from generators.abis import libseccomp_knows
from generators.interface import UNRESTRICTED, ListMode, NameSet, Policy, RenderOptions
from generators.profile import FamilyUse, Profile, UnresolvedSyscall
from generators.syscall_plan import plan_syscalls
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import IMPLIED_GROUP
from profiler import syscalls
from profiler.trace import CapabilitySource
from tests.generators import systemd_analyze
from tests.generators.conftest import REPOSITORY, LoadTraces
from tests.generators.profile_builders import evidence, make_profile, profiles

# Real traces, and the options that show what each is for.
GOLDEN_CASES: dict[str, tuple[tuple[str, ...], RenderOptions]] = {
    # three clones as nobody: CAP_DAC_OVERRIDE attempted and refused; items seen in fewer than 3 runs uncertain
    "git-clone": (("git-clone", "git-clone-bare", "git-clone-shallow"), RenderOptions(min_runs=3)),
    # two builds, written with @groups
    "cargo-build-groups": (("cargo-build-debug", "cargo-build-release"), RenderOptions(groups=True, min_runs=2)),
    "curl-fetch-no-comments": (("curl-fetch",), RenderOptions(comments=False)),
    # root that needs CAP_CHOWN
    "chown": (("chown",), RenderOptions()),
    # user and net namespaces; CAP_SYS_ADMIN needed only inside the user namespace; no socket
    "unshare-user-net": (("unshare-user-net",), RenderOptions()),
}


# Profiles no real trace here shows, each for one rule of the drop-in.
SYNTHETIC: dict[str, Callable[[], Profile]] = {
    "ambient": lambda: make_profile(uid=65534, needed=["CAP_NET_BIND_SERVICE"], families=["AF_INET"]),
    "compat-abi": lambda: make_profile(syscalls=["read", "write", "exit_group", "socketcall"], compat=["socketcall"]),
    "setns-of-any-type": lambda: make_profile(namespaces=["any", "net"]),
    "capabilities-unknown": lambda: make_profile(needed=["CAP_CHOWN"], capability_source=CapabilitySource.NONE),
    "denied-and-user-namespace": lambda: make_profile(denied=["CAP_SYS_ADMIN"], user_namespace_only=["CAP_NET_ADMIN"]),
}


def _synthetic_with_unresolved_io_uring() -> Profile:
    base = make_profile(syscalls=["read", "io_uring_setup", "io_uring_enter", "exit_group"])
    reason = "libseccomp 2.5.4 knows no syscall 999 on x86_64"
    return dataclasses.replace(base, unresolved=(UnresolvedSyscall(999, "x86_64", reason, evidence(count=3)),))


SYNTHETIC["io-uring-and-unresolved"] = _synthetic_with_unresolved_io_uring


def _comments(text: str) -> str:
    """The drop-in's comments, each unwrapped onto one line."""
    return re.sub(r"\n#   ", " ", text)


def _settings(text: str, key: str) -> list[str]:
    return [line.removeprefix(f"{key}=") for line in _comments(text).splitlines() if line.startswith(f"{key}=")]


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_drop_in_of_real_traces(
    case: str, committed_profile: LoadTraces, systemd: SystemdFormat, golden: Callable[[str, str], None]
) -> None:
    names, options = GOLDEN_CASES[case]
    golden(f"systemd/{case}.conf", systemd.render(committed_profile(*names), options))


def _profiles_to_check(committed_profile: LoadTraces) -> dict[str, tuple[Profile, RenderOptions]]:
    chosen = {case: (committed_profile(*names), options) for case, (names, options) in GOLDEN_CASES.items()}
    chosen |= {case: (build(), RenderOptions()) for case, build in SYNTHETIC.items()}
    chosen |= {f"{case}-groups": (build(), RenderOptions(groups=True)) for case, build in SYNTHETIC.items()}
    return chosen


CASES = [*GOLDEN_CASES, *SYNTHETIC, *(f"{case}-groups" for case in SYNTHETIC)]


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("case", CASES)
def test_systemd_verifies_the_drop_in_without_a_warning(
    case: str, committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    profile, options = _profiles_to_check(committed_profile)[case]
    text = systemd.render(profile, options)
    unit = systemd_analyze.write_unit(tmp_path, "svc", text)
    # Runs as nobody that cannot take DynamicUser= keep User=nobody, which systemd warns about: running as nobody
    # is still narrower than running as root, the only other user a trace can vouch for.
    expected = ["Special user nobody configured, this is not safe!"] if "\nUser=nobody\n" in text else []
    assert [warning.message for warning in systemd_analyze.verify_warnings(unit)] == expected


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("case", CASES)
def test_the_drop_in_lowers_the_exposure_systemd_scores(
    case: str, committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    profile, options = _profiles_to_check(committed_profile)[case]
    bare = systemd_analyze.write_unit(tmp_path, "bare")
    confined = systemd_analyze.write_unit(tmp_path, "svc", systemd.render(profile, options))
    assert systemd_analyze.exposure(confined) < systemd_analyze.exposure(bare)


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("case", CASES)
def test_systemd_reads_the_drop_in_as_it_is_read_back(
    case: str, committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    profile, options = _profiles_to_check(committed_profile)[case]
    unit = systemd_analyze.write_unit(tmp_path, "svc", systemd.render(profile, options))
    checks = systemd_analyze.security_checks(unit)
    expected = systemd_analyze.expected_checks(systemd.read(unit), systemd.groups, set(checks))
    assert {name: checks[name] for name in expected} == expected


def test_enosys_entries_follow_the_allow_list_on_lines_of_their_own(
    committed_profile: LoadTraces, systemd: SystemdFormat
) -> None:
    """systemd 252 takes an errno only on a '~' line, and a first '~' line would make the filter a deny-list."""
    filters = _settings(systemd.render(committed_profile("chown"), RenderOptions()), "SystemCallFilter")
    enosys = [value for value in filters if value.endswith(":ENOSYS")]
    assert enosys and all(value.startswith("~") for value in enosys)
    assert filters[0] == "" and not filters[1].startswith("~")
    assert filters.index(enosys[0]) > max(index for index, value in enumerate(filters) if value and value[0] != "~")


def test_unresolved_numbers_are_named_in_a_comment_only(systemd: SystemdFormat) -> None:
    text = systemd.render(_synthetic_with_unresolved_io_uring(), RenderOptions())
    assert "999" not in "".join(_settings(text, "SystemCallFilter"))
    assert (
        "# Not allowed: syscall 999 on x86_64, which has no name to write: libseccomp 2.5.4 knows no syscall"
        in _comments(text)
    )


def test_io_uring_is_warned_about(systemd: SystemdFormat) -> None:
    text = systemd.render(_synthetic_with_unresolved_io_uring(), RenderOptions())
    assert "# WARNING: the workload uses io_uring: seccomp never sees the operations io_uring performs" in _comments(
        text
    )


def test_refused_capabilities_are_listed_not_granted(systemd: SystemdFormat) -> None:
    text = systemd.render(SYNTHETIC["denied-and-user-namespace"](), RenderOptions())
    assert _settings(text, "CapabilityBoundingSet") == [""]
    assert "# Attempted and refused in the traces, so not granted" in _comments(
        text
    ) and "CAP_SYS_ADMIN in fchownat" in _comments(text)
    assert "# CAP_NET_ADMIN is not granted: it was needed only inside a user namespace" in _comments(text)


def test_unknown_capabilities_leave_the_bounding_set_out(systemd: SystemdFormat) -> None:
    text = systemd.render(SYNTHETIC["capabilities-unknown"](), RenderOptions())
    assert not _settings(text, "CapabilityBoundingSet") and not _settings(text, "AmbientCapabilities")
    assert "the capabilities are unknown, since the kernel could not report capability checks in run0" in _comments(
        text
    )


def test_an_unprivileged_run_gets_its_capabilities_as_ambient_ones(systemd: SystemdFormat) -> None:
    text = systemd.render(SYNTHETIC["ambient"](), RenderOptions())
    assert _settings(text, "CapabilityBoundingSet") == ["", "CAP_NET_BIND_SERVICE"]
    assert _settings(text, "AmbientCapabilities") == ["", "CAP_NET_BIND_SERVICE"]


def test_a_root_run_resets_ambient_capabilities(committed_profile: LoadTraces, systemd: SystemdFormat) -> None:
    text = systemd.render(committed_profile("chown"), RenderOptions())
    assert _settings(text, "AmbientCapabilities") == [""]
    assert "# AmbientCapabilities= empty: recorded as root, which needs none." in _comments(text)


def test_no_socket_means_no_family(committed_profile: LoadTraces, systemd: SystemdFormat) -> None:
    assert _settings(
        systemd.render(committed_profile("unshare-user-net"), RenderOptions()), "RestrictAddressFamilies"
    ) == ["none"]


def test_a_family_systemd_cannot_name_is_admitted_by_denying_the_others(systemd: SystemdFormat) -> None:
    profile = make_profile(families=["AF_UNIX"])
    profile = dataclasses.replace(
        profile, families=(*profile.families, FamilyUse("AF_99", 99, ("SOCK_DGRAM",), evidence()))
    )
    policy = _read_back(systemd, profile, RenderOptions())
    assert policy.address_families.mode is ListMode.DENY
    assert policy.address_families.allows("AF_UNIX") and policy.address_families.allows("AF_99")
    assert not policy.address_families.allows("AF_INET")


def test_setns_of_any_type_leaves_namespaces_unrestricted(systemd: SystemdFormat) -> None:
    text = systemd.render(SYNTHETIC["setns-of-any-type"](), RenderOptions())
    assert _settings(text, "RestrictNamespaces") == ["no"]
    assert "namespaces cannot be restricted" in _comments(text)


def test_32_bit_programs_keep_their_abi_and_are_told_what_it_escapes(systemd: SystemdFormat) -> None:
    text = systemd.render(SYNTHETIC["compat-abi"](), RenderOptions())
    assert _settings(text, "SystemCallArchitectures") == ["", "native x86"]
    assert "every socket of 32-bit x86 programs (systemd cannot filter socketcall())" in _comments(text)


def test_items_seen_in_fewer_runs_are_marked_uncertain(committed_profile: LoadTraces, systemd: SystemdFormat) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    text = systemd.render(profile, RenderOptions(min_runs=3))
    assert "(uncertain: seen in fewer than 3 runs)" in _comments(text)
    assert "(uncertain" not in systemd.render(profile, RenderOptions(min_runs=1))


def test_groups_are_written_where_wholly_used(systemd: SystemdFormat) -> None:
    """Real workloads seldom use a whole group; one that uses @sync and @signal entirely gets them as groups."""
    whole = {name for group in ("@sync", "@signal") for name in systemd.groups.expand(group)}
    used = _effective(frozenset(whole | {"read", "write", "ptrace"}), ("x86_64",))
    written = _settings(systemd.render(make_profile(syscalls=used), RenderOptions(groups=True)), "SystemCallFilter")
    assert {"@sync", "@signal"} <= set(written) and IMPLIED_GROUP not in written
    assert "ptrace" in written and not whole & set(written)


# ------------------------------------------------------------------------------------------ properties


def _effective(names: frozenset[str], abis: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name for name in names if any(syscalls.syscall_number(each, name) is not None for each in abis))


def _read_back(systemd: SystemdFormat, profile: Profile, options: RenderOptions) -> Policy:
    # A directory per call: hypothesis runs many examples in one test, where tmp_path would be shared.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "profiler.conf"
        path.write_text(systemd.render(profile, options))
        return systemd.read(path)


def _expected(systemd: SystemdFormat, profile: Profile, options: RenderOptions) -> dict[str, object]:
    namespaces = set(profile.namespace_types())
    restricted = "any" not in namespaces  # then RestrictNamespaces= answers clone3 with ENOSYS
    plan = plan_syscalls(profile, options.portability, answered_enosys=("clone3",) if restricted else ())
    default = {name for name in systemd.groups.expand(IMPLIED_GROUP) if libseccomp_knows(name)}
    allowed = _effective(frozenset(default | set(plan.allowed)) - set(plan.enosys), profile.abis())
    capabilities_known = profile.capabilities_known
    bounding = NameSet(ListMode.ALLOW, frozenset(profile.bounding_set())) if capabilities_known else UNRESTRICTED
    ambient = frozenset(profile.bounding_set()) if capabilities_known and profile.recorded_unprivileged else frozenset()
    return {
        "syscalls": allowed,
        "errnos": tuple((name, "ENOSYS") for name in plan.enosys),
        "default_errno": "EPERM",
        "architectures": frozenset(profile.abis()),
        "bounding": bounding,
        "ambient": ambient,
        "families": NameSet(ListMode.ALLOW, frozenset(profile.family_names())),
        "namespaces": UNRESTRICTED if "any" in namespaces else NameSet(ListMode.ALLOW, frozenset(namespaces)),
        "no_new_privileges": True,
        "enosys_by_settings": {"clone3"} if restricted else set(),
    }


def _observed(policy: Policy, abis: tuple[str, ...]) -> dict[str, object]:
    assert policy.syscalls is not None and policy.syscalls.rules.mode is ListMode.ALLOW
    return {
        "syscalls": _effective(policy.syscalls.rules.names, abis),
        "errnos": policy.syscalls.errnos,
        "default_errno": policy.syscalls.default_errno,
        "architectures": policy.architectures,
        "bounding": policy.capability_bounding,
        "ambient": policy.ambient_capabilities,
        "families": policy.address_families,
        "namespaces": policy.namespaces,
        "no_new_privileges": policy.no_new_privileges,
        "enosys_by_settings": {name for each in policy.overrides if each.errno == "ENOSYS" for name in each.syscalls},
    }


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(profile=profiles())
def test_render_then_read_gives_the_same_sets(systemd: SystemdFormat, profile: Profile) -> None:
    for options in (RenderOptions(), RenderOptions(comments=False), RenderOptions(portability=False)):
        policy = _read_back(systemd, profile, options)
        assert _observed(policy, profile.abis()) == _expected(systemd, profile, options)
        x86_note = "RestrictAddressFamilies= does not apply to 32-bit x86 programs"
        assert all(x86_note in str(finding) for finding in policy.findings), policy.findings


@PROPERTY_SETTINGS
@given(profile=profiles())
def test_groups_never_allow_more_than_the_names_they_replace(systemd: SystemdFormat, profile: Profile) -> None:
    """Written with @groups or name by name, the drop-in allows the same syscalls on the ABIs it lets through."""
    by_name = _read_back(systemd, profile, RenderOptions())
    grouped = _read_back(systemd, profile, RenderOptions(groups=True))
    assert _observed(grouped, profile.abis()) == _observed(by_name, profile.abis())


RENDER_IN_A_FRESH_PROCESS = """
import sys
from generators.interface import RenderOptions
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
from generators.profile import build_profile
from profiler import trace

paths = [f"traces/{name}.trace.json" for name in sys.argv[1:]]
profile = build_profile([(path, trace.load(path)) for path in paths])
sys.stdout.write(SystemdFormat(committed_syscall_groups()).render(profile, RenderOptions(groups=True)))
"""


def test_the_same_traces_give_the_same_bytes_whatever_the_hash_seed(golden: Callable[[str, str], None]) -> None:
    """Set and dict orders change with PYTHONHASHSEED between processes; the drop-in must not."""
    names = GOLDEN_CASES["cargo-build-groups"][0]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", RENDER_IN_A_FRESH_PROCESS, *names],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=REPOSITORY,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    golden("systemd/cargo-build-groups.conf", outputs.pop())
