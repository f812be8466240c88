"""systemd's sandboxing settings: the lines of a plan (sandbox.py), how systemd 252 reads them back from a unit,
and what a deployed unit's settings would refuse of the runs, or could still tighten.

sandbox_lines(plan)               each setting as (key, value, why), value None for a setting left open
SandboxReading                    the settings a unit's assignments give, as systemd reads them (SandboxSettings)
sandbox_refusals(reading, plan)   what the unit would refuse, naming its line and the line to add or undo
sandbox_tightenings(reading, plan)  what it leaves open that no run needs, most dangerous first
"""

import dataclasses
import ipaddress
import posixpath
import re
from dataclasses import dataclass

from generators.danger import Danger
from generators.interface import SandboxSettings, SettingLine
from generators.profile import ENTRY_OPS, WRITE_OPS, Evidence, FileNeed, merge_evidence
from generators.sandbox import (
    MANAGED_TREES,
    PSEUDO_DEVICES,
    TEMPORARY_TREES,
    SandboxPlan,
    WritableRoot,
    is_under,
    nearest_unit_path,
    observed_paths,
    unit_can_hold,
    writable_roots,
)
from generators.systemd.groups import SyscallGroups
from generators.systemd.names import (
    BOOLEAN_SETTINGS,
    LEVELS,
    LIST_SETTINGS,
    OVERRIDING_SETTINGS,
    PATH_SETTINGS,
    USER_NAME,
    parse_boolean,
)
from profiler.trace import FileOp

# What leaving each open exposes, ranked as excess is: the danger table's levels.
DANGER: dict[str, Danger] = {
    "ProtectSystem": Danger.HIGH,
    "ProtectHome": Danger.HIGH,
    "ProtectKernelTunables": Danger.HIGH,
    "ProtectKernelModules": Danger.CRITICAL,
    "PrivateNetwork": Danger.HIGH,
    "IPAddressDeny": Danger.MEDIUM,
    "PrivateDevices": Danger.HIGH,
    "PrivateUsers": Danger.MEDIUM,
    "ProtectControlGroups": Danger.MEDIUM,
    "ProtectKernelLogs": Danger.MEDIUM,
    "ProtectClock": Danger.MEDIUM,
    "PrivateTmp": Danger.MEDIUM,
    "MemoryDenyWriteExecute": Danger.MEDIUM,
    "RestrictSUIDSGID": Danger.MEDIUM,
    "ProtectProc": Danger.MEDIUM,
}


def refused_by_settings(groups: SyscallGroups) -> dict[str, frozenset[str]]:
    """The syscalls each of ProtectClock= and its kin refuses on its own (OVERRIDING_SETTINGS), groups expanded."""
    return {
        key: frozenset(each for name in names for each in (groups.expand(name) if name[0] == "@" else [name]))
        for key, (names, _) in OVERRIDING_SETTINGS.items()
    }


