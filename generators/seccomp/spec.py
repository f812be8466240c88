"""The seccomp filter of the runtime-spec (config-linux.md): its vocabulary, and the filter built from a profile.

seccomp_spec(profile, options)   SeccompSpec: the rules every seccomp format writes (oci and k8s)
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from generators.evidence import describe_evidence
from generators.interface import (
    RenderOptions,
)
from generators.policy_names import check_profile_names
from generators.profile import NAMESPACE_TYPES, Profile
from generators.syscall_plan import plan_syscalls
from profiler import abi
from profiler.escaping import visible

ALLOW = "SCMP_ACT_ALLOW"


ERRNO = "SCMP_ACT_ERRNO"


ACTIONS = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    ERRNO,
    "SCMP_ACT_TRACE",
    ALLOW,
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)


ERRNO_ACTIONS = (ERRNO, "SCMP_ACT_TRACE")  # the runtime-spec lets only these carry an errnoRet


RUNNING_ACTIONS = (ALLOW, "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY")  # the syscall runs (NOTIFY: if the agent lets it)


OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)


FILTER_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)


# The asm-generic values, shared by every ABI profiler records (x86, arm and their 64-bit forms).
EPERM = 1


ENOSYS = 38


MAX_ARGUMENT_INDEX = 5


UINT64_MAX = 2**64 - 1


# clone() cannot ask for CLONE_NEWTIME: its bit is the exit signal there, so only clone3 and unshare can.
CLONE_NEWTIME = 0x80


NAMESPACE_BITS: dict[str, int] = {NAMESPACE_TYPES[name]: bit for bit, name in abi.NAMESPACE_FLAGS.items()}


# What `docker run` grants without --cap-add (moby oci/caps/defaults.go): the capabilities Docker's
# includes/excludes are evaluated against when reading a profile.
DOCKER_DEFAULT_CAPABILITIES = frozenset(
    {
        "CAP_AUDIT_WRITE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_MKNOD",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_RAW",
        "CAP_SETFCAP",
        "CAP_SETGID",
        "CAP_SETPCAP",
        "CAP_SETUID",
        "CAP_SYS_CHROOT",
    }
)


# GOARCH-derived names Docker's includes/excludes `arches` use, by libseccomp ABI (moby seccomp_linux.go).
DOCKER_ARCH_NAMES = {"x86_64": "amd64", "x86": "x86", "aarch64": "arm64", "arm": "arm"}


def scmp_arch(abi_name: str) -> str:
    """The runtime-spec constant of a libseccomp ABI name: x86_64 is SCMP_ARCH_X86_64."""
    return "SCMP_ARCH_" + abi_name.upper()


@dataclass(frozen=True, slots=True)
class ArgCondition:
    """A comparison of one syscall argument; MASKED_EQ holds when (argument & value) == value_two."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True, slots=True)
class SeccompRule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[ArgCondition, ...] = ()
    comment: str | None = None  # one line: where the syscall was seen, or why it is here


@dataclass(frozen=True, slots=True)
class SeccompSpec:
    """A seccomp filter with what it cannot say in rules (notes), before any format writes it."""

    notes: tuple[str, ...]
    default_action: str
    default_errno_ret: int
    architectures: tuple[str, ...]  # SCMP_ARCH_* constants
    rules: tuple[SeccompRule, ...]


def seccomp_spec(profile: Profile, options: RenderOptions) -> SeccompSpec:
    """The tightest filter that lets the profile's runs make every syscall they made, started by the runtimes; its
    comments escaped visibly, so that they hold no control character; NotANameError where the profile holds a name
    that is not one."""
    check_profile_names(profile)
    clone_limit = _clone_limit(profile) if options.argument_filters else None
    plan = plan_syscalls(
        profile,
        options.portability,
        answered_enosys=("clone3",) if clone_limit else (),
        runtimes=options.runtimes,
    )
    evidence = {need.name: need for need in profile.syscalls}
    runtime = dict(plan.runtime)

    def seen_comment(name: str) -> str:
        need = evidence[name]
        text = describe_evidence(need.evidence, profile, options.min_runs, allowed_anyway=name in plan.regardless)
        if need.abis != (profile.native_abi,):
            text += f" (ABI {', '.join(need.abis)})"
        return text + (f"; also {runtime[name]}" if name in runtime else "")

    reasons = {each.name: each.why if each.runtime else f"not seen: {each.why}" for each in plan.additions}
    allowed = {name: seen_comment(name) if name in evidence else reasons[name] for name in plan.allowed}
    enosys = dict.fromkeys(
        plan.enosys,
        "not seen: programs and the C library try these newer calls first and fall back to older ones when "
        "the kernel answers ENOSYS (EPERM would make them fail)",
    )
    conditional: dict[str, tuple[SeccompRule, ...]] = {}
    notes = list(_profile_notes(profile, options))
    if options.argument_filters:
        limits = _argument_limits(profile, allowed, clone_limit, options.min_runs)
        conditional, notes = limits.rules, notes + list(limits.notes)
        for name, comment in limits.enosys.items():
            allowed.pop(name, None)
            enosys[name] = comment
    rules: list[SeccompRule] = []
    for name in sorted(allowed):
        rules.extend(conditional.get(name, (SeccompRule((name,), ALLOW, comment=visible(allowed[name])),)))
    for why in sorted(set(enosys.values())):
        names = tuple(sorted(name for name, reason in enosys.items() if reason == why))
        rules.append(SeccompRule(names, ERRNO, ENOSYS, comment=visible(why)))
    return SeccompSpec(
        notes=tuple(visible(note) for note in notes),
        default_action=ERRNO,
        default_errno_ret=EPERM,
        architectures=tuple(scmp_arch(name) for name in profile.abis()),
        rules=tuple(rules),
    )


