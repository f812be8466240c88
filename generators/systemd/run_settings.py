"""The unit's settings `profiler run` applies beside the Policy's lists (file system, network, group), and the rest.

A unit and its drop-ins are read as the systemd reader reads them; each setting keeps the value of its last
assignment, as systemd's does (an empty ReadWritePaths= resets the list). Settings of the unit that confine
and that `run` does not apply are named, so that a user is never told a unit is enforced when part of it is not.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from generators.systemd.dropins import unit_files
from generators.systemd.names import SETTINGS, parse_boolean
from generators.systemd.unit_syntax import Assignment, exec_sections_of, parse_unit_text, read_unit_text, split_words
from profiler.errors import PolicyParseError

# Read here; the lists and the user come through the Policy.
SANDBOX_SETTINGS = (
    "Group",
    "PrivateTmp",
    "PrivateDevices",
    "PrivateNetwork",
    "ProtectSystem",
    "ProtectHome",
    "ReadWritePaths",
)
# Settings that confine a service which `run` does not apply: named in its report.
_CONFINING = re.compile(
    r"(Protect|Private|Restrict|Inaccessible|ReadOnly|ExecPaths|NoExecPaths|TemporaryFileSystem|Bind|Device|"
    r"IPAddress|MemoryDenyWriteExecute|LockPersonality|SecureBits|RemoveIPC|DynamicUser|SystemCallLog|"
    r"SupplementaryGroups|RootDirectory|RootImage|UMask|Personality|KeyringMode|NetworkNamespacePath|"
    r"IPCNamespacePath|ProcSubset|Limit).*"
)


@dataclass(frozen=True, slots=True)
class UnitSandbox:
    group: str | None = None
    private_tmp: bool = False
    private_devices: bool = False
    private_network: bool = False
    protect_system: str = "no"  # no, yes, full, strict
    protect_home: str = "no"  # no, yes, read-only, tmpfs
    read_write_paths: tuple[str, ...] = ()  # as written: a leading '-' means a missing path is ignored
    not_applied: tuple[str, ...] = ()  # Key=value (file:line) of confining settings run does not apply


_CHOICES = {"ProtectSystem": ("yes", "full", "strict"), "ProtectHome": ("yes", "read-only", "tmpfs")}


def _choice(at: Assignment) -> str:
    value = parse_boolean(at.value)
    if value is not None:
        return "yes" if value else "no"
    if at.value in _CHOICES[at.key]:
        return at.value
    raise PolicyParseError(
        f"{at.source}:{at.line}: {at.key}={at.value}: not one of yes, no, {', '.join(_CHOICES[at.key][1:])}"
    )


def _flag(at: Assignment) -> bool:
    value = parse_boolean(at.value)
    if value is None:
        raise PolicyParseError(f"{at.source}:{at.line}: {at.key}={at.value}: not a boolean")
    return value


def read_unit_sandbox(path: Path) -> UnitSandbox:
    """The sandbox settings of a unit file and its drop-ins; PolicyParseError where a value is not systemd's."""
    exec_sections = exec_sections_of(path)
    values: dict[str, object] = {}
    paths: list[str] = []
    not_applied: dict[str, str] = {}
    for each in [path, *unit_files(path).drop_ins]:
        for at in parse_unit_text(read_unit_text(each), str(each), exec_sections).assignments:
            if at.section not in exec_sections:
                continue
            match at.key:
                case "Group":
                    values["group"] = at.value or None
                case "PrivateTmp" | "PrivateDevices" | "PrivateNetwork":
                    values[at.key] = _flag(at)
                case "ProtectSystem" | "ProtectHome":
                    values[at.key] = _choice(at)
                case "ReadWritePaths":
                    words, _ = split_words(at.value, unquote=True)
                    paths = paths + words if words else []
                    for word in words:
                        if not word.lstrip("-+").startswith("/"):
                            raise PolicyParseError(
                                f"{at.source}:{at.line}: ReadWritePaths={word}: not an absolute path"
                            )
                case key if key not in SETTINGS and _CONFINING.fullmatch(key):
                    not_applied[key] = f"{key}={at.value} ({at.source}:{at.line})"
    return UnitSandbox(
        group=values.get("group"),  # type: ignore[arg-type]
        private_tmp=values.get("PrivateTmp", False) is True,
        private_devices=values.get("PrivateDevices", False) is True,
        private_network=values.get("PrivateNetwork", False) is True,
        protect_system=str(values.get("ProtectSystem", "no")),
        protect_home=str(values.get("ProtectHome", "no")),
        read_write_paths=tuple(paths),
        not_applied=tuple(text for key, text in sorted(not_applied.items()) if key not in SANDBOX_SETTINGS),
    )