def unit_path(path: str) -> str | None:
    """A path as a unit file writes it (quoted where it holds spaces or quotes, % doubled), or None where no
    unit line can hold it (a character that is not printable: a newline would start a line of its own)."""
    if not unit_can_hold(path):
        return None
    text = path.replace("%", "%%")
    if any(char in text for char in " \t\"'\\"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


# Where systemd 252 takes a DeviceAllow= path (valid_device_node_path in src/basic/path-util.c): "Invalid device
# node path, ignoring" for any other, a /sys one too.
DEVICE_TREES = ("/dev/", "/run/systemd/inaccessible/")


def device_path(path: str) -> str | None:
    """A device node's path as a DeviceAllow= line writes it, or None where no line can name it: a path no unit
    line holds, or one outside /dev, which systemd ignores."""
    return unit_path(path) if path.startswith("/dev/") else None


def _quoted_above(path: str) -> str:
    """The path as a unit line holds it, or the nearest directory above it that a line can hold."""
    quoted = unit_path(nearest_unit_path(path))
    assert quoted is not None
    return quoted


def _root_value(root: WritableRoot) -> str:
    """The value of the line that makes a root writable: a managed directory's plain name, or the path quoted."""
    return root.value if root.setting != "ReadWritePaths" else _quoted_above(root.path)


def sandbox_lines(plan: SandboxPlan) -> list[tuple[str, str | None, str]]:
    """(key, value, why) for each line: list settings start with an empty assignment, which discards what the
    unit set, since a drop-in's lines add to the unit's; a value None is a setting a run rules out."""
    lines: list[tuple[str, str | None, str]] = []
    written = {root.setting for root in plan.writable}
    for key in ("ReadWritePaths", *MANAGED_TREES.values()):
        if key in written:
            lines.append((key, "", ""))
    for root in plan.writable:
        writes = sorted({write.path for write in root.writes})
        shown = ", ".join(writes[:3]) + (f" (+{len(writes) - 3} more)" if len(writes) > 3 else "")
        wider = (
            f"; {root.path} itself cannot be written in a unit line"
            if nearest_unit_path(root.path) != root.path
            else ""
        )
        lines.append((root.setting, _root_value(root), f"written: {shown}{wider}{_not_managed(root)}"))
        if root.setting == "RuntimeDirectory":
            # Without it systemd removes /run/NAME when the service stops, which may be another program's too.
            lines.append(("RuntimeDirectoryPreserve", "yes", f"keeps {root.path} when the service stops"))
    # A device no line can name (a line break in its path, a node outside /dev) cannot be allowed, and any
    # DeviceAllow= line closes the default DevicePolicy=auto: the device policy is left open, with no DeviceAllow=.
    unnamed = next(
        (each for each in plan.settings if each.key == "DeviceAllow" and _unit_value(each.key, each.value) is None),
        None,
    )
    for setting in plan.settings:
        if unnamed and setting.key in ("DevicePolicy", "DeviceAllow"):
            if setting.key == "DevicePolicy":
                device = (unnamed.value or "").rsplit(" ", 1)[0]
                lines.append((setting.key, None, f"the device {device} cannot be named by DeviceAllow=: {unnamed.why}"))
            continue
        value = _unit_value(setting.key, setting.value)
        if setting.key in LIST_SETTINGS and value is not None and setting.key not in written:
            written.add(setting.key)
            lines.append((setting.key, "", ""))
        if value is None and setting.value is not None:
            lines.append((setting.key, None, f"{setting.value} cannot be written in a unit line: {setting.why}"))
        else:
            lines.append((setting.key, value, setting.why))
    return lines


def _not_managed(root: WritableRoot) -> str:
    """Why a path in a directory systemd would manage is a ReadWritePaths= entry instead. Without a '-' prefix: a
    host that lacks the directory fails the start (226/NAMESPACE) and names it, where with '-' the service would
    start and fail at its first write there (read-only file system), which is no start at all but later."""
    if root.not_managed is None:
        return ""
    line, directory = root.not_managed
    return (
        f"; not {line}: {directory} was there before the runs, and systemd would chown it and all in it to the "
        f"unit's user; a host without {root.path} fails the start until it is made"
    )


def _unit_value(key: str, value: str | None) -> str | None:
    """A setting's value as a unit line holds it: paths quoted (ExecPaths= the nearest directory a line can hold,
    which covers it), a user name only where it is one systemd takes as it is; None where no line can."""
    if key == "User" and value is not None:
        # The trace's to choose: a line break would start a line of its own, a % a specifier.
        return value if USER_NAME.fullmatch(value) else None
    if value is None or key not in PATH_SETTINGS:
        return value
    if key == "DeviceAllow":
        path, access = value.rsplit(" ", 1)
        quoted = device_path(path)
        return None if quoted is None else f"{quoted} {access}"
    if key == "NoExecPaths" and value != "/":
        # A mount of the unit's own (mounted_by_the_unit): '-' lets a host where it is missing (a CacheDirectory=
        # line taken out) start, as noexec of nothing guards nothing, where without it the start fails (226).
        return "-" + _quoted_above(value)
    return _quoted_above(value)


# ------------------------------------------------------------------------------------------------ reading

# The sandbox DynamicUser=yes turns on and a unit cannot turn off (ProtectHome= only where the unit leaves it off).
DYNAMIC_USER_IMPLIES = {
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "RestrictSUIDSGID": "yes",
}


_OCTAL_MODE = re.compile(r"[0-7]+")


class SandboxReading:
    """The sandboxing settings a unit's assignments give, applied one at a time as systemd applies them."""

    def __init__(self) -> None:
        self.levels: dict[str, SettingLine] = {}  # the last line of each setting that is on
        self.lists: dict[str, list[SettingLine]] = {}  # each entry, with its line
        self.unmodeled: dict[str, SettingLine] = {}  # the last line of each, while it is set

    def apply(self, key: str, value: str, source: str, line: int, words: list[str]) -> str | None:
        """Take one assignment of a sandboxing setting (words: its value split as systemd splits it); what is
        wrong with it where systemd ignores it, else None."""
        at = SettingLine(key, value, source, line)
        if key in LEVELS:
            level = _level(key, value)
            if level is None:
                return f"{key}={value}: not a value systemd knows for it: systemd ignores the line"
            self._set(at, level)
        elif key in BOOLEAN_SETTINGS:
            on = parse_boolean(value)
            if on is None:
                return f"{key}={value}: not a boolean: systemd ignores the line"
            self._set(at, "yes" if on else "no")
        elif key in LIST_SETTINGS:
            if not words:
                self.lists.pop(key, None)
            # One device and its access per line; one entry per word of the others.
            given = [(words[0], " ".join(words[1:]))] if key == "DeviceAllow" and words else [(w, "") for w in words]
            wrong = None
            for word, access in given:
                entry, ignored = _entry(key, word, access)
                if entry is None:
                    wrong = wrong or f"{key}={value}: {ignored}: systemd ignores it"
                else:
                    self.lists.setdefault(key, []).append(SettingLine(key, entry, source, line))
            return wrong
        else:  # UMask=: octal, at most 07777 (parse_mode); anything else, even empty, systemd ignores
            if not _OCTAL_MODE.fullmatch(value) or int(value, 8) > 0o7777:
                return f"{key}={value}: not a file mode (octal, at most 7777): systemd ignores the line"
            self.levels[key] = at
        return None

    def apply_unmodeled(self, key: str, value: str, source: str, line: int) -> None:
        """Take one assignment of a confining setting profiler does not model (names.UNMODELED_CONFINING)."""
        if value:
            self.unmodeled[key] = SettingLine(key, value, source, line)
        else:
            self.unmodeled.pop(key, None)  # an empty assignment resets it

    def _set(self, at: SettingLine, level: str) -> None:
        if level == LEVELS.get(at.key, ("no",))[0]:
            self.levels.pop(at.key, None)
        else:
            self.levels[at.key] = SettingLine(at.key, level, at.source, at.line)

    def settings(self, user: str | None) -> SandboxSettings:
        """The settings; user is the unit's User=. DynamicUser=yes beside User=NAME runs the service as NAME where
        NAME is a static user, as a user the runs ran as is, and is left out as a user; the sandbox it implies
        stays, whoever the service runs as (unit_patch_contexts in src/core/unit.c, systemd 252): ProtectSystem=
        strict, PrivateTmp=yes and RestrictSUIDSGID=yes whatever the unit says, ProtectHome=read-only where the
        unit leaves it off."""
        levels = dict(self.levels)
        dynamic = levels.get("DynamicUser")
        if dynamic is not None:
            for key, value in DYNAMIC_USER_IMPLIES.items():
                if key not in levels or (key != "ProtectHome" and levels[key].value != value):
                    levels[key] = dataclasses.replace(dynamic, key=key, value=value, implied_by=dynamic.where)
        levels = {key: at for key, at in levels.items() if not (user and key == "DynamicUser")}
        return SandboxSettings(
            tuple(levels[key] for key in sorted(levels)),
            tuple(entry for key in sorted(self.lists) for entry in self.lists[key]),
            tuple(self.unmodeled[key] for key in sorted(self.unmodeled)),
        )


def writable(settings: SandboxSettings, path: str) -> bool:
    """Whether a path ProtectSystem=strict made read-only is writable again by one of the unit's entries."""
    for setting, tree in [("ReadWritePaths", "/"), *((each, tree) for tree, each in MANAGED_TREES.items())]:
        for entry in settings.entries_of(setting):
            names = [entry.value] if setting == "ReadWritePaths" else entry.value.split(":")
            if any(is_under(path, posixpath.join(tree, name)) for name in names):
                return True
    return settings.value("PrivateTmp") == "yes" and any(is_under(path, tree) for tree in TEMPORARY_TREES)


def _level(key: str, value: str) -> str | None:
    boolean = parse_boolean(value)
    if key in ("ProtectSystem", "ProtectHome") and boolean is not None:
        return "yes" if boolean else "no"
    return value if value in LEVELS[key] else None


def _simplified(path: str) -> str | None:
    """A path as systemd's path_simplify leaves it (no //, /./ or trailing /), or None where it holds a .., which
    path_simplify_and_warn refuses as not normalised."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return None if ".." in parts else ("/" if path.startswith("/") else "") + "/".join(parts)


def _entry(key: str, word: str, access: str) -> tuple[str | None, str]:
    """An entry as the plan writes it: the prefixes of path lists (- ignore if missing, + under RootDirectory=)
    dropped, specifiers' %% as %, paths simplified as systemd simplifies them, a device's access given in full
    (none is rwm); or None, and why, for an entry systemd ignores (config_parse_exec_directories and
    config_parse_device_allow in src/core/load-fragment.c)."""
    entry = word.replace("%%", "%")
    if key == "TemporaryFileSystem":
        where, colon, options = entry.partition(":")  # PATH[:OPTIONS], ro among the options
        mount_point = _simplified(where)
        if not mount_point or not mount_point.startswith("/"):
            return None, f"{where} is not a normalised absolute path"
        return mount_point + colon + options, ""
    if key in ("ReadWritePaths", "ExecPaths", "NoExecPaths", "ReadOnlyPaths", "InaccessiblePaths"):
        # One - and then one +, in that order (config_parse_namespace_path_strv): +-/srv is not absolute.
        listed = _simplified(entry.removeprefix("-").removeprefix("+"))
        if not listed or not listed.startswith("/"):
            return None, f"{entry} is not a normalised absolute path"
        return listed, ""
    if key in MANAGED_TREES.values():
        # source:destination makes a symlink destination to source, each a directory name under the tree.
        names = [_simplified(name) for name in entry.split(":", 1)]
        if any(not name or name.startswith("/") for name in names):
            return None, f"{entry} is not a normalised relative path"
        return ":".join(name or "" for name in names), ""
    if key in ("IPAddressDeny", "IPAddressAllow"):
        # A name, or an address with or without a prefix length (config_parse_in_addr_prefixes); systemd ignores
        # any other word of the line ("Address prefix is invalid") and keeps the rest.
        if entry not in ("any", "localhost", "link-local", "multicast"):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                return None, f"{entry} is not an address or prefix"
        return entry, ""
    if key == "DeviceAllow":
        device = entry if entry.startswith(("char-", "block-")) else _simplified(entry)
        if not device or not device.startswith(("char-", "block-", *DEVICE_TREES)):
            return None, f"{entry} is not a device node path, nor char- or block- and a group"
        if not set(access) <= set("rwm"):
            return None, f"{access} are not device rights (r, w, m)"
        return f"{device} {access or 'rwm'}", ""
    return entry, ""


# ---------------------------------------------------------------------------------------------- comparing


@dataclass(frozen=True, slots=True)
class SandboxRefusal:
    """What a deployed setting would refuse of the runs, and the line that lets it through."""

    at: SettingLine
    refused: str  # the observation, as the plan names it
    fix: str  # the line to add or change
    evidence: Evidence | None = None  # of the observation


@dataclass(frozen=True, slots=True)
class SandboxTightening:
    """A setting the unit leaves open (or wider) that no run needs: a candidate, ranked like excess."""

    key: str
    value: str  # what the plan would write
    danger: Danger
    why: str


def _rank(key: str, value: str | None) -> int:
    if key in LEVELS:
        return LEVELS[key].index(value) if value in LEVELS[key] else 0
    return 0 if value in (None, "no") else 1


def sandbox_refusals(settings: SandboxSettings, plan: SandboxPlan) -> list[SandboxRefusal]:
    refusals = []
    for setting in plan.settings:
        at = next((each for each in settings.levels if each.key == setting.key), None)
        # DevicePolicy= refuses devices, each named by _device_refusals: strict refuses no more where no pseudo
        # device was opened.
        if at is None or setting.key in LIST_SETTINGS or setting.key in ("UMask", "User", "DevicePolicy"):
            continue
        if _rank(setting.key, at.value) > _rank(setting.key, setting.value):
            allowed = setting.value or LEVELS.get(setting.key, ("no",))[0]
            # What DynamicUser= implies, no line of the unit can lower.
            fix = "DynamicUser=no" if at.implied_by else f"{setting.key}={allowed}"
            refusals.append(SandboxRefusal(at, setting.why, fix, setting.evidence))
    if plan.value("IPAddressDeny") is None and "any" in (settings.value("IPAddressDeny") or "").split():
        at = settings.entries_of("IPAddressDeny")[-1]
        why = next(each.why for each in plan.settings if each.key == "IPAddressDeny")
        refusals.append(SandboxRefusal(at, why, "IPAddressDeny="))  # an empty IPAddressDeny= drops the list
    refusals += _device_refusals(settings, plan) + _exec_refusals(settings, plan) + _hiding_refusals(settings, plan)
    protect = next((each for each in settings.levels if each.key == "ProtectSystem"), None)
    for root in writable_roots(plan.files, private_tmp=settings.value("PrivateTmp") == "yes"):
        if protect is not None and _read_only_under(protect.value, root.path) and not writable(settings, root.path):
            first = min(root.writes, key=lambda write: write.path)
            programs = ", ".join(first.evidence.programs) or "the workload"
            refusals.append(
                SandboxRefusal(
                    protect,
                    f"the write to {first.path} by {programs}",
                    f"{root.setting}={_root_value(root)}",
                    root.evidence,
                )
            )
    return refusals


def _device_refusals(settings: SandboxSettings, plan: SandboxPlan) -> list[SandboxRefusal]:
    """The device nodes DevicePolicy=closed or strict refuses: those neither pseudo (closed) nor allowed."""
    policy = settings.line("DevicePolicy")
    allows = settings.entries_of("DeviceAllow")
    if policy is None and allows:
        # DevicePolicy=auto allows every device only where no DeviceAllow= line is given; with one, it is closed.
        policy = SettingLine("DevicePolicy", "closed", allows[0].source, allows[0].line, allows[0].where)
    if policy is None:
        return []
    # A plan that leaves the policy open (the runs made device nodes): no device policy at all lets them through.
    open_policy = next((each for each in plan.settings if each.key == "DevicePolicy" and each.value is None), None)
    if open_policy is not None:
        fixes = ["DevicePolicy=auto"] + (["DeviceAllow="] if allows else [])  # an empty DeviceAllow= drops the list
        return [SandboxRefusal(policy, open_policy.why, fix, open_policy.evidence) for fix in fixes]
    allowed: dict[str, str] = {}
    for entry in allows:  # path and access: the access has no space, the path may
        device, access = entry.value.rsplit(" ", 1)
        allowed[device] = allowed.get(device, "") + access
    refused: dict[str, tuple[SettingLine, list[FileNeed]]] = {}
    for need in plan.files:
        if need.error is not None or need.device is None:
            continue
        wanted = "w" if need.op in WRITE_OPS else "r"
        if not (policy.value == "closed" and need.path in PSEUDO_DEVICES) and wanted not in allowed.get(need.path, ""):
            quoted = device_path(need.path)
            # A device no line can name is let through by no device policy at all.
            fix = f"DeviceAllow={quoted} {wanted}" if quoted else "DevicePolicy=auto"
            refused.setdefault(fix, (policy, []))[1].append(need)
    return _grouped(refused)


def mounted_by_the_unit(settings: SandboxSettings) -> list[str]:
    """The paths systemd mounts for a unit's own settings (a writable path, a directory it manages, a private /tmp
    and /var/tmp, a read-only, inaccessible or tmpfs path): a NoExecPaths= entry above one does not reach it, since
    make_noexec remounts the entry's submounts with the namespace's other mount entries as a deny list
    (src/core/namespace.c, systemd 252; measured: a program copied into ReadWritePaths=, $STATE_DIRECTORY or the
    private /tmp runs under NoExecPaths=/, and fails with 126 once NoExecPaths= names that path)."""
    mounted = [
        entry.value.split(":", 1)[0]
        for key in ("ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem")
        for entry in settings.entries_of(key)
    ]
    return mounted + _managed_paths(settings) + (list(TEMPORARY_TREES) if settings.value("PrivateTmp") == "yes" else [])


def _managed_paths(settings: SandboxSettings) -> list[str]:
    """The directories a unit's StateDirectory= and its kin name: each side of a source:destination."""
    return [
        posixpath.join(tree, name)
        for tree, setting in MANAGED_TREES.items()
        for entry in settings.entries_of(setting)
        for name in entry.value.split(":")
    ]


