"""Profiles and policies built directly, for comparison tests, and hypothesis strategies that draw them."""

from collections.abc import Iterable

from hypothesis import strategies as st

from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Override,
    Policy,
    PolicyFormat,
    SyscallFilter,
)
from generators.profile import (
    CapabilityPath,
    CapabilityUse,
    Evidence,
    FamilyUse,
    NamespaceNeed,
    Profile,
    RunRef,
    SyscallNeed,
)
from profiler import abi
from profiler.trace import CapabilitySource, CheckClass

PROGRAM = "/usr/bin/service"
CHOWN_FRAMES = ("cap_capable", "security_capable", "capable_wrt_inode_uidgid", "setattr_prepare", "notify_change")


def evidence(
    runs: Iterable[int] = (0,), count: int = 1, program: str = PROGRAM, first_s: float | None = 0.001
) -> Evidence:
    return Evidence(tuple(runs), count, (program,), first_s)


def path(
    classification: CheckClass = CheckClass.NEEDED, initial_user_ns: bool = True, syscall: str = "fchownat"
) -> CapabilityPath:
    return CapabilityPath(
        classification, initial_user_ns, PROGRAM, syscall, "setattr_prepare", CHOWN_FRAMES, evidence()
    )


def make_profile(
    *,
    syscalls: Iterable[str] = ("read", "write", "exit_group"),
    needed: Iterable[str] = (),
    denied: Iterable[str] = (),
    probed: Iterable[str] = (),
    user_namespace_only: Iterable[str] = (),
    families: Iterable[str] = (),
    paired: Iterable[str] = (),
    namespaces: Iterable[str] = (),
    compat: Iterable[str] = (),
    runs: int = 1,
    uid: int = 0,
    capability_source: CapabilitySource = CapabilitySource.TRACEPOINT,
) -> Profile:
    """A profile of one x86_64 component; compat names syscalls called in the x86 ABI only, paired families made
    by socketpair() only."""
    capabilities: dict[str, list[CapabilityPath]] = {}
    for names, chosen in (
        (needed, path()),
        (denied, path(CheckClass.DENIED)),
        (probed, path(CheckClass.PROBE, syscall="mmap")),
        (user_namespace_only, path(initial_user_ns=False)),
    ):
        for name in names:
            capabilities.setdefault(name, []).append(chosen)
    every_run = tuple(range(runs))
    return Profile(
        component="svc",
        runs=tuple(
            RunRef(
                f"run{index}.trace.json",
                "2026-11-29T00:00:00Z",
                "host",
                "root" if uid == 0 else "svc",
                uid,
                ("service",),
                capability_source,
            )
            for index in range(runs)
        ),
        native_abi="x86_64",
        syscalls=tuple(
            sorted(
                [SyscallNeed(name, ("x86_64",), evidence(every_run)) for name in set(syscalls) - set(compat)]
                + [SyscallNeed(name, ("x86",), evidence(every_run, program="/opt/old32")) for name in compat],
                key=lambda need: need.name,
            )
        ),
        unresolved=(),
        capabilities=tuple(CapabilityUse(name, tuple(paths)) for name, paths in sorted(capabilities.items())),
        families=tuple(
            FamilyUse(
                name,
                abi.address_family_number(name) or 0,
                ("SOCK_STREAM",),
                evidence(every_run),
                ("socketpair",) if name in set(paired) else ("socket",),
            )
            for name in sorted({*families, *paired}, key=lambda name: abi.address_family_number(name) or 0)
        ),
        namespaces=tuple(NamespaceNeed(name, ("unshare",), evidence(every_run)) for name in sorted(set(namespaces))),
    )


def allow(*names: str) -> NameSet:
    return NameSet(ListMode.ALLOW, frozenset(names))


def deny(*names: str) -> NameSet:
    return NameSet(ListMode.DENY, frozenset(names))


