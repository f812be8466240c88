"""systemd's sandboxing settings: the lines of a plan (sandbox.py), how systemd 252 reads them back from a unit,
and what a deployed unit's settings would refuse of the runs, or could still tighten.

sandbox_lines(plan)               each setting as (key, value, why), value None for a setting left open
SandboxReading                    the settings a unit's assignments give, as systemd reads them
sandbox_refusals(reading, plan)   what the unit would refuse, naming its line and the line to add or undo
sandbox_tightenings(reading, plan)  what it leaves open that no run needs, most dangerous first
"""

import posixpath
from dataclasses import dataclass, field

from generators.danger import Danger
from generators.sandbox import MANAGED_TREES, TEMPORARY_TREES, SandboxPlan, WritableRoot, is_under, writable_roots
from generators.systemd.names import parse_boolean

# Each setting's values from the most open to the strictest; the first is what systemd does without the line.
LEVELS: dict[str, tuple[str, ...]] = {
    "ProtectSystem": ("no", "yes", "full", "strict"),
    "ProtectHome": ("no", "read-only", "tmpfs", "yes"),
    "ProtectProc": ("default", "ptraceable", "invisible", "noaccess"),
    "ProcSubset": ("all", "pid"),
    "RuntimeDirectoryPreserve": ("no", "restart", "yes"),
}
BOOLEAN_SETTINGS = (
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "PrivateMounts",
    "MemoryDenyWriteExecute",
    "LockPersonality",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "PrivateNetwork",
    "PrivateUsers",
)
LIST_SETTINGS = ("ReadWritePaths", *MANAGED_TREES.values(), "IPAddressDeny", "IPAddressAllow")
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


def unit_path(path: str) -> str | None:
    """A path as a unit file writes it (quoted where it holds spaces or quotes, % doubled), or None where no
    unit line can hold it (a character that is not printable: a newline would start a line of its own)."""
    if not path.isprintable() or not path.startswith("/"):
        return None
    text = path.replace("%", "%%")
    if any(char in text for char in " \t\"'\\"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _expressible(root: WritableRoot) -> str:
    """The root's path, or the nearest directory above it that a unit line can hold (which covers it too)."""
    path = root.path
    while unit_path(path) is None:
        path = posixpath.dirname(path)
    return path


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
        path = _expressible(root)
        wider = f"; {root.path} itself cannot be written in a unit line" if path != root.path else ""
        value = root.value if root.setting != "ReadWritePaths" else unit_path(path)
        assert value is not None
        lines.append((root.setting, value, f"{root.setting}={root.value}: written: {shown}{wider}"))
        if root.setting == "RuntimeDirectory":
            # Without it systemd removes /run/NAME when the service stops, which may be another program's too.
            lines.append(("RuntimeDirectoryPreserve", "yes", f"keeps {root.path} when the service stops"))
    for setting in plan.settings:
        if setting.key in LIST_SETTINGS and setting.value is not None:
            lines.append((setting.key, "", ""))
        lines.append((setting.key, setting.value, setting.why))
    return lines


# ------------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class SettingLine:
    key: str
    value: str
    source: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.key}={self.value} ({self.source}:{self.line})"


@dataclass(slots=True)
class SandboxReading:
    """The sandboxing settings a unit's assignments give, applied one at a time as systemd applies them."""

    levels: dict[str, SettingLine] = field(default_factory=dict)  # the last line of each setting that is on
    lists: dict[str, list[tuple[str, SettingLine]]] = field(default_factory=dict)  # entries, with their line
    findings: list[tuple[SettingLine, str]] = field(default_factory=list)

    def apply(self, key: str, value: str, source: str, line: int, words: list[str]) -> bool:
        """Take one assignment (words: its value split as systemd splits it); False for a key not modelled."""
        at = SettingLine(key, value, source, line)
        if key in LEVELS:
            level = _level(key, value)
            if level is None:
                self.findings.append((at, f"{key}={value}: not a value systemd knows: it ignores the line"))
            else:
                self._set(at, level)
        elif key in BOOLEAN_SETTINGS:
            on = parse_boolean(value)
            if on is None:
                self.findings.append((at, f"{key}={value}: not a boolean: systemd ignores the line"))
            else:
                self._set(at, "yes" if on else "no")
        elif key == "UMask":
            self._set(at, value)
        elif key in LIST_SETTINGS:
            if not words:
                self.lists.pop(key, None)
            else:
                self.lists.setdefault(key, []).extend((_entry(key, word), at) for word in words)
        else:
            return False
        return True

    def _set(self, at: SettingLine, level: str) -> None:
        if level in ("no", "default", "all") and at.key != "UMask":
            self.levels.pop(at.key, None)
        else:
            self.levels[at.key] = SettingLine(at.key, level, at.source, at.line)

    def value(self, key: str) -> str | None:
        """The setting's value as the plan writes it, or None where the unit leaves it as systemd's default."""
        if key in LIST_SETTINGS:
            return " ".join(entry for entry, _ in self.lists.get(key, ())) or None
        at = self.levels.get(key)
        return at.value if at else None

    def writable(self, path: str) -> bool:
        """Whether a path ProtectSystem=strict made read-only is writable again by one of the unit's entries."""
        for setting, tree in [("ReadWritePaths", "/"), *((each, tree) for tree, each in MANAGED_TREES.items())]:
            for entry, _ in self.lists.get(setting, ()):
                if is_under(path, entry if setting == "ReadWritePaths" else posixpath.join(tree, entry)):
                    return True
        return self.value("PrivateTmp") == "yes" and any(is_under(path, tree) for tree in TEMPORARY_TREES)