def _profile_notes(profile: Profile, options: RenderOptions) -> Iterable[str]:
    runs = len(profile.runs)
    sources = ", ".join(run.source for run in profile.runs)
    yield (
        f"seccomp filter of {profile.component}, generated by profiler from {runs} run{'s' if runs != 1 else ''} "
        f"({sources}); each rule says why it is here, and a syscall no rule names fails with EPERM"
    )
    if options.runtimes:
        yield (
            f"the calls {' and '.join(options.runtimes)} {'make' if len(options.runtimes) > 1 else 'makes'} between "
            "loading this filter and the exec are allowed as the runtime's; those made only without "
            "no_new_privileges (capset, setgroups, setuid, prctl...) are needed only where the container runs "
            "without it"
        )
    if any(profile.is_uncertain(need.evidence, options.min_runs) for need in profile.syscalls):
        yield f"syscalls marked uncertain were seen in fewer than {min(options.min_runs, runs)} of the {runs} runs"
    for unresolved in profile.unresolved:
        yield (
            f"not allowed, as libseccomp names no syscall {unresolved.nr} on {unresolved.abi} "
            f"({unresolved.reason}): {describe_evidence(unresolved.evidence, profile, options.min_runs)}"
        )
    if profile.dropped.total:
        lost = ", ".join(f"{count} {what}" for what, count in profile.dropped.nonzero().items())
        yield f"the traces are incomplete (the kernel side lost {lost}): record again before deploying this filter"
    if profile.uses_io_uring:
        yield "io_uring_setup is allowed: work submitted through io_uring never passes through this filter"


@dataclass(frozen=True, slots=True)
class _ArgumentLimits:
    rules: dict[str, tuple[SeccompRule, ...]]  # conditional rules in place of a syscall's unconditional one
    enosys: dict[str, str]  # syscalls moved to ENOSYS because seccomp cannot see their arguments
    notes: tuple[str, ...]


def _clone_limit(profile: Profile) -> int | None:
    """The CLONE_NEW* bits clone() is refused when arguments are filtered, or None where clone cannot be limited.

    clone3 then answers ENOSYS (seccomp cannot see its flags), so that the C library falls back to the limited
    clone: only where the runs created threads or processes at all, and made no time namespace with clone3,
    which has no fallback.
    """
    made_by_clone = {need.name for need in profile.namespaces if set(need.syscalls) & {"clone", "clone3"}}
    mask = sum(bit for name, bit in NAMESPACE_BITS.items() if name not in made_by_clone) & ~CLONE_NEWTIME
    if "time" in made_by_clone or not mask or not {"clone", "clone3"} & profile.syscall_names():
        return None
    return mask


def _argument_limits(
    profile: Profile, allowed: Mapping[str, str], clone_limit: int | None, min_runs: int
) -> _ArgumentLimits:
    """socket() limited to the families seen, clone() and unshare() to the namespace types seen.

    This is what Docker's default profile does with AF_VSOCK and with the CLONE_NEW* flags of clone.
    """
    rules: dict[str, tuple[SeccompRule, ...]] = {}
    enosys: dict[str, str] = {}
    notes: list[str] = []
    # A family made only by socketpair() needs no rule: socket() filters do not limit socketpair().
    families = [family for family in profile.families if family.restricted_by_socket_filters]
    if "socket" in allowed:
        if profile.dropped.sockets:
            notes.append("socket() is not limited: some socket calls were not recorded, so families may be missing")
        elif not families:
            notes.append("socket() is not limited: the traces recorded no family made by socket()")
        else:
            rules["socket"] = tuple(
                SeccompRule(
                    ("socket",),
                    ALLOW,
                    args=(ArgCondition(0, "SCMP_CMP_EQ", family.number),),
                    comment=visible(f"{family.name}: {describe_evidence(family.evidence, profile, min_runs)}"),
                )
                for family in families
            )
    if "socketcall" in allowed:
        notes.append("socketcall (32-bit x86) passes socket()'s arguments in memory: its families cannot be limited")
    if any(need.name == "time" and set(need.syscalls) & {"clone", "clone3"} for need in profile.namespaces):
        notes.append("clone is not limited: a time namespace was made with clone3, which has no fallback for it")
    if clone_limit and "clone" in allowed:
        rules["clone"] = (_namespace_rule("clone", clone_limit, allowed["clone"]),)
        seen = f"seen ({allowed['clone3']}), but" if "clone3" in profile.syscall_names() else "not seen;"
        enosys["clone3"] = (
            f"{seen} clone3 passes its flags in memory, where seccomp cannot see them: ENOSYS makes the C library "
            "fall back to clone, whose namespace flags are limited"
        )
    made_by_unshare = {need.name for need in profile.namespaces if "unshare" in need.syscalls}
    unshare_mask = sum(bit for name, bit in NAMESPACE_BITS.items() if name not in made_by_unshare)
    if "unshare" in allowed and unshare_mask:
        rules["unshare"] = (_namespace_rule("unshare", unshare_mask, allowed["unshare"]),)
    if "setns" in allowed:
        notes.append("setns is not limited: setns(fd, 0) joins a namespace of any type")
    return _ArgumentLimits(rules, enosys, tuple(notes))


def _namespace_rule(syscall: str, refused_mask: int, comment: str) -> SeccompRule:
    refused = [name for bit, name in sorted(abi.NAMESPACE_FLAGS.items()) if bit & refused_mask]
    return SeccompRule(
        (syscall,),
        ALLOW,
        args=(ArgCondition(0, "SCMP_CMP_MASKED_EQ", refused_mask, 0),),
        comment=visible(f"only without {'|'.join(refused)} (namespace types not seen): {comment}"),
    )