def make_policy(
    *,
    syscalls: NameSet | None = None,
    default_errno: str | None = "EPERM",
    errnos: tuple[tuple[str, str], ...] = (),
    architectures: Iterable[str] | None = None,
    bounding: NameSet = UNRESTRICTED,
    ambient: Iterable[str] = (),
    families: NameSet = UNRESTRICTED,
    namespaces: NameSet = UNRESTRICTED,
    no_new_privileges: bool | None = None,
    user: str | None = None,
    policy_format: PolicyFormat = PolicyFormat.SYSTEMD,
    findings: tuple[LintFinding, ...] = (),
    overrides: tuple[Override, ...] = (),
    no_new_privileges_implied_by: str | None = None,
) -> Policy:
    return Policy(
        source="svc.service",
        format=policy_format,
        syscalls=None if syscalls is None else SyscallFilter(syscalls, default_errno, errnos),
        architectures=None if architectures is None else frozenset(architectures),
        capability_bounding=bounding,
        ambient_capabilities=frozenset(ambient),
        address_families=families,
        namespaces=namespaces,
        no_new_privileges=no_new_privileges,
        user=user,
        findings=findings,
        overrides=overrides,
        no_new_privileges_implied_by=no_new_privileges_implied_by,
    )


# Small universes, so that drawn profiles and policies overlap often.
SYSCALLS = (
    "read", "write", "openat", "close", "mmap", "exit_group", "exit", "rt_sigreturn", "clock_gettime", "time",
    "clone3", "statx", "ptrace", "bpf", "mount", "setuid", "getpid", "socket", "fchownat", "unshare",
)  # fmt: skip
CAPABILITIES = ("CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_DAC_OVERRIDE", "CAP_NET_BIND_SERVICE", "CAP_KILL")
FAMILIES = ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET")
NAMESPACES = ("user", "net", "mnt", "pid", "any")


def _subset(universe: tuple[str, ...]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(universe))


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    capabilities = sorted(draw(_subset(CAPABILITIES)))
    classes = draw(st.lists(st.sampled_from(("needed", "denied", "probed")), min_size=len(capabilities),
                            max_size=len(capabilities)))  # fmt: skip
    syscalls = draw(_subset(SYSCALLS))
    return make_profile(
        syscalls=syscalls,
        needed=[name for name, kind in zip(capabilities, classes, strict=True) if kind == "needed"],
        denied=[name for name, kind in zip(capabilities, classes, strict=True) if kind == "denied"],
        probed=[name for name, kind in zip(capabilities, classes, strict=True) if kind == "probed"],
        families=draw(_subset(FAMILIES)),
        namespaces=draw(_subset(NAMESPACES)),
        compat=draw(_subset(tuple(sorted(syscalls)))) if syscalls and draw(st.booleans()) else (),
        uid=draw(st.sampled_from((0, 65534))),
    )


def _name_sets(universe: tuple[str, ...]) -> st.SearchStrategy[NameSet]:
    return st.builds(NameSet, st.sampled_from(ListMode), _subset(universe))


def _overrides(draw: st.DrawFn) -> tuple[Override, ...]:
    """Settings such as systemd's ProtectClock=, refusing some syscalls and capabilities whatever the lists say."""
    # ENOSYS as systemd's RestrictNamespaces= answers clone3, EPERM as ProtectClock= and its kin refuse.
    drawn = st.tuples(_subset(SYSCALLS), _subset(CAPABILITIES), st.sampled_from(("EPERM", "ENOSYS")))
    return tuple(
        Override(f"Protect{index}=yes", f"Protect{index}=no", "svc.service", index, syscalls, capabilities, errno)
        for index, (syscalls, capabilities, errno) in enumerate(draw(st.lists(drawn, max_size=2)), 1)
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    filter_names = draw(st.none() | _name_sets(SYSCALLS))
    policy_format = draw(st.sampled_from((PolicyFormat.SYSTEMD, PolicyFormat.OCI, PolicyFormat.K8S)))
    return make_policy(
        syscalls=filter_names,
        default_errno=draw(st.sampled_from(("EPERM", None))),
        errnos=tuple(sorted((name, "ENOSYS") for name in draw(_subset(("clone3", "statx"))))),
        architectures=draw(st.none() | _subset(("x86_64", "x86"))),
        bounding=draw(_name_sets(CAPABILITIES)),
        ambient=draw(_subset(CAPABILITIES)),
        families=draw(_name_sets(FAMILIES)),
        namespaces=draw(_name_sets(NAMESPACES[:-1])),
        no_new_privileges=draw(st.sampled_from((True, False, None))),
        user=draw(st.sampled_from((None, "root", "svc"))),
        policy_format=policy_format,
        overrides=_overrides(draw) if policy_format is PolicyFormat.SYSTEMD else (),
        no_new_privileges_implied_by=draw(st.none() | st.just("SystemCallFilter= (svc.service:3)"))
        if policy_format is PolicyFormat.SYSTEMD
        else None,
    )
