"""OCI/Docker seccomp JSON: the filter built from a profile, rendered with its evidence, and read back as a Policy.

    seccomp_spec(profile, options)   SeccompSpec: the rules every seccomp format writes (oci here, k8s too)
    OciFormat.render                 the JSON that docker, podman, containerd, CRI-O and runc load
    read_seccomp_spec(...)           a seccomp document read with the consumers' semantics (oci here, k8s too)
    OciFormat.read / .parse          a deployed OCI profile as a Policy, with lint findings

The format is the runtime-spec's `linux.seccomp` object (config-linux.md) and Docker's superset of it
(moby profiles/seccomp: `comment`, `includes`, `excludes`, `archMap`, the old `name`). Consumers decode it with
Go's encoding/json, which ignores unknown keys, and hand it to libseccomp through runc or crun, which skip
rules whose action is the default one and names libseccomp does not know (runc also splits a rule that
compares one argument twice into one rule per comparison). libseccomp keeps the first unconditional rule of
a syscall, and an unconditional rule overrides conditional ones.
"""

import difflib
import errno
import functools
import itertools
import json
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from generators.correction import Correction, Corrector
from generators.diff import Comparison
from generators.evidence_text import describe_evidence
from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Policy,
    PolicyFormat,
    PolicyParseError,
    PolicyReader,
    Renderer,
    RenderOptions,
    SyscallFilter,
)
from generators.policy_names import check_profile_names
from generators.profile import NAMESPACE_TYPES, Profile
from generators.seccomp_correction import granted_capabilities, seccomp_changes
from generators.syscall_plan import plan_syscalls
from profiler import abi, syscalls
from profiler.escaping import json_dumps, visible
from profiler.trace import read_input

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
# libseccomp's architecture names, which the spec's SCMP_ARCH_* constants spell in upper case.
ARCHITECTURES = (
    "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64", "mipsel64n32",
    "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64", "riscv64",
)  # fmt: skip
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


# --- the filter built from a profile ---------------------------------------------------------------------------------


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


# --- reading a seccomp document --------------------------------------------------------------------------------------

JsonPath = tuple[str | int, ...]


class Dialect(Enum):
    """Which keys a document may hold: the OCI file Docker and the runtimes read, or an SPO SeccompProfile spec."""

    OCI = "oci"
    SPO = "spo"


_KNOWN_KEYS: dict[tuple[Dialect, str], frozenset[str]] = {
    (Dialect.OCI, "top"): frozenset(
        {"comment", "defaultAction", "defaultErrnoRet", "architectures", "archMap", "flags", "listenerPath",
         "listenerMetadata", "syscalls"}
    ),
    (Dialect.SPO, "top"): frozenset(
        {"defaultAction", "architectures", "flags", "listenerPath", "listenerMetadata", "syscalls",
         "baseProfileName", "disabled"}
    ),
    (Dialect.OCI, "rule"): frozenset(
        {"names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"}
    ),
    (Dialect.SPO, "rule"): frozenset({"names", "action", "errnoRet", "args"}),
    (Dialect.OCI, "arg"): frozenset({"index", "value", "valueTwo", "op"}),
    (Dialect.SPO, "arg"): frozenset({"index", "value", "valueTwo", "op"}),
    (Dialect.OCI, "condition"): frozenset({"caps", "arches", "minKernel"}),
    (Dialect.OCI, "archMap"): frozenset({"architecture", "subArchitectures"}),
}  # fmt: skip
_IGNORED_BY = {
    Dialect.OCI: "docker, podman, containerd and CRI-O ignore keys they do not know, so it has no effect",
    Dialect.SPO: "the API server rejects unknown fields (kubectl's default strict validation) or drops them",
}


