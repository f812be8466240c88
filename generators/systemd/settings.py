"""What each setting of a unit means to systemd 252: the exec sections' assignments folded into a Policy.

In order, as src/core/load-fragment.c and src/shared/seccomp-util.c read them, with findings on the lines
systemd ignores.
"""

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from generators.abis import libseccomp_knows
from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Override,
    Policy,
    PolicyFormat,
    SettingLine,
    SyscallFilter,
)
from generators.systemd.groups import IMPLIED_GROUP, SyscallGroups
from generators.systemd.names import (
    ALL_CAPABILITIES,
    ALL_NAMESPACES,
    CAPABILITY_MASK_BITS,
    ERRNO_MAX,
    NAMESPACE_NAMES,
    NATIVE_ARCHITECTURE,
    OVERRIDING_SETTINGS,
    SANDBOX_SETTINGS,
    SECCOMP_SWITCHES,
    SETTINGS,
    SYSTEMD_ARCHITECTURES,
    UNMODELED_CONFINING,
    capability_bit,
    capability_names,
    errno_name,
    family_name,
    parse_boolean,
)
from generators.systemd.sandbox import SandboxReading, refused_by_settings
from generators.systemd.unit_syntax import Assignment, split_words
from profiler import abi, syscalls


@dataclasses.dataclass(frozen=True, slots=True)
class MisplacedTilde:
    """A `~word` after the first word of a value: systemd takes it for a name, not an inversion."""

    at: Assignment
    key: str
    word: str


