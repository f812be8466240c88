"""The model of a comparison: the Needs of a profile, and what a Comparison and a Drift found among them.

Every item is a Need of one ItemKind; a Comparison holds what is missing, in excess, advised and fixed, and a
Drift what one profile started and stopped needing.

    needs(profile)   every item a profile needs, with the evidence of each
"""

from dataclasses import dataclass
from enum import StrEnum

from generators.danger import (
    Rating,
)
from generators.interface import Override, Policy
from generators.profile import CapabilityPath, Evidence, Profile, merge_evidence
from profiler.trace import CheckClass


class ItemKind(StrEnum):
    """What an item is; the order is the order of report sections."""

    SYSCALL = "syscall"
    CAPABILITY = "capability"  # in the bounding set
    AMBIENT = "ambient_capability"  # raised for a non-root user
    FAMILY = "family"
    NAMESPACE = "namespace"
    ARCHITECTURE = "architecture"  # a syscall ABI (x86_64, and x86 for 32-bit programs)
    SETTING = "setting"  # a sandboxing setting (ProtectSystem=strict), named with its line

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
            case ItemKind.SETTING:
                return "setting"


KIND_ORDER = {kind: index for index, kind in enumerate(ItemKind)}


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
    return tuple(sorted(found, key=need_order))


def need_order(need: Need) -> tuple[int, str]:
    return (KIND_ORDER[need.kind], need.name)
