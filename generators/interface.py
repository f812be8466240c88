"""The one small interface every policy format implements, and the model of a deployed policy.

PolicyFormat    the formats (generators.formats maps each to its module: this one imports no format)
RenderOptions   how to render, and which options a format takes (misuse)
Renderer        renders a Profile as the text of one format
PolicyReader    reads a deployed policy of one format into a Policy
Policy          what a deployed policy allows, normalised to sets, with what a linter found in it and the lines
                that set each PolicyPart
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from generators.oci_runtimes import OCI_RUNTIMES

if TYPE_CHECKING:  # the CLI reads PolicyFormat for its options: a profile (and a trace) loads when one is used
    from generators.profile import Profile


class PolicyFormat(StrEnum):
    SYSTEMD = "systemd"  # a [Service] drop-in: SystemCallFilter=, CapabilityBoundingSet=, ...
    OCI = "oci"  # OCI/Docker seccomp JSON
    K8S = "k8s"  # a Security Profiles Operator SeccompProfile and a securityContext
    DOCKER = "docker"  # docker run flags
    JSON = "json"  # the profile itself, with its evidence, for other tools


@dataclass(frozen=True, slots=True)
class RenderOptions:
    comments: bool = True  # say, per line, where each item came from
    groups: bool = False  # systemd: write @groups where a group is wholly used
    argument_filters: bool = False  # oci: limit socket() to the families used, clone to the namespaces used
    portability: bool = True  # allow vDSO fallbacks unseen; deny libc-probed syscalls with ENOSYS
    min_runs: int = 1  # items seen in fewer runs are marked uncertain
    seccomp_file: str | None = None  # docker: the OCI profile the flags load; None: COMPONENT.seccomp.json
    namespace: str | None = None  # k8s: the SeccompProfile's namespace; None: the one kubectl applies it in
    # oci, k8s: the OCI runtimes whose own calls (between loading the filter and the exec) are allowed
    runtimes: tuple[str, ...] = OCI_RUNTIMES
    base_profile: str | None = None  # k8s: an SPO base profile holding the runtime's calls, named by baseProfileName
    # Name each run's whole command line, not only its program: arguments can hold secrets, and policies and
    # profiles get committed.
    command_lines: bool = False

    def misuse(self, policy_format: PolicyFormat) -> str | None:
        """The first option set that the format does not take, as the line that says so; None when all apply.

        Options are named as the command line names them (--groups), where people meet them.
        """
        seccomp = (PolicyFormat.OCI, PolicyFormat.K8S)
        applies: tuple[tuple[bool, str, tuple[PolicyFormat, ...]], ...] = (
            (self.groups, "--groups", (PolicyFormat.SYSTEMD,)),
            (self.argument_filters, "--args", seccomp),
            (self.seccomp_file is not None, "--seccomp-file", (PolicyFormat.DOCKER,)),
            (self.namespace is not None, "--namespace", (PolicyFormat.K8S,)),
            # an SPO base profile holds the runtime's calls: no runtime of its own
            (self.runtimes != OCI_RUNTIMES and self.base_profile is None, "--runtime", seccomp),
            (self.base_profile is not None, "--base-profile", (PolicyFormat.K8S,)),
        )
        for given, option, formats in applies:
            if given and policy_format not in formats:
                return f"{option} applies to --format {' and '.join(each.value for each in formats)}"
        return None


class Renderer(ABC):
    format: PolicyFormat

    @abstractmethod
    def render(self, profile: "Profile", options: RenderOptions) -> str:
        """The policy text; deterministic: the same profile and options give the same bytes."""


class ListMode(StrEnum):
    ALLOW = "allow"  # only the names are permitted
    DENY = "deny"  # everything but the names is permitted


@dataclass(frozen=True, slots=True)
class NameSet:
    """An allow-list or a deny-list of names (syscalls, capabilities, families, namespace types)."""

    mode: ListMode
    names: frozenset[str]

    def allows(self, name: str) -> bool:
        return (name in self.names) == (self.mode is ListMode.ALLOW)

    @property
    def unrestricted(self) -> bool:
        return self.mode is ListMode.DENY and not self.names


UNRESTRICTED = NameSet(ListMode.DENY, frozenset())


@dataclass(frozen=True, slots=True)
class SyscallFilter:
    rules: NameSet  # groups expanded: names only
    default_errno: str | None  # what a refused syscall returns (EPERM), None when it kills the process
    # per-syscall errno of refused ones where it differs from default_errno, sorted: (("clone3", "ENOSYS"),);
    # None where the filter kills the process instead
    errnos: tuple[tuple[str, str | None], ...] = ()
    # Allowed by the consumer whatever the file says (systemd's @default in an allow-list): never excess,
    # since no line can remove them.
    implied: frozenset[str] = frozenset()

    def allows(self, name: str) -> bool:
        return self.rules.allows(name)


@dataclass(frozen=True, slots=True)
class LintFinding:
    """Something in a policy file that its consumer ignores or reads differently from how it looks."""

    source: str
    line: int | None
    message: str  # what is wrong and what the consumer actually does
    # A stable name of what is wrong, for tools (SARIF's ruleId): the setting whose reading it is about, as the
    # format names it (SystemCallFilter, defaultErrnoRet), or the syntax rule broken (unknown-key). Never text
    # from the file.
    rule: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}" if self.line else f"{self.source}: {self.message}"


class PolicyPart(StrEnum):
    """The parts of a Policy that allow or refuse items, for saying which lines of the file set each."""

    SYSCALLS = "syscalls"
    ARCHITECTURES = "architectures"
    CAPABILITY_BOUNDING = "capability_bounding"
    AMBIENT_CAPABILITIES = "ambient_capabilities"
    ADDRESS_FAMILIES = "address_families"
    NAMESPACES = "namespaces"
    SANDBOX = "sandbox"  # systemd's sandboxing settings: ProtectSystem=, ReadWritePaths=, ...


@dataclass(frozen=True, slots=True)
class Place:
    """A line of a policy file (None: the file as a whole)."""

    source: str
    line: int | None


@dataclass(frozen=True, slots=True)
class Override:
    """A setting that refuses syscalls and capabilities whatever the policy's own lists say.

    systemd's ProtectClock= and its kin load a seccomp filter of their own and take capabilities out of the
    bounding set once every line is read: no SystemCallFilter= or CapabilityBoundingSet= line gives them back,
    only turning the setting off does. RestrictNamespaces= answers clone3 with ENOSYS the same way.
    """

    setting: str  # as the policy sets it: ProtectClock=yes
    undo: str  # the line that turns it off: ProtectClock=no
    source: str
    line: int
    syscalls: frozenset[str]  # refused with errno
    capabilities: frozenset[str]  # out of the bounding set
    errno: str = "EPERM"

    @property
    def where(self) -> str:
        return f"{self.setting} ({self.source}:{self.line})"


@dataclass(frozen=True, slots=True)
class SettingLine:
    """One setting of a policy file as its consumer reads it, and where: ProtectSystem=strict (unit:12)."""

    key: str
    value: str
    source: str
    line: int
    implied_by: str | None = None  # the line that turns it on where the unit has no line of its own for it

    @property
    def where(self) -> str:
        if self.implied_by:
            return f"{self.key}={self.value} (implied by {self.implied_by})"
        return f"{self.key}={self.value} ({self.source}:{self.line})"


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """The file system, device, kernel and network settings a policy sets, in systemd's names (ProtectSystem=
    strict, ReadWritePaths=/srv): the last line of each that is on, and each entry of the list settings."""

    levels: tuple[SettingLine, ...] = ()
    entries: tuple[SettingLine, ...] = ()  # one per entry, value the entry: ReadWritePaths=/srv
    # The last line of each confining setting profiler reads past without modelling it (InaccessiblePaths=,
    # BindPaths=, SupplementaryGroups=): what applies the policy names them as not applied.
    unmodeled: tuple[SettingLine, ...] = ()

    def value(self, key: str) -> str | None:
        """The setting's value, entries joined by spaces; None where the policy leaves it as the default."""
        entries = [each.value for each in self.entries if each.key == key]
        if entries:
            return " ".join(entries)
        return next((each.value for each in self.levels if each.key == key), None)

    def line(self, key: str) -> SettingLine | None:
        return next((each for each in reversed(self.levels + self.entries) if each.key == key), None)

    def entries_of(self, key: str) -> tuple[SettingLine, ...]:
        return tuple(each for each in self.entries if each.key == key)