def _barred_by(settings: SandboxSettings, path: str, mounted: list[str]) -> SettingLine | None:
    """The NoExecPaths= entry that makes a path not executable, or None, decided as _exec_refusals says systemd
    decides (mounted: mounted_by_the_unit)."""

    def reaches(entry: SettingLine) -> bool:
        return not any(
            is_under(path, mount) and mount != entry.value and is_under(mount, entry.value) for mount in mounted
        )

    above = [(entry, False) for entry in settings.entries_of("NoExecPaths") if is_under(path, entry.value)]
    above = [(entry, executable) for entry, executable in above if reaches(entry)]
    above += [(entry, True) for entry in settings.entries_of("ExecPaths") if is_under(path, entry.value)]
    if not above:
        return None
    deciding, executable = max(above, key=lambda pair: (len(pair[0].value), not pair[1]))
    return None if executable else deciding


def _exec_refusals(settings: SandboxSettings, plan: SandboxPlan) -> list[SandboxRefusal]:
    """What NoExecPaths= refuses to execute or map executable, one refusal per fix. The deepest entry above a
    path decides, of either setting (systemd mounts them shortest path first, so the deeper mount is the one
    seen), and of two at the same path NoExecPaths= (drop_duplicates in src/core/namespace.c keeps the first in
    mount_path_compare's order, NOEXEC before EXEC): ExecPaths=/usr does not open a NoExecPaths=/usr/bin. A
    NoExecPaths= entry does not reach a path on a mount of the unit's own below it (mounted_by_the_unit)."""
    mounted = mounted_by_the_unit(settings)
    refused: dict[str, tuple[SettingLine, list[FileNeed]]] = {}
    for need in plan.files:
        if need.error is not None or need.op not in (FileOp.EXEC, FileOp.MAP_EXEC):
            continue
        barred = _barred_by(settings, need.path, mounted)
        if barred is None:
            continue
        # The line that opens it again is deeper than the one that closes it: the directory (as deep as a line can
        # name it), else the file.
        directory = nearest_unit_path(posixpath.dirname(need.path))
        if len(directory) > len(barred.value):
            fix = f"ExecPaths={_quoted_above(directory)}"
        elif barred.value != need.path and unit_path(need.path) is not None:
            fix = f"ExecPaths={unit_path(need.path)}"
        else:
            fix = "NoExecPaths="  # an empty assignment drops the list: no deeper line can open its own path
        refused.setdefault(fix, (barred, []))[1].append(need)
    return _grouped(refused)


