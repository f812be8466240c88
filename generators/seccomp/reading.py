"""What a seccomp document means to runc, crun and libseccomp: its keys, rules, comparisons, and each decision.

The keys each dialect takes, the rules and argument comparisons, and the decision per syscall name that a
Policy is made of.
"""

import errno
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Place,
    Policy,
    PolicyFormat,
    PolicyPart,
    SyscallFilter,
)
from generators.seccomp.spec import (
    CLONE_NEWTIME,
    DOCKER_DEFAULT_CAPABILITIES,
    ERRNO,
    NAMESPACE_BITS,
    RUNNING_ACTIONS,
    UINT64_MAX,
    ArgCondition,
)
from profiler import syscalls


class Dialect(Enum):
    """Which keys a document may hold: the OCI file Docker and the runtimes read, or an SPO SeccompProfile spec."""

    OCI = "oci"
    SPO = "spo"


KNOWN_KEYS: dict[tuple[Dialect, str], frozenset[str]] = {
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


IGNORED_BY = {
    Dialect.OCI: "docker, podman, containerd and CRI-O ignore keys they do not know, so it has no effect",
    Dialect.SPO: "the API server rejects unknown fields (kubectl's default strict validation) or drops them",
}


@dataclass(frozen=True, slots=True)
class SeccompReading:
    """What a seccomp document lets through, as the parts of a Policy."""

    syscalls: SyscallFilter
    architectures: frozenset[str]
    address_families: NameSet
    namespaces: NameSet
    findings: tuple[LintFinding, ...]
    base_profile: str | None = None  # SPO's baseProfileName
    places: tuple[tuple[PolicyPart, tuple[Place, ...]], ...] = ()  # the lines that set each part

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
            places=self.places,
        )


@dataclass(frozen=True, slots=True)
class ReadRule:
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


def finding_order(finding: LintFinding) -> tuple[int, str]:
    return (finding.line or 0, finding.message)


def refusal_of(action: str, errno_ret: int | None) -> str | None:
    """What a refused syscall returns: its errno (TRACE with no tracer: ENOSYS), None when the process dies."""
    if action == "SCMP_ACT_TRACE":
        return "ENOSYS"
    return _errno_name(errno_ret) if action == ERRNO else None


class Decider:
    """libseccomp's choice among the rules of a syscall: the first unconditional rule, else a matching one.

    Whether some call runs is answered by trying argument values on each side of every comparison the rules
    make (at most MAX_TRIED combinations), so that rules whose conditions together cover every value count.
    """

    MAX_TRIED = 4096

    def __init__(self, default_action: str, default_errno: int | None, by_name: Mapping[str, list[ReadRule]]):
        self.default = (default_action, default_errno)
        self.by_name = by_name

    def _unconditional(self, name: str) -> ReadRule | None:
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


def namespace_set(decide: Decider) -> NameSet:
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
    return name_set(allowed, tuple(NAMESPACE_BITS))


def name_set(allowed: set[str], universe: Sequence[str]) -> NameSet:
    """An allow-list, or a deny-list when that is shorter, or UNRESTRICTED when everything is allowed."""
    refused = frozenset(universe) - allowed
    if not refused:
        return UNRESTRICTED
    return (
        NameSet(ListMode.DENY, refused) if len(refused) < len(allowed) else NameSet(ListMode.ALLOW, frozenset(allowed))
    )


def json_type(value: object) -> str:
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