def _level(key: str, value: str) -> str | None:
    boolean = parse_boolean(value)
    if key in ("ProtectSystem", "ProtectHome") and boolean is not None:
        return "yes" if boolean else "no"
    return value if value in LEVELS[key] else None


def _entry(key: str, word: str) -> str:
    """An entry as the plan writes it: ReadWritePaths= prefixes (- ignore if missing, + under RootDirectory=)
    dropped, specifiers' %% as %."""
    entry = word.replace("%%", "%")
    return entry.lstrip("-+") if key == "ReadWritePaths" else entry


# ---------------------------------------------------------------------------------------------- comparing


@dataclass(frozen=True, slots=True)
class SandboxRefusal:
    """What a deployed setting would refuse of the runs, and the line that lets it through."""

    at: SettingLine
    refused: str  # the observation, as the plan names it
    fix: str  # the line to add or change


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


def sandbox_refusals(reading: SandboxReading, plan: SandboxPlan) -> list[SandboxRefusal]:
    refusals = []
    for setting in plan.settings:
        at = reading.levels.get(setting.key)
        if at is None or setting.key in LIST_SETTINGS or setting.key in ("UMask", "User"):
            continue
        if _rank(setting.key, at.value) > _rank(setting.key, setting.value):
            allowed = setting.value or LEVELS.get(setting.key, ("no",))[0]
            refusals.append(SandboxRefusal(at, setting.why, f"{setting.key}={allowed}"))
    if plan.value("IPAddressDeny") is None and "any" in (reading.value("IPAddressDeny") or "").split():
        at = reading.lists["IPAddressDeny"][-1][1]
        why = next(each.why for each in plan.settings if each.key == "IPAddressDeny")
        refusals.append(SandboxRefusal(at, why, "IPAddressDeny="))
    protect = reading.levels.get("ProtectSystem")
    for root in writable_roots(plan.files, private_tmp=reading.value("PrivateTmp") == "yes"):
        if protect is not None and _read_only_under(protect.value, root.path) and not reading.writable(root.path):
            first = min(root.writes, key=lambda write: write.path)
            programs = ", ".join(first.evidence.programs) or "the workload"
            refusals.append(
                SandboxRefusal(
                    protect,
                    f"the write to {first.path} by {programs}",
                    f"{root.setting}={root.value}",
                )
            )
    return refusals


def _read_only_under(level: str, path: str) -> bool:
    """Whether ProtectSystem=LEVEL makes path read-only (systemd.exec(5)): yes /usr, /boot and /efi; full also
    /etc; strict all but /dev, /proc and /sys."""
    trees = {"yes": ("/usr", "/boot", "/efi"), "full": ("/usr", "/boot", "/efi", "/etc")}.get(level)
    if trees is None:
        return not any(is_under(path, tree) for tree in ("/dev", "/proc", "/sys"))
    return any(is_under(path, tree) for tree in trees)


def sandbox_tightenings(reading: SandboxReading, plan: SandboxPlan) -> list[SandboxTightening]:
    found = []
    for setting in plan.settings:
        if setting.value is None or setting.key in LIST_SETTINGS or setting.key == "User":
            continue
        deployed = reading.value(setting.key)
        if setting.key == "UMask":
            looser = deployed is None or int(deployed, 8) & 0o077 != 0o077
        else:
            looser = _rank(setting.key, deployed) < _rank(setting.key, setting.value)
        if looser:
            found.append(
                SandboxTightening(setting.key, setting.value, DANGER.get(setting.key, Danger.LOW), setting.why)
            )
    if plan.value("IPAddressDeny") == "any" and reading.value("IPAddressDeny") is None:
        found.append(SandboxTightening("IPAddressDeny", "any", DANGER["IPAddressDeny"], "no address beyond loopback"))
    needed = {root.path for root in plan.writable}
    for entry, at in reading.lists.get("ReadWritePaths", ()):
        if not any(is_under(path, entry) for path in needed):
            found.append(
                SandboxTightening("ReadWritePaths", f"-{entry}", Danger.MEDIUM, f"{at.where} opens what no run wrote")
            )
    return sorted(found, key=lambda item: (-item.danger, item.key))
