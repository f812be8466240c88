"""The systemd format: a [Service] drop-in from a profile, and deployed units read the way systemd 252 reads them.

SystemdFormat.render(profile, options)  the drop-in: each setting reset, then one line per item, each with a
                                        comment saying where it came from
SystemdFormat.read(path)                a unit file with its drop-ins (systemd_dropins.py), or one drop-in file, read
                                        with systemd's rules (src/core/load-fragment.c, src/shared/conf-parser.c,
                                        src/shared/seccomp-util.c), and lint findings, with file and line, for
                                        what systemd ignores or reads differently from how it looks
"""

import dataclasses
import difflib
import errno
import functools
import os
import re
import textwrap
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from generators.correction import Correction, Corrector
from generators.diff import Comparison
from generators.evidence_text import describe_evidence
from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Override,
    Policy,
    PolicyFormat,
    PolicyParseError,
    PolicyReader,
    Renderer,
    RenderOptions,
    SyscallFilter,
)
from generators.policy_names import check_profile_names
from generators.profile import ANY_NAMESPACE, NAMESPACE_TYPES, CapabilityPath, Evidence, Profile, merge_evidence
from generators.syscall_plan import plan_syscalls
from generators.systemd_correction import systemd_correction
from generators.systemd_dropins import unit_files
from generators.systemd_groups import ALL_KNOWN_GROUP, IMPLIED_GROUP, SyscallGroups, syscall_groups
from profiler import abi, syscalls
from profiler.errors import ProfilerError
from profiler.escaping import visible
from profiler.trace import CapabilitySource, CheckClass, read_input

# SystemCallArchitectures= identifiers of systemd 252 (seccomp_arch_from_string), as libseccomp ABI names.
SYSTEMD_ARCHITECTURES: dict[str, str] = {
    "x86": "x86",
    "x86-64": "x86_64",
    "x32": "x32",
    "arm": "arm",
    "arm64": "aarch64",
    "mips": "mips",
    "mips-le": "mipsel",
    "mips64": "mips64",
    "mips64-le": "mipsel64",
    "mips64-n32": "mips64n32",
    "mips64-le-n32": "mipsel64n32",
    "ppc": "ppc",
    "ppc64": "ppc64",
    "ppc64-le": "ppc64le",
    "s390": "s390",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "parisc": "parisc",
    "parisc64": "parisc64",
}
NATIVE_ARCHITECTURE = "native"
# Every ABI libseccomp 2.5 names: a syscall name systemd can resolve exists on at least one of them.
LIBSECCOMP_ABIS = tuple(sorted(set(SYSTEMD_ARCHITECTURES.values())))
# The ABIs a kernel of each native ABI also runs, which a filter without SystemCallArchitectures= lets through.
LOCAL_ABIS: dict[str, tuple[str, ...]] = {"x86_64": ("x86_64", "x86", "x32"), "aarch64": ("aarch64", "arm")}
# RestrictNamespaces= names systemd 252 accepts; profiler's namespace types are the same names.
NAMESPACE_NAMES: tuple[str, ...] = tuple(NAMESPACE_TYPES.values())
# NAMESPACE_FLAGS_ALL of systemd 252 (src/basic/namespace-util.h) leaves out time: a unit that permits these seven
# types loads no namespace filter at all, so time namespaces stay allowed too (seccomp_restrict_namespaces).
ALL_NAMESPACES = tuple(name for name in NAMESPACE_NAMES if name != "time")
# systemd's address family table comes from glibc's <sys/socket.h>: every family but AF_UNSPEC, and aliases.
SYSTEMD_FAMILIES: tuple[str, ...] = abi.ADDRESS_FAMILIES[1:]
FAMILY_ALIASES: dict[str, str] = {"AF_LOCAL": "AF_UNIX", "AF_FILE": "AF_UNIX", "AF_ROUTE": "AF_NETLINK"}
_FAMILIES_BY_UPPER_NAME = {name.upper(): name for name in SYSTEMD_FAMILIES}
# Capability sets are 64-bit masks; systemd accepts a capability as a name or as a number below 64.
CAPABILITY_MASK_BITS = 64
ALL_CAPABILITIES = (1 << CAPABILITY_MASK_BITS) - 1
ERRNO_MAX = 4095
# conf-parser.c reads lines with read_line(f, LONG_LINE_MAX) and joins continuations up to it: 1 MiB.
LONG_LINE_MAX = 1 << 20