def render_path(path: JsonPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the top level"


@dataclass(frozen=True, slots=True)
class SeccompReading:
    """What a seccomp document lets through, as the parts of a Policy."""

    syscalls: SyscallFilter
    architectures: frozenset[str]
    address_families: NameSet
    namespaces: NameSet
    findings: tuple[LintFinding, ...]
    base_profile: str | None = None  # SPO's baseProfileName

    def policy(self, source: str, policy_format: PolicyFormat, findings: Iterable[LintFinding] = ()) -> Policy:
        """The Policy of a file that holds only a seccomp filter: capabilities and the user are not its concern."""
        return Policy(
            source=source,
            format=policy_format,
            syscalls=self.syscalls,
            architectures=self.architectures,
            capability_bounding=UNRESTRICTED,
            ambient_capabilities=frozenset(),
            address_families=self.address_families,
            namespaces=self.namespaces,
            no_new_privileges=None,
            user=None,
            findings=tuple(sorted((*self.findings, *findings), key=finding_order)),
            base_profile=self.base_profile,
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    """A rule as the runtime hands it to libseccomp, for one syscall."""

    action: str
    errno_ret: int | None  # for ERRNO and TRACE
    conditions: tuple[ArgCondition, ...]
    line: int | None

    @property
    def runs(self) -> bool:
        return self.action in RUNNING_ACTIONS

    def matches(self, values: Mapping[int, int]) -> bool:
        """Whether a call with these argument values (0 where not given) meets every condition."""
        return all(_compare(condition, values.get(condition.index, 0)) for condition in self.conditions)


def _compare(condition: ArgCondition, value: int) -> bool:
    match condition.op:
        case "SCMP_CMP_NE":
            return value != condition.value
        case "SCMP_CMP_LT":
            return value < condition.value
        case "SCMP_CMP_LE":
            return value <= condition.value
        case "SCMP_CMP_EQ":
            return value == condition.value
        case "SCMP_CMP_GE":
            return value >= condition.value
        case "SCMP_CMP_GT":
            return value > condition.value
        case _:
            return (value & condition.value) == condition.value_two


def telling_values(conditions: Sequence[ArgCondition]) -> set[int]:
    """Values of one argument that fall, as far as can be, on each side of each comparison and mask the rules make.

    Comparisons cut the numbers at their value; a value just below, at and above each cut lands in every region
    they make. For each mask, the nearest value at or above and at or below each of those that has the bits the
    mask wants, and the nearest that has one of them flipped, are tried too: setting the bits in place could move
    a value across a cut (3 with bit 0 cleared is 2, the wrong side of `<= 2`), and miss a region.
    """
    values = {0, UINT64_MAX}
    for condition in conditions:
        if condition.op != "SCMP_CMP_MASKED_EQ":
            values |= {condition.value - 1, condition.value, condition.value + 1}
    values = {value for value in values if 0 <= value <= UINT64_MAX}
    for condition in conditions:
        if condition.op == "SCMP_CMP_MASKED_EQ":
            mask = condition.value & UINT64_MAX
            wanted = condition.value_two & mask
            lowest = mask & -mask
            patterns = (wanted, wanted ^ lowest) if lowest else (wanted,)
            values |= {
                found
                for value in values
                for pattern in patterns
                for found in (_at_least_with(value, mask, pattern), _at_most_with(value, mask, pattern))
                if found is not None
            }
    return values


def _at_least_with(value: int, mask: int, pattern: int) -> int | None:
    """The smallest 64-bit number at or above value whose bits under mask are pattern, or None."""
    if value & mask == pattern:
        return value
    # The answer first exceeds value at a bit where value has 0: the lowest such bit that the pattern allows, with
    # the bits above it as in value (their masked ones already as the pattern wants) and the lowest bits below.
    for bit in range(64):
        above = ~((2 << bit) - 1) & UINT64_MAX
        settable = not value >> bit & 1 and (pattern >> bit & 1 or not mask >> bit & 1)
        if settable and value & mask & above == pattern & above:
            return (value & above) | 1 << bit | (pattern & ((1 << bit) - 1))
    return None


def _at_most_with(value: int, mask: int, pattern: int) -> int | None:
    """The largest 64-bit number at or below value whose bits under mask are pattern, or None."""
    found = _at_least_with(UINT64_MAX - value, mask, ~pattern & mask)
    return None if found is None else UINT64_MAX - found


def _errno_name(number: int | None) -> str | None:
    return None if number is None else errno.errorcode.get(number, str(number))


@dataclass(frozen=True, slots=True)
class IncludeContext:
    """What Docker evaluates includes/excludes against: the container's capabilities, the host's ABI and kernel."""

    capabilities: frozenset[str]
    native_abi: str
    kernel: tuple[int, int]

    @classmethod
    def docker_defaults(cls) -> "IncludeContext":
        """Docker's default capabilities on this host, as `docker run` without --cap-add gives them."""
        numbers = re.match(r"(\d+)\.(\d+)", os.uname().release)
        kernel = (int(numbers.group(1)), int(numbers.group(2))) if numbers else (0, 0)
        return cls(DOCKER_DEFAULT_CAPABILITIES, syscalls.native_abi(), kernel)


class _SeccompReader:
    """One read of one document: validation errors raise, lint findings accumulate."""

    def __init__(
        self,
        source: str,
        lines: Mapping[JsonPath, int],
        at: JsonPath,
        dialect: Dialect,
        context: IncludeContext,
    ):
        self.source, self.lines, self.at, self.dialect, self.context = source, lines, at, dialect, context
        self.findings: list[LintFinding] = []
        self.first_conditional: JsonPath | None = None  # the first rule with includes or excludes

    # -- reporting --

    def line(self, path: JsonPath) -> int | None:
        while path:
            line = self.lines.get(self.at + path)
            if line is not None:
                return line
            path = path[:-1]
        return self.lines.get(self.at)

    def fail(self, path: JsonPath, message: str) -> PolicyParseError:
        line = self.line(path)
        where = f"{self.source}:{line}" if line else self.source
        return PolicyParseError(f"{where}: {render_path(self.at + path)}: {message}")

    def lint(self, path: JsonPath, message: str) -> None:
        self.findings.append(LintFinding(self.source, self.line(path), f"{render_path(self.at + path)}: {message}"))

    # -- validation --

    def mapping(self, value: object, path: JsonPath, kind: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, not {_json_type(value)}")
        known = _KNOWN_KEYS[(self.dialect, kind)]
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"has the key {key!r}, which is not a string")
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.lint((*path, key), f"unknown key {key!r}{hint}: {_IGNORED_BY[self.dialect]}")
        return value

    def choice(self, value: object, path: JsonPath, allowed: Sequence[str], what: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(path, f"{value!r} is not a seccomp {what} ({', '.join(allowed)}); runtimes refuse it")
        return value

    def strings(self, value: object, path: JsonPath) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(path, "must be a list of strings")
        return value

    def unsigned(self, value: object, path: JsonPath, maximum: int = UINT64_MAX) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            raise self.fail(path, f"must be an integer from 0 to {maximum}, not {value!r}")
        return value

    # -- the document --

    def read(self, document: object) -> SeccompReading:
        top = self.mapping(document, (), "top")
        if "defaultAction" not in top:
            raise self.fail((), "no defaultAction: runtimes refuse the profile (Docker reads {} as no filter at all)")
        default_action = self.choice(top["defaultAction"], ("defaultAction",), ACTIONS, "action")
        if default_action == "SCMP_ACT_NOTIFY":
            raise self.fail(("defaultAction",), "SCMP_ACT_NOTIFY as the default action: runc refuses the profile")
        default_errno = self.errno_ret(top, "defaultErrnoRet", default_action, ())
        self.check_top(top)
        architectures = self.architectures(top)
        raw_rules = top.get("syscalls", [])
        if not isinstance(raw_rules, list):
            raise self.fail(("syscalls",), f"must be a list of rules, not {_json_type(raw_rules)}")
        by_name: dict[str, list[_Rule]] = {}
        for index, raw in enumerate(raw_rules):
            for name, rule in self.rule(raw, ("syscalls", index), default_action, default_errno):
                by_name.setdefault(name, []).append(rule)
        decide = _Decider(default_action, default_errno, by_name)
        if self.first_conditional is not None:
            self.lint_includes(self.first_conditional)
        self.lint_conflicts(by_name)
        syscall_filter = self.syscall_filter(decide, default_action, default_errno)
        families = self.families(decide, architectures)
        return SeccompReading(
            syscall_filter,
            architectures,
            families,
            _namespaces(decide),
            tuple(sorted(self.findings, key=finding_order)),
            str(top["baseProfileName"]) if top.get("baseProfileName") else None,
        )

    def errno_ret(self, holder: Mapping[str, object], key: str, action: str, path: JsonPath) -> int | None:
        if key not in holder:
            return EPERM if action in ERRNO_ACTIONS else None
        if action not in ERRNO_ACTIONS:
            raise self.fail((*path, key), f"{action} takes no errno; the runtime-spec requires runtimes to fail")
        number = self.unsigned(holder[key], (*path, key))
        if number == 0:
            self.lint((*path, key), "errno 0 makes the syscall return 0 (success) without running it")
        return number

    def check_top(self, top: Mapping[str, object]) -> None:
        for flag_index, flag in enumerate(self.strings(top.get("flags", []), ("flags",))):
            self.choice(flag, ("flags", flag_index), FILTER_FLAGS, "filter flag")
        for key in ("listenerPath", "listenerMetadata", "baseProfileName"):
            if key in top and not isinstance(top[key], str):
                raise self.fail((key,), "must be a string")
        if "comment" in top and not (
            isinstance(top["comment"], str)
            or (isinstance(top["comment"], list) and all(isinstance(each, str) for each in top["comment"]))
        ):
            self.lint(("comment",), "a comment should be a string or a list of strings: runtimes ignore it anyway")
        if top.get("baseProfileName"):
            self.lint(
                ("baseProfileName",),
                f"the Security Profiles Operator adds the rules of {top['baseProfileName']!r}, which this file "
                "does not show: profiler reads this profile's own rules only, and leaves the runtime's calls to it",
            )
        if "disabled" in top and not isinstance(top["disabled"], bool):
            raise self.fail(("disabled",), "must be true or false")
        if top.get("disabled") is True:
            self.lint(("disabled",), "the Security Profiles Operator does not install a disabled profile")

    def architectures(self, top: Mapping[str, object]) -> frozenset[str]:
        """The ABIs the filter covers: the native one (runtimes never remove it) and those it lists."""
        known = [scmp_arch(name) for name in ARCHITECTURES]
        listed = {
            self.choice(name, ("architectures", index), [*known, "SCMP_ARCH_NATIVE"], "architecture")
            for index, name in enumerate(self.strings(top.get("architectures", []), ("architectures",)))
        }
        if "archMap" in top:
            if "architectures" in top:
                raise self.fail(("archMap",), "architectures and archMap together: Docker refuses the profile")
            listed |= self.arch_map(top["archMap"], known)
        native = self.context.native_abi
        return frozenset({native} | {native if name == "SCMP_ARCH_NATIVE" else name[10:].lower() for name in listed})

    def arch_map(self, value: object, known: list[str]) -> set[str]:
        if not isinstance(value, list):
            raise self.fail(("archMap",), f"must be a list, not {_json_type(value)}")
        chosen: set[str] = set()
        for index, raw in enumerate(value):
            entry = self.mapping(raw, ("archMap", index), "archMap")
            main = self.choice(entry.get("architecture"), ("archMap", index, "architecture"), known, "architecture")
            subs = entry.get("subArchitectures") or []
            subs = [
                self.choice(sub, ("archMap", index, "subArchitectures", sub_index), known, "architecture")
                for sub_index, sub in enumerate(self.strings(subs, ("archMap", index, "subArchitectures")))
            ]
            if main == scmp_arch(self.context.native_abi):
                chosen |= {main, *subs}
        self.lint(
            ("archMap",),
            f"Docker, podman and CRI-O use the entry of the host's architecture (read here for "
            f"{self.context.native_abi}); containerd ignores archMap and filters the native ABI only",
        )
        return chosen

    def rule(
        self, raw: object, path: JsonPath, default_action: str, default_errno: int | None
    ) -> list[tuple[str, _Rule]]:
        entry = self.mapping(raw, path, "rule")
        if "action" not in entry:
            raise self.fail(path, "a rule without an action: runtimes refuse the profile")
        action = self.choice(entry["action"], (*path, "action"), ACTIONS, "action")
        errno_ret = self.errno_ret(entry, "errnoRet", action, path)
        names = self.strings(entry.get("names", []), (*path, "names"))
        if "name" in entry:
            if "names" in entry:
                raise self.fail((*path, "name"), "name and names together: Docker refuses the profile")
            if not isinstance(entry["name"], str):
                raise self.fail((*path, "name"), "must be a string")
            names = [entry["name"]]
            self.lint((*path, "name"), "only Docker reads the old name key; containerd ignores it: write names")
        if not names:
            self.lint(path, "a rule without names does nothing")
        if "comment" in entry and not isinstance(entry["comment"], str):
            raise self.fail((*path, "comment"), "must be a string: Docker refuses the profile otherwise")
        raw_args = entry.get("args") or []
        if not isinstance(raw_args, list):
            raise self.fail((*path, "args"), f"must be a list, not {_json_type(raw_args)}")
        conditions = tuple(self.condition(raw_arg, (*path, "args", index)) for index, raw_arg in enumerate(raw_args))
        if not self.included(entry, path):
            return []
        for index, name in enumerate(names):
            if not _known_syscall(name):
                self.lint((*path, "names", index), f"libseccomp {syscalls.libseccomp_version()} knows no syscall "
                          f"{name!r} on any architecture: runtimes skip it")  # fmt: skip
        if (action, errno_ret) == (default_action, default_errno):
            return []  # runc, crun and youki skip a rule that does what the default does
        if action == "SCMP_ACT_NOTIFY":
            if "write" in names:
                raise self.fail((*path, "names"), "SCMP_ACT_NOTIFY on write: runc refuses the profile")
            self.lint(path, "SCMP_ACT_NOTIFY leaves the decision to the agent at listenerPath: read as allowed")
        if action == "SCMP_ACT_TRACE":
            self.lint(path, "SCMP_ACT_TRACE fails with ENOSYS unless a ptrace tracer handles it: read as refused")
        indexes = [condition.index for condition in conditions]
        if len(set(indexes)) < len(indexes):
            self.lint(
                (*path, "args"),
                "compares an argument more than once: runc then makes each comparison a rule of its own, so the "
                "call matches when any one holds (or), not all (and)",
            )
            rules = [_Rule(action, errno_ret, (condition,), self.line(path)) for condition in conditions]
        else:
            rules = [_Rule(action, errno_ret, conditions, self.line(path))]
        return [(name, rule) for name in names if _known_syscall(name) for rule in rules]

    def condition(self, raw: object, path: JsonPath) -> ArgCondition:
        entry = self.mapping(raw, path, "arg")
        for key in ("index", "value", "op"):
            if key not in entry:
                raise self.fail(path, f"an argument comparison without {key}: runtimes refuse the profile")
        return ArgCondition(
            self.unsigned(entry["index"], (*path, "index"), MAX_ARGUMENT_INDEX),
            self.choice(entry["op"], (*path, "op"), OPERATORS, "comparison"),
            self.unsigned(entry["value"], (*path, "value")),
            self.unsigned(entry.get("valueTwo", 0), (*path, "valueTwo")),
        )

    def included(self, entry: Mapping[str, object], path: JsonPath) -> bool:
        """Docker's includes/excludes, for the capabilities, ABI and kernel of the context."""
        verdict = True
        for key in ("includes", "excludes"):
            if key not in entry:
                continue
            self.first_conditional = self.first_conditional or path
            condition = self.mapping(entry[key], (*path, key), "condition")
            caps = set(self.strings(condition.get("caps", []), (*path, key, "caps")))
            arches = set(self.strings(condition.get("arches", []), (*path, key, "arches")))
            kernel = condition.get("minKernel")
            at_least = True
            if kernel is not None:
                numbers = re.fullmatch(r"(\d+)\.(\d+)", kernel) if isinstance(kernel, str) else None
                if numbers is None:
                    raise self.fail((*path, key, "minKernel"), f"{kernel!r} is not a kernel version such as 5.8")
                at_least = self.context.kernel >= (int(numbers.group(1)), int(numbers.group(2)))
            arch = DOCKER_ARCH_NAMES.get(self.context.native_abi, self.context.native_abi)
            if key == "includes":
                verdict &= (
                    (not arches or arch in arches)
                    and caps <= self.context.capabilities
                    and (kernel is None or at_least)
                )
            else:
                verdict &= not (arch in arches or caps & self.context.capabilities or (kernel is not None and at_least))
        return verdict

    def lint_includes(self, path: JsonPath) -> None:
        context = self.context
        capabilities = (
            "Docker's default capabilities"
            if context.capabilities == DOCKER_DEFAULT_CAPABILITIES
            else ", ".join(sorted(context.capabilities)) or "no capability"
        )
        self.lint(
            path,
            "includes/excludes: Docker, podman and CRI-O keep or drop these rules by the container's capabilities "
            f"and the host's ABI and kernel (read here for {capabilities}, {context.native_abi}, Linux "
            f"{context.kernel[0]}.{context.kernel[1]}); containerd ignores both keys and applies every such rule",
        )

    def lint_conflicts(self, by_name: Mapping[str, list[_Rule]]) -> None:
        for name, rules in sorted(by_name.items()):
            unconditional = [rule for rule in rules if not rule.conditions]
            if not unconditional:
                actions = sorted({rule.action + (f"({rule.errno_ret})" if rule.errno_ret else "") for rule in rules})
                if len(actions) > 1:
                    self.findings.append(
                        LintFinding(
                            self.source,
                            rules[0].line,
                            f"{name}: conditional rules with different actions ({', '.join(actions)}): where a call "
                            "matches more than one, libseccomp's choice depends on the order it gives their "
                            "comparisons, not on the file's; profiler reads the first in the file",
                        )
                    )
                continue
            first = unconditional[0]
            for later in rules:
                if later is first or (later.action, later.errno_ret) == (first.action, first.errno_ret):
                    continue
                kept = f"{first.action}" + (f" (line {first.line})" if first.line else "")
                shadowed = "its conditions are never checked" if later.conditions else "it is ignored"
                self.findings.append(
                    LintFinding(
                        self.source,
                        later.line,
                        f"{name}: {later.action} has no effect: libseccomp keeps the first unconditional rule of a "
                        f"syscall, {kept}, so {shadowed}",
                    )
                )

    def syscall_filter(self, decide: "_Decider", default_action: str, default_errno: int | None) -> SyscallFilter:
        names = sorted(decide.by_name)
        allowed = frozenset(name for name in names if decide.runs(name))
        refused = [name for name in names if name not in allowed]
        baseline: str | None
        if default_action in RUNNING_ACTIONS:
            # A deny-list: the runtime-spec's default errno is EPERM, and each refused syscall says its own.
            rules, baseline = NameSet(ListMode.DENY, frozenset(refused)), "EPERM"
        else:
            rules, baseline = NameSet(ListMode.ALLOW, allowed), _refusal(default_action, default_errno)
        errnos = tuple((name, refusal) for name in refused if (refusal := _refusal(*decide.refusal(name))) != baseline)
        return SyscallFilter(rules, baseline, errnos)

    def families(self, decide: "_Decider", architectures: frozenset[str]) -> NameSet:
        numbers = range(1, len(abi.ADDRESS_FAMILIES))
        allowed = {abi.ADDRESS_FAMILIES[number] for number in numbers if decide.runs("socket", {0: number})}
        limited = len(allowed) < len(numbers)
        if limited and "x86" in architectures and decide.runs("socketcall"):
            self.lint(
                ("syscalls",),
                "socketcall is allowed for 32-bit x86 programs, and passes socket()'s arguments in memory where "
                "seccomp cannot see them: the socket family limits do not hold for those programs",
            )
            return UNRESTRICTED
        return _name_set(allowed, abi.ADDRESS_FAMILIES[1:])


def finding_order(finding: LintFinding) -> tuple[int, str]:
    return (finding.line or 0, finding.message)


def _refusal(action: str, errno_ret: int | None) -> str | None:
    """What a refused syscall returns: its errno (TRACE with no tracer: ENOSYS), None when the process dies."""
    if action == "SCMP_ACT_TRACE":
        return "ENOSYS"
    return _errno_name(errno_ret) if action == ERRNO else None


class _Decider:
    """libseccomp's choice among the rules of a syscall: the first unconditional rule, else a matching one.

    Whether some call runs is answered by trying argument values on each side of every comparison the rules
    make (at most MAX_TRIED combinations), so that rules whose conditions together cover every value count.
    """

    MAX_TRIED = 4096

    def __init__(self, default_action: str, default_errno: int | None, by_name: Mapping[str, list[_Rule]]):
        self.default = (default_action, default_errno)
        self.by_name = by_name

    def _unconditional(self, name: str) -> _Rule | None:
        return next((rule for rule in self.by_name.get(name, ()) if not rule.conditions), None)

    def _verdict(self, name: str, values: Mapping[int, int]) -> tuple[str, int | None]:
        rule = self._unconditional(name) or next(
            (rule for rule in self.by_name.get(name, ()) if rule.matches(values)), None
        )
        return (rule.action, rule.errno_ret) if rule is not None else self.default

    def _verdicts(self, name: str, fixed: Mapping[int, int]) -> Iterator[tuple[str, int | None]]:
        """The action for each combination of telling argument values, the fixed ones given."""
        by_index: dict[int, list[ArgCondition]] = {}
        for rule in self.by_name.get(name, ()):
            for condition in rule.conditions:
                if condition.index not in fixed:
                    by_index.setdefault(condition.index, []).append(condition)
        tried = {index: telling_values(conditions) for index, conditions in by_index.items()}
        indexes = sorted(tried)
        combinations = itertools.product(*(sorted(tried[index]) for index in indexes))
        for values in itertools.islice(combinations, self.MAX_TRIED):
            yield self._verdict(name, {**fixed, **dict(zip(indexes, values, strict=True))})

    def runs(self, name: str, fixed: Mapping[int, int] | None = None) -> bool:
        """Whether some call runs whose arguments have the values fixed, the others chosen to that end."""
        return any(action in RUNNING_ACTIONS for action, _ in self._verdicts(name, fixed or {}))

    def refusal(self, name: str) -> tuple[str, int | None]:
        """The action and errno that refuse an unreachable syscall (with arguments 0, where rules tell them apart)."""
        return next(self._verdicts(name, {}))


def _namespaces(decide: _Decider) -> NameSet:
    """The namespace types a process can create or join: clone3 hides its flags, so it allows every type."""
    allowed = {
        name
        for name, bit in NAMESPACE_BITS.items()
        if decide.runs("clone3")
        or (bit != CLONE_NEWTIME and decide.runs("clone", {0: bit}))
        or decide.runs("unshare", {0: bit})
        or decide.runs("setns", {1: bit})
        or decide.runs("setns", {1: 0})
    }
    return _name_set(allowed, tuple(NAMESPACE_BITS))


def _name_set(allowed: set[str], universe: Sequence[str]) -> NameSet:
    """An allow-list, or a deny-list when that is shorter, or UNRESTRICTED when everything is allowed."""
    refused = frozenset(universe) - allowed
    if not refused:
        return UNRESTRICTED
    return (
        NameSet(ListMode.DENY, refused) if len(refused) < len(allowed) else NameSet(ListMode.ALLOW, frozenset(allowed))
    )


@functools.lru_cache(maxsize=1 << 12)  # bounded: the names come from untrusted profiles
def _known_syscall(name: str) -> bool:
    return any(syscalls.syscall_number(arch, name) is not None for arch in ARCHITECTURES)


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "true or false"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case _:
            return "an object"


def read_seccomp_spec(
    document: object,
    *,
    source: str,
    lines: Mapping[JsonPath, int],
    at: JsonPath = (),
    dialect: Dialect = Dialect.OCI,
    context: IncludeContext | None = None,
) -> SeccompReading:
    """Read a seccomp document (the OCI object, or the spec of an SPO SeccompProfile found at `at`)."""
    return _SeccompReader(source, lines, at, dialect, context or IncludeContext.docker_defaults()).read(document)


# --- JSON with the line of every value -------------------------------------------------------------------------------

# A JSON token: a string (unrolled, so a long one is one linear match), punctuation, or a number or literal.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')
# A line without these, even inside strings, holds only scalars and commas.
_STRUCTURE = re.compile(r"[{}\[\]:]")


@dataclass(slots=True)
class _ObjectLines:
    line: int  # where the member or item holding the object starts
    members: dict[str, "int | _ObjectLines | _ListLines"]  # a scalar member's key line, or the nested lines


@dataclass(slots=True)
class _ListLines:
    line: int
    items: "array[int]"  # the line each item starts on: four bytes an item, however long the list
    children: "list[_ObjectLines | _ListLines | None] | None" = None  # per item, where any item is a container


_Lines = _ObjectLines | _ListLines


class _LineTree(Mapping[JsonPath, int]):
    """The line of each path of a document, held as a tree shaped like it rather than as a key per path."""

    def __init__(self, root: _Lines | int | None):
        self.root = root

    def __getitem__(self, path: JsonPath) -> int:
        node: _Lines | int | None = self.root
        for part in path:
            if isinstance(node, _ObjectLines) and isinstance(part, str) and part in node.members:
                node = node.members[part]
            elif isinstance(node, _ListLines) and isinstance(part, int) and 0 <= part < len(node.items):
                child = node.children[part] if node.children is not None else None
                node = child if child is not None else node.items[part]
            else:
                raise KeyError(path)
        if node is None:
            raise KeyError(path)
        return node if isinstance(node, int) else node.line

    def __iter__(self) -> Iterator[JsonPath]:
        pending: list[tuple[JsonPath, _Lines | int | None]] = [((), self.root)]
        while pending:
            path, node = pending.pop()
            if node is None:
                continue
            yield path
            if isinstance(node, _ObjectLines):
                pending += [((*path, key), member) for key, member in node.members.items()]
            elif isinstance(node, _ListLines):
                children = node.children or [None] * len(node.items)
                for index, (line, child) in enumerate(zip(node.items, children, strict=True)):
                    pending.append(((*path, index), child or line))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class JsonLines:
    """Where each key and array item of a JSON text starts, and the keys given twice in one object."""

    lines: Mapping[JsonPath, int]
    repeated: tuple[tuple[JsonPath, int], ...]  # (path, line of the later key): Go and Python keep its value


def json_value_lines(text: str) -> JsonLines:
    """The lines of a JSON text that json.loads accepted, in one pass over its tokens with a stack of the open
    containers: linear time, and memory for a tree of lines rather than for the tokens or every path.

    JSON strings hold no raw line break, so the text is read line by line, each line's tokens at once; a line of
    a list that holds only scalars (the names of a pretty-printed profile) is counted, not walked. A key given
    twice keeps the line of its first occurrence and the nested lines of its later value, which is the one Go
    and Python keep.
    """
    root: _Lines | int | None = None
    stack: list[_Lines] = []
    parts: list[str | int] = []  # the path of the innermost open container
    repeated: list[tuple[JsonPath, int]] = []
    top: _Lines | None = None
    key: str | None = None
    key_line = 0
    for line, physical in enumerate(text.split("\n"), start=1):
        tokens = _TOKEN.findall(physical)
        if isinstance(top, _ListLines) and not _STRUCTURE.search(physical):
            scalars = len(tokens) - tokens.count(",")
            top.items.extend([line] * scalars)
            if top.children is not None:
                top.children.extend([None] * scalars)
            continue
        for token in tokens:
            first = token[0]
            if first == "," or first == ":":
                continue
            if first == "}" or first == "]":
                stack.pop()
                top = stack[-1] if stack else None
                if stack:
                    parts.pop()
                continue
            if key is None and isinstance(top, _ObjectLines):
                key = json.loads(token) if "\\" in token else token[1:-1]
                key_line = line
                continue
            node: _Lines | None = None
            if first == "{":
                node = _ObjectLines(line, {})
            elif first == "[":
                node = _ListLines(line, array("I"))
            part: str | int
            if isinstance(top, _ObjectLines):
                assert key is not None
                earlier = top.members.get(key)
                if earlier is not None:
                    repeated.append(((*parts, key), key_line))
                    key_line = earlier if isinstance(earlier, int) else earlier.line
                if node is not None:
                    node.line = key_line
                top.members[key] = node or key_line
                part, key = key, None
            elif isinstance(top, _ListLines):
                part = len(top.items)
                top.items.append(line)
                if node is not None and top.children is None:
                    top.children = [None] * part
                if top.children is not None:
                    top.children.append(node)
            else:
                root, part = node or line, 0
            if node is not None:
                if top is not None:
                    parts.append(part)
                stack.append(node)
                top = node
    return JsonLines(_LineTree(root), tuple(repeated))


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def policy_text(content: str | bytes, source: str, what: str) -> str:
    """The text of a policy file that is not empty; binary junk or an empty file is one PolicyParseError line."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyParseError(f"{source}: not {what} (not UTF-8 text)") from None
    if not content.strip():
        raise PolicyParseError(f"{source}: empty file; give {what}")
    return content


def decode_json(content: str | bytes, source: str, what: str) -> object:
    """JSON as Go's encoding/json accepts it; anything else is one PolicyParseError line."""
    text = policy_text(content, source, what)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith(("{", "[")):
            raise PolicyParseError(f"{source}: not {what} (not JSON)") from None
        # An error at the very end is what a file cut short gives.
        truncated = ", perhaps truncated" if error.pos >= len(text.rstrip()) else ""
        raise PolicyParseError(
            f"{source}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno}){truncated}"
        ) from None
    except ValueError as error:
        raise PolicyParseError(f"{source}: not valid JSON: {error}") from None
    except RecursionError:
        raise PolicyParseError(f"{source}: not {what} (nested too deeply)") from None


# --- the format ------------------------------------------------------------------------------------------------------


class OciFormat(Renderer, PolicyReader, Corrector):
    """OCI/Docker seccomp JSON. Reading evaluates Docker's includes/excludes in `context` (default: Docker's
    default capabilities on this host's ABI and kernel)."""

    format = PolicyFormat.OCI

    def __init__(self, context: IncludeContext | None = None):
        self.context = context

    def render(self, profile: Profile, options: RenderOptions) -> str:
        return render_seccomp_json(seccomp_spec(profile, options), options.comments)

    def read(self, path: Path) -> Policy:
        return self.parse(read_input(path, "policy", PolicyParseError), str(path))

    def parse(self, text: str | bytes, source: str) -> Policy:
        """Read an OCI seccomp profile from its text; source names it in findings and errors."""
        document = decode_json(text, source, "an OCI seccomp profile")
        try:
            located = json_value_lines(text.decode() if isinstance(text, bytes) else text)
        except RecursionError:
            located = JsonLines({}, ())
        reading = read_seccomp_spec(document, source=source, lines=located.lines, context=self.context)
        repeated = [
            LintFinding(source, line, f"{render_path(path)} is given twice: runtimes keep the later value")
            for path, line in located.repeated
        ]
        return reading.policy(source, PolicyFormat.OCI, repeated)

    def correct(self, comparison: Comparison) -> Correction:
        rules, notes = seccomp_changes(comparison)
        capabilities = granted_capabilities(comparison)
        if capabilities:
            notes.append(
                f"grant {', '.join(capabilities)} in the container's capabilities "
                f"(docker run {' '.join(f'--cap-add={name}' for name in capabilities)})"
            )
        text = ",\n".join(json.dumps(rule) for rule in rules)
        return Correction(
            how=f'Add to the "syscalls" array of {comparison.policy.source}:' if rules else "Change the profile:",
            text=text + "\n" if text else "",
            language="json",
            notes=tuple(notes),
        )


def render_seccomp_json(spec: SeccompSpec, comments: bool) -> str:
    """The profile as JSON, one rule per line; without comments, the unconditional allow rules as one."""
    rules = list(spec.rules)
    if not comments:
        plain = [rule for rule in rules if rule.action == ALLOW and not rule.args]
        merged = SeccompRule(tuple(sorted(name for rule in plain for name in rule.names)), ALLOW)
        rules = ([merged] if plain else []) + [rule for rule in rules if rule not in plain]
    fields = [
        ("defaultAction", json_dumps(spec.default_action)),
        ("defaultErrnoRet", json_dumps(spec.default_errno_ret)),
        ("architectures", json_dumps(list(spec.architectures))),
        ("syscalls", _json_list([_json_rule(rule, comments) for rule in rules])),
    ]
    if comments and spec.notes:
        fields.insert(0, ("comment", _json_list([json_dumps(note) for note in spec.notes])))
    return "{\n" + ",\n".join(f'  "{key}": {value}' for key, value in fields) + "\n}\n"


def _json_list(items: list[str]) -> str:
    return "[" + ",".join(f"\n    {item}" for item in items) + "\n  ]" if items else "[]"


def _json_rule(rule: SeccompRule, comments: bool) -> str:
    data: dict[str, object] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        data["errnoRet"] = rule.errno_ret
    if rule.args:
        data["args"] = [_json_condition(condition) for condition in rule.args]
    if comments and rule.comment:
        data["comment"] = rule.comment
    return json_dumps(data, separators=(", ", ": "))


def _json_condition(condition: ArgCondition) -> dict[str, object]:
    data: dict[str, object] = {"index": condition.index, "value": condition.value}
    if condition.value_two:
        data["valueTwo"] = condition.value_two
    data["op"] = condition.op
    return data