def _hiding_refusals(settings: SandboxSettings, plan: SandboxPlan) -> list[SandboxRefusal]:
    """What InaccessiblePaths=, TemporaryFileSystem= and ReadOnlyPaths= refuse of the runs (setup_namespace() in
    src/core/namespace.c, systemd 252): an inaccessible path hides all below it, even what another entry opens
    there again (drop_inaccessible); a tmpfs holds only what the runs made in it; a write below a read-only path
    needs a writable entry as deep or deeper (the deeper mount decides)."""
    made = {need.path for need in plan.files if need.error is None and need.op is FileOp.CREATE}
    opened = [entry.value for entry in settings.entries_of("ReadWritePaths")] + _managed_paths(settings)
    refused: dict[str, tuple[SettingLine, list[FileNeed]]] = {}
    for need in plan.files:
        if need.error is not None:
            continue
        # A write that adds or takes an entry needs the directory holding it; others need the path itself.
        needed = posixpath.dirname(need.path) if need.op in ENTRY_OPS else need.path
        hidden = [entry for entry in settings.entries_of("InaccessiblePaths") if is_under(need.path, entry.value)]
        if hidden:
            refused.setdefault("InaccessiblePaths=", (hidden[-1], []))[1].append(need)
            continue
        tmpfs = [
            entry
            for entry in settings.entries_of("TemporaryFileSystem")
            if is_under(need.path, entry.value.split(":")[0]) and need.path != entry.value.split(":")[0]
        ]
        if tmpfs:
            root, _, options = tmpfs[-1].value.partition(":")
            present = needed == root or any(is_under(needed, path) and is_under(path, root) for path in made)
            if not present or ("ro" in options.split(",") and need.op in WRITE_OPS):
                refused.setdefault("TemporaryFileSystem=", (tmpfs[-1], []))[1].append(need)
            continue
        if need.op not in WRITE_OPS:
            continue
        read_only = [entry for entry in settings.entries_of("ReadOnlyPaths") if is_under(needed, entry.value)]
        deepest = max(read_only, key=lambda entry: len(entry.value), default=None)
        if deepest and not any(is_under(needed, path) and len(path) > len(deepest.value) for path in opened):
            refused.setdefault(f"ReadWritePaths={_quoted_above(needed)}", (deepest, []))[1].append(need)
    return _grouped(refused)