EXEC_SECTIONS: dict[str, str] = {".service": "Service", ".socket": "Socket", ".mount": "Mount", ".swap": "Swap"}
# Sandboxing settings that refuse syscalls (EPERM) and take capabilities out of the bounding set on their own,
# whatever SystemCallFilter= and CapabilityBoundingSet= say (systemd 252: unit_patch_contexts() in
# src/core/unit.c, and the apply_protect_*() filters of src/core/execute.c).
OVERRIDING_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PrivateDevices": (("@raw-io",), ("CAP_MKNOD", "CAP_SYS_RAWIO")),
    "ProtectClock": (("@clock",), ("CAP_SYS_TIME", "CAP_WAKE_ALARM")),
    "ProtectHostname": (("sethostname", "setdomainname"), ()),
    "ProtectKernelLogs": (("syslog",), ("CAP_SYSLOG",)),
    "ProtectKernelModules": (("@module",), ("CAP_SYS_MODULE",)),
    "ProtectKernelTunables": (("_sysctl",), ()),
}
# Settings that load a seccomp filter; each turns no-new-privileges on for a user without CAP_SYS_ADMIN
# (context_has_no_new_privileges() in src/core/execute.c; systemd.exec(5)), as do the syscall, ABI, family
# and namespace restrictions.
SECCOMP_SWITCHES = (
    *OVERRIDING_SETTINGS,
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
)
SETTINGS = (
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallArchitectures",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "NoNewPrivileges",
    "User",
    "DynamicUser",
    *SECCOMP_SWITCHES,
)
_WHITESPACE = " \t\n\r"
_COMMENT_START = ("#", ";")
_BOOLEANS = {"1": True, "yes": True, "y": True, "true": True, "t": True, "on": True}
_BOOLEANS |= {"0": False, "no": False, "n": False, "false": False, "f": False, "off": False}
_SHOWN_NAMES = 8
_COMMENT_WIDTH = 116


class SystemdFormat(Renderer, PolicyReader, Corrector):
    """Renders a profile as a drop-in and reads deployed units, both with one systemd version's syscall groups."""

    format = PolicyFormat.SYSTEMD

    def __init__(self, groups: SyscallGroups | None = None) -> None:
        self._groups = groups

    @property
    def groups(self) -> SyscallGroups:
        """The installed systemd's groups, else the committed table: unless the caller chose a table."""
        return self._groups or syscall_groups()

    def render(self, profile: Profile, options: RenderOptions) -> str:
        return render_systemd_dropin(profile, options, self.groups)

    def read(self, path: Path) -> Policy:
        return read_systemd_unit(path, self.groups)

    def correct(self, comparison: Comparison) -> Correction:
        return systemd_correction(comparison)


# ---------------------------------------------------------------------------------------------- names


@functools.lru_cache(maxsize=1 << 12)  # bounded: the names come from untrusted unit files
def libseccomp_knows(name: str) -> bool:
    """Whether libseccomp resolves a syscall name at all: systemd ignores a name it cannot resolve."""
    return any(_number(each, name) is not None for each in LIBSECCOMP_ABIS)


def _number(abi_name: str, name: str) -> int | None:
    try:
        return syscalls.syscall_number(abi_name, name)
    except ProfilerError:  # an ABI this libseccomp build does not know
        return None


def _exists_on(name: str, abis: Iterable[str]) -> bool:
    return any(_number(each, name) is not None for each in abis)


def _effective(names: Iterable[str], abis: Sequence[str]) -> frozenset[str]:
    """The names that are syscalls on one of the ABIs: a filter's other names never match a call."""
    return frozenset(name for name in names if _exists_on(name, abis))


def _capability_bit(word: str) -> int | None:
    """systemd's capability_from_name: a number below 64, or a CAP_ name in any case."""
    if re.fullmatch(r"[0-9]+", word):
        return int(word) if int(word) < CAPABILITY_MASK_BITS else None
    upper = word.upper()
    return abi.CAPABILITIES.index(upper) if upper in abi.CAPABILITIES else None


def _capability_names(mask: int) -> frozenset[str]:
    return frozenset(name for bit, name in enumerate(abi.CAPABILITIES) if mask >> bit & 1)


def _family_name(word: str) -> str | None:
    """systemd's af_from_name: a family name in any case, or an alias, as the canonical AF_ name."""
    upper = word.upper()
    return FAMILY_ALIASES.get(upper) or _FAMILIES_BY_UPPER_NAME.get(upper)


def _errno_name(text: str) -> str | None:
    """systemd's parse_errno: an errno name (any case) or a number up to 4095, as a name where one exists."""
    if re.fullmatch(r"[0-9]+", text):
        number = int(text)
        return errno.errorcode.get(number, str(number)) if number <= ERRNO_MAX else None
    upper = text.upper()
    return upper if upper.startswith("E") and isinstance(getattr(errno, upper, None), int) else None


def _boolean(text: str) -> bool | None:
    return _BOOLEANS.get(text.lower())


def _systemd_architecture(abi_name: str) -> str:
    return next(name for name, each in SYSTEMD_ARCHITECTURES.items() if each == abi_name)


def _short_list(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SHOWN_NAMES])
    return shown + (f" and {len(ordered) - _SHOWN_NAMES} more" if len(ordered) > _SHOWN_NAMES else "")


# ---------------------------------------------------------------------------------------------- rendering