class UnitReading:
    """The exec context systemd builds from assignments, one at a time, with what a reader should be told."""

    def __init__(self, groups: SyscallGroups) -> None:
        self.groups = groups
        self.findings: list[LintFinding] = []
        self.misplaced: list[MisplacedTilde] = []
        self.filter: dict[str, str | None] | None = None  # syscall name → errno (None: the default action)
        self.allow_list = False
        self.mode_set_at: Assignment | None = None
        self.error_number: str | None = None  # None: kill
        self.error_number_at: Assignment | None = None
        self.architectures: set[str] | None = None
        self.bounding = ALL_CAPABILITIES
        self.bounding_at: Assignment | None = None
        self.ambient = 0
        self.ambient_at: Assignment | None = None
        self.families: set[str] | None = None
        self.families_allow_list = False
        self.families_mode_set_at: Assignment | None = None
        self.families_at: Assignment | None = None
        self.namespaces: set[str] | None = None  # None: unrestricted (never set, or reset)
        self.no_new_privileges: bool | None = None
        self.no_new_privileges_at: Assignment | None = None
        self.user: str | None = None
        self.group: str | None = None
        self.dynamic_user_at: Assignment | None = None  # the line that turned DynamicUser= on, while it is on
        self.switched_on: dict[str, Assignment] = {}  # the line that turned each seccomp switch on, while it is on
        self.last_at: dict[str, Assignment] = {}  # the last line of each setting
        self.sandbox = SandboxReading()

    def warn(self, at: Assignment, message: str) -> None:
        self.findings.append(LintFinding(at.source, at.line, message, at.key))

    def apply(self, at: Assignment) -> None:
        self.last_at[at.key] = at
        if at.key in SANDBOX_SETTINGS:
            wrong = self.sandbox.apply(at.key, at.value, at.source, at.line, split_words(at.value, unquote=True)[0])
            if wrong and at.key not in (*SECCOMP_SWITCHES, "DynamicUser"):  # those are told below
                self.warn(at, wrong)
        match at.key:
            case "SystemCallFilter":
                self.syscall_filter(at)
            case "SystemCallErrorNumber":
                self.syscall_error_number(at)
            case "SystemCallArchitectures":
                self.syscall_architectures(at)
            case "CapabilityBoundingSet":
                self.bounding = self.capability_set(at, self.bounding, ALL_CAPABILITIES, self.bounding_at)
                self.bounding_at = at
            case "AmbientCapabilities":
                self.ambient = self.capability_set(at, self.ambient, 0, self.ambient_at)
                self.ambient_at = at
            case "RestrictAddressFamilies":
                self.address_families(at)
            case "RestrictNamespaces":
                self.restrict_namespaces(at)
            case "NoNewPrivileges":
                value = parse_boolean(at.value)
                if value is None:
                    self.warn(at, f"NoNewPrivileges={at.value}: not a boolean: systemd ignores the line")
                else:
                    self.no_new_privileges, self.no_new_privileges_at = value, at
            case "User":
                if re.search(r"[:/\x00-\x1f\x7f]", at.value) or at.value in (".", ".."):
                    self.warn(at, f"User={at.value}: not a user name: systemd will not start the unit")
                    return
                if at.value and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*\$?|[0-9]+", at.value):
                    self.warn(at, f"User={at.value}: not a portable user name; systemd accepts it with a notice")
                if at.value == "nobody":  # systemd warns as it reads the line, even if a later one replaces it
                    self.warn(
                        at,
                        "User=nobody: systemd warns that this is not safe: nobody owns the files of unmapped users "
                        "(NFS, user namespaces); use DynamicUser=yes or a user of the service's own",
                    )
                self.user = at.value or None
            case "DynamicUser":
                value = parse_boolean(at.value)
                if value is None:
                    # Unlike most booleans, systemd takes a bad DynamicUser= as a fatal error.
                    self.warn(at, f"DynamicUser={at.value}: not a boolean: systemd will not start the unit")
                else:
                    self.dynamic_user_at = at if value else None
            case key if key in SECCOMP_SWITCHES:
                value = parse_boolean(at.value)
                if value is None:
                    self.warn(at, f"{key}={at.value}: not a boolean: systemd ignores the line")
                elif value:
                    self.switched_on[key] = at
                else:
                    self.switched_on.pop(key, None)
            case "Group":
                if re.search(r"[:/\x00-\x1f\x7f]", at.value) or at.value in (".", ".."):
                    self.warn(at, f"Group={at.value}: not a group name: systemd will not start the unit")
                    return
                self.group = at.value or None
            case key if key not in SETTINGS and UNMODELED_CONFINING.fullmatch(key):
                self.sandbox.apply_unmodeled(key, at.value, at.source, at.line)

    def warn_allow_line_in_deny_list(self, at: Assignment, first: Assignment, items: str) -> None:
        self.warn(
            at,
            f"this line lists {items} to allow, but {first.source}:{first.line} made {at.key}= a deny-list (the "
            f"first assignment decides): systemd takes these {items} out of the deny-list instead",
        )

    def note_misplaced_tildes(self, at: Assignment, words: Sequence[str]) -> set[str]:
        misplaced = {word for word in words[1:] if word.startswith("~")}
        self.misplaced += [MisplacedTilde(at, at.key, word) for word in sorted(misplaced)]
        return misplaced

    def syscall_filter(self, at: Assignment) -> None:
        if not at.value:
            self.filter, self.allow_list, self.mode_set_at = None, False, None
            return
        invert = at.value.startswith("~")
        if self.filter is None:
            self.filter, self.allow_list, self.mode_set_at = {}, not invert, at
            if self.allow_list:
                for name in self.groups.expand(IMPLIED_GROUP):
                    if libseccomp_knows(name):
                        self.filter[name] = None
        elif not invert and not self.allow_list and self.mode_set_at is not None:
            self.warn_allow_line_in_deny_list(at, self.mode_set_at, "syscalls")
        words, broken = split_words(at.value.removeprefix("~") if invert else at.value, unquote=False)
        misplaced = self.note_misplaced_tildes(at, words)
        for word in words:
            name, colon, errno_text = word.partition(":")
            errno_value: str | None = None
            if colon:
                errno_value = "kill" if errno_text == "kill" else errno_name(errno_text)
                if errno_value is None or not name:
                    self.warn(at, f"'{word}': not a syscall:errno pair systemd can parse: it ignores the entry")
                    continue
                if not invert:
                    self.warn(
                        at,
                        f"'{word}': an errno applies only to entries of a line starting with '~': systemd ignores "
                        'the entry ("Allow-listed system calls cannot take error number")',
                    )
                    continue
            if word in misplaced:
                continue
            self.filter_entry(at, name, errno_value, invert)
        if broken:
            self.warn(at, "a trailing backslash or an open quote: systemd ignores the rest of the line")

    def filter_entry(self, at: Assignment, name: str, errno_value: str | None, invert: bool) -> None:
        assert self.filter is not None
        if name.startswith("@"):
            if name not in self.groups:
                self.warn(at, f"no syscall group {name} in systemd {self.groups.systemd_version}: systemd ignores it")
                return
            names = [each for each in self.groups.expand(name) if libseccomp_knows(each)]
        elif libseccomp_knows(name):
            names = [name]
        else:
            quotes = (
                " (systemd keeps quotes in SystemCallFilter= as part of the name)" if '"' in name or "'" in name else ""
            )
            self.warn(at, f"no syscall '{name}' in libseccomp's tables: systemd ignores the name{quotes}")
            return
        keeps = (not invert) == self.allow_list or (invert and self.allow_list and errno_value is not None)
        for each in names:
            if keeps:
                self.filter[each] = errno_value
            else:
                self.filter.pop(each, None)

    def syscall_error_number(self, at: Assignment) -> None:
        if not at.value or at.value == "kill":
            self.error_number, self.error_number_at = None, at
            return
        value = errno_name(at.value)
        if value is None or value == "0":
            self.warn(
                at, f"SystemCallErrorNumber={at.value}: not an errno from 1 to {ERRNO_MAX}: systemd ignores the line"
            )
            return
        self.error_number, self.error_number_at = value, at

    def syscall_architectures(self, at: Assignment) -> None:
        if not at.value:
            self.architectures = None
            return
        words, broken = split_words(at.value, unquote=True)
        for word in words:
            if word == NATIVE_ARCHITECTURE:
                self.architectures = (self.architectures or set()) | {syscalls.native_abi()}
            elif word in SYSTEMD_ARCHITECTURES:
                self.architectures = (self.architectures or set()) | {SYSTEMD_ARCHITECTURES[word]}
            else:
                self.warn(at, f"no architecture '{word}' in systemd: it ignores the name")
        if broken:
            self.warn(at, "an open quote or a trailing backslash: systemd ignores the whole line")

    def capability_set(self, at: Assignment, current: int, initial: int, earlier: Assignment | None) -> int:
        """load-fragment.c's config_parse_capability_set: a line replaces the set, rather than adding to it,
        when it names no known capability or when the set is back at its initial value."""
        invert = at.value.startswith("~")
        words, _ = split_words(at.value.removeprefix("~"), unquote=True)
        misplaced = self.note_misplaced_tildes(at, words)
        added = 0
        for word in words:
            bit = capability_bit(word)
            if bit is None:
                if word not in misplaced:
                    self.warn(at, f"no capability '{word}': systemd ignores the name without a warning")
            elif bit >= len(abi.CAPABILITIES):
                self.warn(at, f"capability number {bit}: the kernel has no such capability, so it changes nothing")
            added |= 1 << bit if bit is not None else 0
        if added == 0 and words:
            kind = "every capability" if invert else "empty"
            self.warn(
                at,
                f"no known capability on this line, so systemd reads it as an empty assignment: the set becomes "
                f"{kind}, discarding earlier lines",
            )
        if added and not invert and current == initial == ALL_CAPABILITIES and earlier is not None:
            self.warn(
                at,
                f"after {earlier.source}:{earlier.line} the bounding set held every capability, so systemd takes "
                "this line as the whole set, not as an addition: only its capabilities remain",
            )
        if added == 0 or current == initial:
            return ALL_CAPABILITIES & ~added if invert else added
        return current & ~added if invert else current | added

    def address_families(self, at: Assignment) -> None:
        self.families_at = at
        if not at.value:
            self.families, self.families_allow_list, self.families_mode_set_at = None, False, None
            return
        if at.value == "none":
            self.families, self.families_allow_list, self.families_mode_set_at = None, True, at
            return
        invert = at.value.startswith("~")
        if self.families is None:
            self.families, self.families_allow_list, self.families_mode_set_at = set(), not invert, at
        elif not invert and not self.families_allow_list and self.families_mode_set_at is not None:
            self.warn_allow_line_in_deny_list(at, self.families_mode_set_at, "families")
        words, broken = split_words(at.value.removeprefix("~"), unquote=True)
        misplaced = self.note_misplaced_tildes(at, words)
        for word in words:
            family = family_name(word)
            if family is None:
                if word == "none":
                    self.warn(
                        at,
                        "'none' means no family only as the whole value: here systemd takes it for a family name "
                        "and ignores it",
                    )
                elif word not in misplaced:
                    self.warn(at, f"no address family '{word}' in systemd: it ignores the name")
            elif (not invert) == self.families_allow_list:
                self.families.add(family)
            else:
                self.families.discard(family)
        if broken:
            self.warn(at, "an open quote or a trailing backslash: systemd ignores the rest of the line")

    def restrict_namespaces(self, at: Assignment) -> None:
        if not at.value:
            self.namespaces = None
            return
        value = parse_boolean(at.value)
        if value is not None:
            self.namespaces = set() if value else set(NAMESPACE_NAMES)
            return
        invert = at.value.startswith("~")
        words, broken = split_words(at.value.removeprefix("~"), unquote=True)
        unknown = [word for word in words if word not in NAMESPACE_NAMES]
        if unknown or broken:
            misplaced = [word for word in words[1:] if word.startswith("~")]
            why = (
                f"'{misplaced[0]}' is not the first word: '~' inverts only at the start of the value"
                if misplaced
                else f"'{unknown[0]}' is no namespace type (systemd knows {', '.join(NAMESPACE_NAMES)})"
                if unknown
                else "an open quote or a trailing backslash"
            )
            self.warn(at, f"{why}, so systemd ignores the whole line")
            return
        flags = set(words)
        if self.namespaces is None:
            self.namespaces = set(NAMESPACE_NAMES) - flags if invert else flags
        else:
            self.namespaces = self.namespaces - flags if invert else self.namespaces | flags

    def policy(self, unit: Path) -> Policy:
        # DynamicUser=yes runs the service as a user allocated at start, named after the unit unless User= names
        # one (a static user of that name, such as root, is used as it is), and turns on NoNewPrivileges= for good.
        dynamic = self.dynamic_user_at is not None
        policy = Policy(
            source=str(unit),
            format=PolicyFormat.SYSTEMD,
            syscalls=self.syscall_rules(),
            architectures=frozenset(self.architectures | {syscalls.native_abi()}) if self.architectures else None,
            capability_bounding=_capability_name_set(self.bounding),
            ambient_capabilities=capability_names(self.ambient),
            address_families=self.family_rules(),
            namespaces=UNRESTRICTED
            if not self.restricts_namespaces()
            else NameSet(ListMode.ALLOW, frozenset(self.namespaces or ())),
            no_new_privileges=True if dynamic else self.no_new_privileges,
            user=self.user or (unit.name.rsplit(".", 1)[0] if dynamic else None),
            group=self.group,
            overrides=tuple(
                self.override(key, at) for key, at in sorted(self.switched_on.items()) if key in OVERRIDING_SETTINGS
            )
            + self.namespace_override(),
            sandbox=self.sandbox.settings(self.user),
            dynamic_user=SettingLine("DynamicUser", "yes", self.dynamic_user_at.source, self.dynamic_user_at.line)
            if self.dynamic_user_at
            else None,
        )
        return dataclasses.replace(policy, no_new_privileges_implied_by=self.implied_no_new_privileges(policy))

    def implied_no_new_privileges(self, policy: Policy) -> str | None:
        """The seccomp setting that turns no-new-privileges on for a non-root user without CAP_SYS_ADMIN."""
        if policy.no_new_privileges or policy.runs_as_root:
            return None
        if "CAP_SYS_ADMIN" in policy.ambient_capabilities:
            return None
        restricted = {
            "SystemCallFilter": policy.syscalls is not None,
            "SystemCallArchitectures": policy.architectures is not None,
            "RestrictAddressFamilies": not policy.address_families.unrestricted,
            "RestrictNamespaces": not policy.namespaces.unrestricted,
        }
        settings = [self.last_at[key] for key, on in restricted.items() if on] + list(self.switched_on.values())
        at = min(settings, key=lambda at: at.line, default=None)  # one is enough to say why
        return f"{at.key}= ({at.source}:{at.line})" if at else None

    def override(self, key: str, at: Assignment) -> Override:
        return Override(
            f"{key}={at.value}",
            f"{key}=no",
            at.source,
            at.line,
            refused_by_settings(self.groups)[key],
            frozenset(OVERRIDING_SETTINGS[key][1]),
        )

    def restricts_namespaces(self) -> bool:
        return self.namespaces is not None and not set(ALL_NAMESPACES) <= self.namespaces

    def namespace_override(self) -> tuple[Override, ...]:
        """RestrictNamespaces= answers clone3 with ENOSYS whenever it restricts any type: seccomp cannot see the
        flags clone3 passes in memory (seccomp_restrict_namespaces in src/shared/seccomp-util.c)."""
        if not self.restricts_namespaces():
            return ()
        at = self.last_at["RestrictNamespaces"]
        return (
            Override(
                f"RestrictNamespaces={at.value}",
                "RestrictNamespaces=no",
                at.source,
                at.line,
                frozenset({"clone3"}),
                frozenset(),
                "ENOSYS",
            ),
        )

    def syscall_rules(self) -> SyscallFilter | None:
        if self.filter is None:
            return None
        mode = ListMode.ALLOW if self.allow_list else ListMode.DENY
        names = frozenset(name for name, value in self.filter.items() if value is None or not self.allow_list)
        errnos = tuple(sorted((name, value) for name, value in self.filter.items() if value is not None))
        implied = self.groups.expand(IMPLIED_GROUP) if self.allow_list else frozenset()
        return SyscallFilter(NameSet(mode, names), self.error_number, errnos, frozenset(implied))

    def family_rules(self) -> NameSet:
        if not self.families and not self.families_allow_list:
            return UNRESTRICTED
        return NameSet(ListMode.ALLOW if self.families_allow_list else ListMode.DENY, frozenset(self.families or ()))


def _capability_name_set(mask: int) -> NameSet:
    """A mask as an allow-list of names, or as a deny-list where it came from an inversion (bit 63 set)."""
    if mask >> (CAPABILITY_MASK_BITS - 1) & 1:
        return NameSet(ListMode.DENY, frozenset(abi.CAPABILITIES) - capability_names(mask))
    return NameSet(ListMode.ALLOW, capability_names(mask))