def _grouped(refused: dict[str, tuple[SettingLine, list[FileNeed]]]) -> list[SandboxRefusal]:
    """A refusal per fix: the first path it lets through, the programs of all."""
    refusals = []
    for fix, (at, needs) in sorted(refused.items()):
        evidence = merge_evidence(need.evidence for need in needs)
        programs = ", ".join(evidence.programs) or "the workload"
        refusals.append(SandboxRefusal(at, f"the {observed_paths(needs)} by {programs}", fix, evidence))
    return refusals


def _read_only_under(level: str, path: str) -> bool:
    """Whether ProtectSystem=LEVEL makes path read-only (systemd.exec(5)): yes /usr, /boot and /efi; full also
    /etc; strict all but /dev, /proc and /sys."""
    trees = {"yes": ("/usr", "/boot", "/efi"), "full": ("/usr", "/boot", "/efi", "/etc")}.get(level)
    if trees is None:
        return not any(is_under(path, tree) for tree in ("/dev", "/proc", "/sys"))
    return any(is_under(path, tree) for tree in trees)


def sandbox_tightenings(settings: SandboxSettings, plan: SandboxPlan) -> list[SandboxTightening]:
    found = []
    for setting in plan.settings:
        if setting.value is None or setting.key in LIST_SETTINGS or setting.key == "User":
            continue
        deployed = settings.value(setting.key)
        if setting.key == "UMask":
            looser = deployed is None or int(deployed, 8) & 0o077 != 0o077
        else:
            looser = _rank(setting.key, deployed) < _rank(setting.key, setting.value)
        if looser:
            found.append(
                SandboxTightening(setting.key, setting.value, DANGER.get(setting.key, Danger.LOW), setting.why)
            )
    if plan.value("IPAddressDeny") == "any" and settings.value("IPAddressDeny") is None:
        found.append(SandboxTightening("IPAddressDeny", "any", DANGER["IPAddressDeny"], "no address beyond loopback"))
    if plan.value("NoExecPaths") == "/" and not settings.entries_of("NoExecPaths"):
        found.append(
            SandboxTightening(
                "NoExecPaths", "/", Danger.LOW, "nothing was executed but from the directories ExecPaths= would name"
            )
        )
    # A writable path no NoExecPaths= entry reaches (mounted_by_the_unit) is where a dropped program would run from.
    mounted = mounted_by_the_unit(settings)
    for setting in plan.settings:
        path = setting.value if setting.key == "NoExecPaths" and setting.value != "/" else None
        if path is not None and not _barred_by(settings, path, mounted):
            found.append(SandboxTightening("NoExecPaths", path, Danger.MEDIUM, setting.why))
    for tree, key in MANAGED_TREES.items():
        for entry in settings.entries_of(key):
            directory = posixpath.join(tree, entry.value.split(":", 1)[0])
            for root in plan.writable:
                if root.not_managed is not None and root.not_managed[1] == directory:
                    found.append(
                        SandboxTightening(
                            "ReadWritePaths",
                            _root_value(root),
                            Danger.HIGH,
                            f"{entry.where} has systemd chown {directory} and all in it to the unit's user at start, "
                            "and it was there before the runs: another program's, or a deployment's before them",
                        )
                    )
    needed = {root.path for root in plan.writable}
    for entry in settings.entries_of("ReadWritePaths"):
        if not any(is_under(path, entry.value) for path in needed):
            found.append(
                SandboxTightening(
                    "ReadWritePaths", f"-{entry.value}", Danger.MEDIUM, f"{entry.where} opens what no run wrote"
                )
            )
    return sorted(found, key=lambda item: (-item.danger, item.key))