class _DropIn:
    """The lines of a drop-in: settings, and the comments above them when comments are wanted."""

    def __init__(self, comments: bool) -> None:
        self.comments = comments
        self.lines: list[str] = []

    def comment(self, text: str, indent: str = "") -> None:
        """A comment, wrapped; its continuation lines indented by two more spaces.

        systemd 252 ends a line at LF, CR and NUL (read_line() in src/basic/fileio.c): the text is escaped
        visibly, so that nothing in it (a recorded path) ends the comment and starts a setting.
        """
        if self.comments:
            wrapped = textwrap.wrap(
                visible(text), _COMMENT_WIDTH - len(indent), break_long_words=False, break_on_hyphens=False
            )
            self.lines += [f"# {indent}{wrapped[0]}", *(f"# {indent}  {line}" for line in wrapped[1:])]

    def comment_list(self, header: str, entries: Iterable[str]) -> None:
        self.comment(header)
        for entry in entries:
            self.comment(entry, indent="  ")

    def setting(self, key: str, value: str, why: str = "") -> None:
        if why:
            self.comment(why)
        self.lines.append(f"{key}={value}")

    def items(self, key: str, items: Sequence[tuple[str, str]], prefix: str = "") -> None:
        """One line per item under its comment; without comments, all items on one line."""
        if not items:
            return
        if self.comments:
            for value, why in items:
                self.setting(key, prefix + value, why)
        else:
            self.lines.append(f"{key}={prefix}{' '.join(value for value, _ in items)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_systemd_dropin(profile: Profile, options: RenderOptions, groups: SyscallGroups) -> str:
    """The [Service] drop-in that confines the profiled component; the same profile gives the same bytes."""
    check_profile_names(profile)
    out = _DropIn(options.comments)
    _header(out, profile, options, groups)
    out.lines.append("[Service]")
    _syscall_filter(out, profile, options, groups)
    _architectures(out, profile)
    _capabilities(out, profile, options)
    _address_families(out, profile, options)
    _namespaces(out, profile, options)
    out.setting(
        "NoNewPrivileges",
        "yes",
        "execve() cannot gain privileges: setuid and setgid bits and file capabilities stop working "
        "(programs such as sudo or a setcap ping lose them)",
    )
    return out.text()


def _header(out: _DropIn, profile: Profile, options: RenderOptions, groups: SyscallGroups) -> None:
    out.comment(f"systemd drop-in for {profile.component}, generated by profiler from {len(profile.runs)} run(s):")
    for index, run in enumerate(profile.runs, start=1):
        # Arguments can hold secrets (--password=...), and drop-ins get committed: the program, unless asked.
        ran = f"command {' '.join(run.command)}" if options.command_lines else f"program {run.program}"
        out.comment(f"run {index}: {run.source}, {run.started_at} on {run.hostname} as {run.user}, {ran}")
    out.comment("Install as /etc/systemd/system/NAME.service.d/profiler.conf, then run systemctl daemon-reload.")
    out.comment(
        "Each setting starts with an empty assignment, which discards what the unit set: "
        "a drop-in's lines otherwise add to the unit's."
    )
    out.comment(f"Syscall groups: {groups.describe()}.")
    dropped = profile.dropped.nonzero()
    if dropped:
        lost = ", ".join(f"{name} {count}" for name, count in sorted(dropped.items()))
        out.comment(
            f"WARNING: the traces are incomplete (dropped: {lost}): this policy may refuse what was not recorded."
        )


def _restricts_namespaces(profile: Profile) -> bool:
    """Whether the drop-in's RestrictNamespaces= restricts anything (see _namespaces)."""
    return ANY_NAMESPACE not in profile.namespace_types()


def _syscall_filter(out: _DropIn, profile: Profile, options: RenderOptions, groups: SyscallGroups) -> None:
    # RestrictNamespaces= answers clone3 with ENOSYS whenever it restricts anything (seccomp_restrict_namespaces
    # in src/shared/seccomp-util.c), whatever SystemCallFilter= says: the C library then needs clone.
    clone3_refused = _restricts_namespaces(profile)
    plan = plan_syscalls(profile, options.portability, answered_enosys=("clone3",) if clone3_refused else ())
    abis = profile.abis()
    needs = {need.name: need for need in profile.syscalls}
    added = dict(plan.added)
    default = _effective(groups.expand(IMPLIED_GROUP), abis)
    allowed = frozenset(plan.allowed)

    def why(name: str) -> str:
        if name in needs:
            also = [each for each in needs[name].abis if each != profile.native_abi]
            compat = f" (also as {', '.join(also)})" if also else ""
            evidence = describe_evidence(
                needs[name].evidence, profile, options.min_runs, allowed_anyway=name in plan.regardless
            )
            refused = (
                " (answered with ENOSYS by RestrictNamespaces= below: the C library falls back to clone)"
                if name == "clone3" and clone3_refused
                else ""
            )
            return f"{name}{compat}: {evidence}{refused}"
        return f"{name}: not seen; allowed: {added[name]}"

    if profile.uses_io_uring:
        out.comment(
            "WARNING: the workload uses io_uring: seccomp never sees the operations io_uring performs, "
            "so this filter does not confine them."
        )
    unused_default = default - allowed
    out.comment(
        f"SystemCallFilter= is an allow-list: what the traces used on {', '.join(abis)}, and what portability needs. "
        f"systemd adds its @default group to every allow-list ({len(default)} syscalls here); "
        f"of them the traces did not use {len(unused_default)}, allowed anyway: "
        f"{', '.join(sorted(unused_default)) or 'none'}."
    )
    out.setting("SystemCallFilter", "")
    covered = default if options.groups else frozenset()
    for group in _whole_groups(allowed, default, abis, groups) if options.groups else ():
        members = _effective(groups.expand(group), abis)
        out.comment_list(f"{group}: every syscall of the group was used:", map(why, sorted(members)))
        out.setting("SystemCallFilter", group)
        covered |= members
    if options.groups:
        out.comment_list("Allowed by @default, so not listed:", map(why, sorted(default & allowed)))
    out.items("SystemCallFilter", [(name, why(name)) for name in sorted(allowed - covered)])
    out.items(
        "SystemCallFilter",
        [
            (
                f"{name}:ENOSYS",
                f"{name}: not seen; ENOSYS, not EPERM: the C library tries it first and falls back to an older "
                "call only on ENOSYS",
            )
            for name in plan.enosys
        ],
        prefix="~",
    )
    for unresolved in profile.unresolved:
        evidence = describe_evidence(unresolved.evidence, profile, options.min_runs)
        out.comment(
            f"Not allowed: syscall {unresolved.nr} on {unresolved.abi}, which has no name to write: "
            f"{unresolved.reason} ({evidence})."
        )
    out.setting(
        "SystemCallErrorNumber",
        "EPERM",
        "A refused syscall fails with EPERM instead of killing the process (syscalls newer than systemd's "
        "@known list fail with ENOSYS).",
    )


def _whole_groups(
    allowed: frozenset[str], default: frozenset[str], abis: Sequence[str], groups: SyscallGroups
) -> list[str]:
    """Groups whose every syscall on the ABIs is allowed, largest first, each adding something to the others.

    A group is written only when it adds nothing the profile does not allow: its names that are no syscall on
    these ABIs never match a call, since SystemCallArchitectures= refuses every other ABI.
    """
    candidates = []
    for group in groups.members:
        if group in (IMPLIED_GROUP, ALL_KNOWN_GROUP):
            continue
        members = _effective(groups.expand(group), abis)
        if members and members <= allowed and not members <= default:
            candidates.append((-len(members), group, members))
    chosen: list[str] = []
    covered = set(default)
    for _, group, members in sorted(candidates):
        if not members <= covered:
            chosen.append(group)
            covered |= members
    return chosen


def _architectures(out: _DropIn, profile: Profile) -> None:
    compat = profile.abis()[1:]
    out.comment(
        f"SystemCallArchitectures=: native is {profile.native_abi}, the ABI the traces were recorded in"
        + (f"; {', '.join(compat)}: used by 32-bit programs in the traces" if compat else "")
        + ". Other ABIs are refused, so that no program escapes into one the settings below were not written for."
    )
    out.setting("SystemCallArchitectures", "")
    out.setting("SystemCallArchitectures", " ".join([NATIVE_ARCHITECTURE, *map(_systemd_architecture, compat)]))


def _path_text(path: CapabilityPath) -> str:
    where = f"in {path.syscall}" if path.syscall else "outside a syscall"
    where = f"{where} via {path.via}" if path.via else where
    return f"{where} ({path.inferred})" if path.inferred else where


def _paths_of(paths: Iterable[CapabilityPath], classification: CheckClass) -> list[CapabilityPath]:
    return [path for path in paths if path.classification is classification]


def _paths_text(paths: Iterable[CapabilityPath], profile: Profile, min_runs: int) -> str:
    """Where a capability was checked, one entry per syscall and asking function, their evidence merged."""
    merged: dict[str, list[Evidence]] = {}
    for path in paths:
        merged.setdefault(_path_text(path), []).append(path.evidence)
    return "; ".join(
        f"{where}: {describe_evidence(merge_evidence(evidence), profile, min_runs)}"
        for where, evidence in merged.items()
    )


def _capabilities(out: _DropIn, profile: Profile, options: RenderOptions) -> None:
    if not profile.capabilities_known:
        blind = [run.source for run in profile.runs if run.capability_source is CapabilitySource.NONE]
        out.comment(
            "CapabilityBoundingSet= and AmbientCapabilities= are left out: the capabilities are unknown, since "
            f"the kernel could not report capability checks in {', '.join(blind)}. Record on a kernel with the "
            "capability tracepoint or kprobes to learn them."
        )
        return
    needed = [use for use in profile.capabilities if use.needed]
    out.comment(
        "CapabilityBoundingSet=: the capabilities the traces needed"
        + ("" if needed else "; empty: none was needed")
        + ". Probes (checks made without consequence) never count."
    )
    out.setting("CapabilityBoundingSet", "")
    items = [
        (
            use.name,
            f"{use.name}: "
            + _paths_text(
                [path for path in _paths_of(use.paths, CheckClass.NEEDED) if path.initial_user_ns],
                profile,
                options.min_runs,
            ),
        )
        for use in needed
    ]
    out.items("CapabilityBoundingSet", items)
    for use in profile.capabilities:
        if use.needed_in_user_namespace_only:
            out.comment(
                f"{use.name} is not granted: it was needed only inside a user namespace the workload created, "
                "where the bounding set does not apply ("
                + _paths_text(_paths_of(use.paths, CheckClass.NEEDED), profile, options.min_runs)
                + ")."
            )
    denied = [use for use in profile.capabilities if use.name in profile.denied_capabilities()]
    if denied:
        out.comment(
            "Attempted and refused in the traces, so not granted (granting them would change what the workload "
            "does): "
            + "; ".join(
                f"{use.name} " + _paths_text(_paths_of(use.paths, CheckClass.DENIED), profile, options.min_runs)
                for use in denied
            )
        )
    if profile.recorded_unprivileged and needed:
        users = ", ".join(sorted({f"{run.user} (uid {run.uid})" for run in profile.runs}))
        out.comment(
            f"AmbientCapabilities=: recorded as {users}, so the unit's User= runs it unprivileged and the needed "
            "capabilities must be ambient."
        )
        out.setting("AmbientCapabilities", "")
        out.items("AmbientCapabilities", items)
    else:
        reason = "recorded as root, which needs none" if not profile.recorded_unprivileged else "none was needed"
        out.setting("AmbientCapabilities", "", f"AmbientCapabilities= empty: {reason}.")


def _address_families(out: _DropIn, profile: Profile, options: RenderOptions) -> None:
    unenforced = "sockets received from elsewhere (socket activation, SCM_RIGHTS) and socketpair()"
    if "x86" in profile.abis():
        unenforced += ", and every socket of 32-bit x86 programs (systemd cannot filter socketcall())"
    out.comment(f"RestrictAddressFamilies= filters socket() only; it does not restrict {unenforced}.")
    families = [use for use in profile.families if use.restricted_by_socket_filters]
    for use in profile.families:
        if not use.restricted_by_socket_filters:
            out.comment(
                f"{use.name} is not listed: made only by socketpair(), which this setting does not restrict "
                f"({describe_evidence(use.evidence, profile, options.min_runs)})."
            )
    if not families:
        made = "sockets only with socketpair()" if profile.families else "no socket"
        out.setting("RestrictAddressFamilies", "none", f"none: the traces created {made}.")
        return
    items = [
        (use.name, f"{use.name} ({', '.join(use.types)}): {describe_evidence(use.evidence, profile, options.min_runs)}")
        for use in families
    ]
    unnamed = [use.name for use in families if _family_name(use.name) is None]
    out.setting("RestrictAddressFamilies", "")
    if not unnamed:
        out.items("RestrictAddressFamilies", items)
        return
    used = {use.name for use in families}
    out.comment(
        f"{', '.join(unnamed)}: no name systemd knows, so no allow-list can admit it: instead every family systemd "
        "knows that the traces did not use is denied. Used: " + "; ".join(why for _, why in items)
    )
    out.items(
        "RestrictAddressFamilies",
        [(name, f"{name}: not used") for name in SYSTEMD_FAMILIES if name not in used],
        prefix="~",
    )


def _namespaces(out: _DropIn, profile: Profile, options: RenderOptions) -> None:
    needs = {need.name: need for need in profile.namespaces}
    if not _restricts_namespaces(profile):
        need = needs[ANY_NAMESPACE]
        out.setting(
            "RestrictNamespaces",
            "no",
            "RestrictNamespaces=no: setns() joined a namespace of unknown type (flags 0), which systemd refuses "
            "whenever it restricts any namespace type, so namespaces cannot be restricted: "
            + describe_evidence(need.evidence, profile, options.min_runs),
        )
        return
    clone3 = (
        "systemd also makes clone3() fail with ENOSYS, since it cannot see its flags; "
        "the C library falls back to clone(), which SystemCallFilter= allows wherever the traces used clone3()"
    )
    if not needs:
        out.setting(
            "RestrictNamespaces", "yes", f"RestrictNamespaces=yes: no namespace was created or joined; {clone3}."
        )
        return
    out.comment(f"RestrictNamespaces=: only the namespace types the traces created or joined; {clone3}.")
    out.setting("RestrictNamespaces", "")
    out.items(
        "RestrictNamespaces",
        [
            (
                name,
                f"{name} ({', '.join(need.syscalls)}): {describe_evidence(need.evidence, profile, options.min_runs)}",
            )
            for name, need in sorted(needs.items())
        ],
    )


# ---------------------------------------------------------------------------------------------- unit file syntax


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """One `Key=value` of a unit file, after systemd joined continued lines and stripped whitespace."""

    source: str
    line: int  # the last physical line of a continued line, as systemd reports it
    section: str
    key: str
    value: str


def _read_unit_text(path: Path) -> str:
    """The text of a unit file; PolicyParseError where systemd would not load it at all."""
    data = read_input(path, "systemd unit", PolicyParseError)
    if b"\0" in data:
        raise PolicyParseError(f"{path}: holds NUL bytes: a binary file, not a systemd unit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PolicyParseError(
            f"{path}:{line}: not UTF-8 text: systemd refuses to load the unit; is this a unit file?"
        ) from None
    return text.removeprefix("\ufeff")


def _byte_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _logical_lines(text: str, source: str) -> Iterator[tuple[int, str]]:
    """Lines as conf-parser.c sees them: comments dropped (also inside continuations), continuations joined.

    A line continues when it ends in an odd run of backslashes (reading escapes left to right ends on a
    backslash exactly then); only the newest physical line can hold that run, since each earlier part ends
    in the space that replaced its backslash, so the parts are joined once, in linear time. systemd refuses
    the whole unit ("Line too long", "Continuation line too long") where a physical line reaches
    LONG_LINE_MAX bytes or a joined line passes it.
    """
    parts: list[str] = []
    joined = 0  # bytes in parts
    number = 0
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        size = _byte_length(raw)
        if size >= LONG_LINE_MAX:
            raise PolicyParseError(
                f"{source}:{number}: a line of {size} bytes: systemd refuses the unit (Line too long)"
            )
        if raw.lstrip(_WHITESPACE).startswith(_COMMENT_START):
            continue
        if parts and joined + size > LONG_LINE_MAX:
            raise PolicyParseError(
                f"{source}:{number}: a line continued past {LONG_LINE_MAX} bytes: systemd refuses the unit "
                "(Continuation line too long)"
            )
        if (len(raw) - len(raw.rstrip("\\"))) % 2:
            parts.append(raw[:-1] + " ")
            joined += size
            continue
        line = "".join([*parts, raw]).strip(_WHITESPACE)
        parts, joined = [], 0
        if line:
            yield number, line
    line = "".join(parts).strip(_WHITESPACE)
    if line:
        yield number, line


@dataclasses.dataclass(slots=True)
class _UnitText:
    assignments: list[Assignment] = dataclasses.field(default_factory=list)
    findings: list[LintFinding] = dataclasses.field(default_factory=list)
    sections: int = 0


def _parse_unit_text(text: str, source: str, exec_sections: frozenset[str]) -> _UnitText:
    known = exec_sections | {"Unit", "Install"}
    parsed = _UnitText()
    section: str | None = None
    for line, content in _logical_lines(text, source):
        if content.startswith("["):
            if not content.endswith("]"):
                raise PolicyParseError(f"{source}:{line}: invalid section header '{content}': systemd refuses the unit")
            parsed.sections += 1
            section = content[1:-1]
            if section not in known and not section.startswith("X-"):
                parsed.findings.append(
                    LintFinding(source, line, f"unknown section [{section}]: systemd ignores it and its settings")
                )
            continue
        key, equals, value = content.partition("=")
        if section is None:
            parsed.findings.append(LintFinding(source, line, "a setting outside any [section]: systemd ignores it"))
        elif not equals:
            parsed.findings.append(LintFinding(source, line, "no '=' in this line: systemd ignores it"))
        elif not key.strip(_WHITESPACE):
            parsed.findings.append(LintFinding(source, line, "no key before '=': systemd ignores the line"))
        elif section in known:
            parsed.assignments.append(
                Assignment(source, line, section, key.strip(_WHITESPACE), value.strip(_WHITESPACE))
            )
    return parsed


def _split_words(value: str, unquote: bool) -> tuple[list[str], bool]:
    """systemd's extract_first_word, repeated: the words, and whether it stopped at invalid syntax.

    A backslash takes the next character literally; quotes group words only where the setting unquotes
    (SystemCallFilter= does not: its quotes are part of the names).
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote: str | None = None
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                return words, True
            current.append(following)
            in_word = True
        elif quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif unquote and char in "'\"":
            quote, in_word = char, True
        elif char in _WHITESPACE:
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if quote is not None:
        return words, True
    if in_word:
        words.append("".join(current))
    return words, False


# ---------------------------------------------------------------------------------------------- systemd's reading


@dataclasses.dataclass(frozen=True, slots=True)
class _MisplacedTilde:
    """A `~word` after the first word of a value: systemd takes it for a name, not an inversion."""

    at: Assignment
    key: str
    word: str


class _UnitReading:
    """The exec context systemd builds from assignments, one at a time, with what a reader should be told."""

    def __init__(self, groups: SyscallGroups) -> None:
        self.groups = groups
        self.findings: list[LintFinding] = []
        self.misplaced: list[_MisplacedTilde] = []
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
        self.dynamic_user_at: Assignment | None = None  # the line that turned DynamicUser= on, while it is on
        self.switched_on: dict[str, Assignment] = {}  # the line that turned each seccomp switch on, while it is on
        self.last_at: dict[str, Assignment] = {}  # the last line of each setting

    def warn(self, at: Assignment, message: str) -> None:
        self.findings.append(LintFinding(at.source, at.line, message))

    def apply(self, at: Assignment) -> None:
        self.last_at[at.key] = at
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
                value = _boolean(at.value)
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
                value = _boolean(at.value)
                if value is None:
                    # Unlike most booleans, systemd takes a bad DynamicUser= as a fatal error.
                    self.warn(at, f"DynamicUser={at.value}: not a boolean: systemd will not start the unit")
                else:
                    self.dynamic_user_at = at if value else None
            case key if key in SECCOMP_SWITCHES:
                value = _boolean(at.value)
                if value is None:
                    self.warn(at, f"{key}={at.value}: not a boolean: systemd ignores the line")
                elif value:
                    self.switched_on[key] = at
                else:
                    self.switched_on.pop(key, None)

    def warn_allow_line_in_deny_list(self, at: Assignment, first: Assignment, items: str) -> None:
        self.warn(
            at,
            f"this line lists {items} to allow, but {first.source}:{first.line} made {at.key}= a deny-list (the "
            f"first assignment decides): systemd takes these {items} out of the deny-list instead",
        )

    def note_misplaced_tildes(self, at: Assignment, words: Sequence[str]) -> set[str]:
        misplaced = {word for word in words[1:] if word.startswith("~")}
        self.misplaced += [_MisplacedTilde(at, at.key, word) for word in sorted(misplaced)]
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
        words, broken = _split_words(at.value.removeprefix("~") if invert else at.value, unquote=False)
        misplaced = self.note_misplaced_tildes(at, words)
        for word in words:
            name, colon, errno_text = word.partition(":")
            errno_value: str | None = None
            if colon:
                errno_value = "kill" if errno_text == "kill" else _errno_name(errno_text)
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
        value = _errno_name(at.value)
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
        words, broken = _split_words(at.value, unquote=True)
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
        words, _ = _split_words(at.value.removeprefix("~"), unquote=True)
        misplaced = self.note_misplaced_tildes(at, words)
        added = 0
        for word in words:
            bit = _capability_bit(word)
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
        words, broken = _split_words(at.value.removeprefix("~"), unquote=True)
        misplaced = self.note_misplaced_tildes(at, words)
        for word in words:
            family = _family_name(word)
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
        value = _boolean(at.value)
        if value is not None:
            self.namespaces = set() if value else set(NAMESPACE_NAMES)
            return
        invert = at.value.startswith("~")
        words, broken = _split_words(at.value.removeprefix("~"), unquote=True)
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
            ambient_capabilities=_capability_names(self.ambient),
            address_families=self.family_rules(),
            namespaces=UNRESTRICTED
            if not self.restricts_namespaces()
            else NameSet(ListMode.ALLOW, frozenset(self.namespaces or ())),
            no_new_privileges=True if dynamic else self.no_new_privileges,
            user=self.user or (unit.name.rsplit(".", 1)[0] if dynamic else None),
            overrides=tuple(
                self.override(key, at) for key, at in sorted(self.switched_on.items()) if key in OVERRIDING_SETTINGS
            )
            + self.namespace_override(),
        )
        return dataclasses.replace(policy, no_new_privileges_implied_by=self.implied_no_new_privileges(policy))

    def implied_no_new_privileges(self, policy: Policy) -> str | None:
        """The seccomp setting that turns no-new-privileges on for a non-root user without CAP_SYS_ADMIN."""
        if policy.no_new_privileges or policy.user in (None, "root", "0"):
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
        names, capabilities = OVERRIDING_SETTINGS[key]
        refused = {each for name in names for each in (self.groups.expand(name) if name[0] == "@" else [name])}
        return Override(
            f"{key}={at.value}", f"{key}=no", at.source, at.line, frozenset(refused), frozenset(capabilities)
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
        return NameSet(ListMode.DENY, frozenset(abi.CAPABILITIES) - _capability_names(mask))
    return NameSet(ListMode.ALLOW, _capability_names(mask))


# ---------------------------------------------------------------------------------------------- lint of the result


def _lint_result(reading: _UnitReading, policy: Policy, local_abis: Sequence[str]) -> list[LintFinding]:
    findings = [_misplaced_tilde_finding(reading, policy, each, local_abis) for each in reading.misplaced]
    if reading.error_number_at is not None and policy.syscalls is None:
        at = reading.error_number_at
        findings.append(
            LintFinding(at.source, at.line, "SystemCallErrorNumber= has no effect: there is no SystemCallFilter=")
        )
    outside = policy.ambient_capabilities - {
        name for name in abi.CAPABILITIES if policy.capability_bounding.allows(name)
    }
    if outside and reading.ambient_at is not None:
        at = reading.ambient_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                f"AmbientCapabilities= holds {_short_list(outside)}, outside CapabilityBoundingSet=: the kernel "
                "refuses an ambient capability that is not in the bounding set (capabilities(7))",
            )
        )
    families_restricted = not policy.address_families.unrestricted
    x86_runs = "x86" in local_abis and (policy.architectures is None or "x86" in policy.architectures)
    if families_restricted and x86_runs and reading.families_at is not None:
        at = reading.families_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                "RestrictAddressFamilies= does not apply to 32-bit x86 programs (systemd cannot filter their "
                "socketcall()), and SystemCallArchitectures= lets them run: add SystemCallArchitectures=native unless "
                "the service runs 32-bit programs",
            )
        )
    if reading.dynamic_user_at is not None and reading.no_new_privileges is False and reading.no_new_privileges_at:
        at, dynamic = reading.no_new_privileges_at, reading.dynamic_user_at
        findings.append(
            LintFinding(
                at.source,
                at.line,
                f"NoNewPrivileges=no has no effect: DynamicUser=yes ({dynamic.source}:{dynamic.line}) turns "
                "NoNewPrivileges= on, and it cannot be turned off",
            )
        )
    return findings


def _misplaced_tilde_finding(
    reading: _UnitReading, policy: Policy, misplaced: _MisplacedTilde, local_abis: Sequence[str]
) -> LintFinding:
    at, word = misplaced.at, misplaced.word
    meant = word[1:]
    lead = (
        f"'{word}' is not the first word of the value: systemd inverts only when '~' is the first character, "
        f"so it takes '{word}' for a name"
    )
    match misplaced.key:
        case "SystemCallFilter":
            filter_ = policy.syscalls
            names = reading.groups.expand(meant) if meant.startswith("@") else frozenset({meant})
            allowed = sorted(
                name
                for name in names
                if (filter_ is None or filter_.allows(name)) and _exists_on(name, policy.architectures or local_abis)
            )
            outcome = (
                f"{meant} is not denied: {len(allowed)} of its syscalls stay allowed ({_short_list(allowed)})"
                if allowed
                else f"none of the syscalls of {meant} is allowed anyway"
            )
            message = (
                f"{lead}, finds no such syscall and ignores it; {outcome}. Write it on its own line: {at.key}={word}"
            )
        case "CapabilityBoundingSet" | "AmbientCapabilities":
            where = (
                policy.capability_bounding.allows(meant.upper())
                if at.key == "CapabilityBoundingSet"
                else (meant.upper() in policy.ambient_capabilities)
            )
            message = (
                f"{lead}, knows no such capability and ignores it without a warning; {meant} is "
                f"{'in' if where else 'not in'} the resulting set. Write it on its own line: {at.key}={word}"
            )
        case _:
            family = _family_name(meant) or meant
            state = "stays allowed" if policy.address_families.allows(family) else "is not allowed anyway"
            message = (
                f"{lead}, knows no such family and ignores it; {family} {state}. "
                f"Write it on its own line: {at.key}={word}"
            )
    return LintFinding(at.source, at.line, message)


def _near_miss_findings(assignments: Iterable[Assignment], exec_sections: frozenset[str]) -> list[LintFinding]:
    """Keys that look like one of the settings read here but are not what systemd knows: it ignores them."""
    findings = []
    lower = {key.lower(): key for key in SETTINGS}
    for at in assignments:
        if at.key in SETTINGS:
            if at.section not in exec_sections:
                findings.append(
                    LintFinding(
                        at.source,
                        at.line,
                        f"{at.key}= in [{at.section}]: systemd reads it only in "
                        f"[{'], ['.join(sorted(exec_sections))}], and ignores this line",
                    )
                )
            continue
        match = lower.get(at.key.lower()) or next(
            iter(difflib.get_close_matches(at.key, SETTINGS, n=1, cutoff=0.85)), None
        )
        if match:
            findings.append(
                LintFinding(
                    at.source,
                    at.line,
                    f"unknown key {at.key!r}: systemd ignores the line (keys are case-sensitive); "
                    f"did you mean {match}=?",
                )
            )
    return findings


# ---------------------------------------------------------------------------------------------- reading


def _exec_sections(path: Path) -> frozenset[str]:
    """The section a unit's exec settings belong to, by unit type; a lone drop-in names it by its directory."""
    suffix = path.suffix if path.suffix != ".conf" else Path(path.parent.name.removesuffix(".d")).suffix
    return frozenset([EXEC_SECTIONS[suffix]] if suffix in EXEC_SECTIONS else EXEC_SECTIONS.values())


def read_systemd_unit(path: Path, groups: SyscallGroups) -> Policy:
    """A unit file and its drop-ins read as systemd reads them, with lint findings; PolicyParseError when unreadable."""
    loaded = unit_files(path)
    files = [path, *loaded.drop_ins]
    exec_sections = _exec_sections(path)
    assignments: list[Assignment] = []
    findings: list[LintFinding] = []
    if loaded.overridden_by is not None:
        masked = os.path.realpath(loaded.overridden_by) == os.devnull
        findings.append(
            LintFinding(
                str(path),
                None,
                f"{loaded.overridden_by} masks the unit: systemd will not start it"
                if masked
                else f"systemd loads {loaded.overridden_by} instead of this file, which it overrides: give that one",
            )
        )
    for index, each in enumerate(files):
        text = _read_unit_text(each)
        if index == 0 and not text:
            raise PolicyParseError(
                f"{each}: empty: systemd treats an empty unit file as masked; give the unit that runs"
            )
        parsed = _parse_unit_text(text, str(each), exec_sections)
        if index == 0 and parsed.sections == 0:
            raise PolicyParseError(
                f"{each}: no [section] in it: not a systemd unit file; give a .service unit or drop-in"
            )
        assignments += parsed.assignments
        findings += parsed.findings
    reading = _UnitReading(groups)
    for at in assignments:
        if at.section in exec_sections:
            reading.apply(at)
    policy = reading.policy(path)
    local_abis = LOCAL_ABIS.get(syscalls.native_abi(), (syscalls.native_abi(),))
    findings += reading.findings + _near_miss_findings(assignments, exec_sections)
    findings += _lint_result(reading, policy, local_abis)
    order = {str(each): index for index, each in enumerate(files)}
    findings.sort(key=lambda finding: (order.get(finding.source, len(order)), finding.line or 0))
    return dataclasses.replace(policy, findings=tuple(findings))