@dataclass(frozen=True, slots=True)
class Policy:
    source: str
    format: PolicyFormat
    syscalls: SyscallFilter | None  # None: no syscall filter at all
    architectures: frozenset[str] | None  # seccomp ABIs permitted; None: any
    capability_bounding: NameSet
    ambient_capabilities: frozenset[str]
    address_families: NameSet
    namespaces: NameSet
    no_new_privileges: bool | None  # as the policy sets it
    user: str | None
    findings: tuple[LintFinding, ...] = ()
    group: str | None = None  # a unit's Group=: the user's own group where None
    overrides: tuple[Override, ...] = ()  # refusals on top of the lists above
    # The setting that turns no-new-privileges on though the policy does not set it, with where it is (systemd
    # does so for a user without CAP_SYS_ADMIN under any seccomp setting), or None.
    no_new_privileges_implied_by: str | None = None
    # A profile whose rules the consumer adds to these (SPO's baseProfileName), which this file does not show.
    base_profile: str | None = None
    # The lines that set each part, in file order (every SystemCallFilter= line of a unit and its drop-ins; the
    # defaultAction and syscalls of an OCI profile); a part no line sets is absent.
    places: tuple[tuple[PolicyPart, tuple[Place, ...]], ...] = ()
    sandbox: SandboxSettings = SandboxSettings()
    # A unit's DynamicUser=yes, where it is on: systemd allocates the user (User=, else the unit's name) at start
    # where no static user has that name; the sandbox it implies is in sandbox, whoever the user is.
    dynamic_user: SettingLine | None = None

    def places_of(self, part: PolicyPart) -> tuple[Place, ...]:
        return next((places for each, places in self.places if each is part), ())

    @property
    def runs_as_root(self) -> bool:
        """Whether the policy runs its process as root: it names no user, or root by name or by uid."""
        return self.user is None or self.user in ("root", "0")

    def syscall_overrides(self, name: str) -> tuple[Override, ...]:
        return tuple(each for each in self.overrides if name in each.syscalls)

    def capability_overrides(self, name: str) -> tuple[Override, ...]:
        return tuple(each for each in self.overrides if name in each.capabilities)


class PolicyReader(ABC):
    format: PolicyFormat

    @abstractmethod
    def read(self, path: Path) -> Policy:
        """Read a deployed policy; PolicyParseError (one line) when it cannot be read."""
