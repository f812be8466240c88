"""Which files make up a unit as systemd loads it: the unit file, then its drop-ins in systemd's order.

systemd 252 (src/shared/dropin.c, src/basic/conf-files.c) looks for drop-ins in `NAME.d/`, in the directory of
the unit's template (`foo@.service.d/`), in one directory per dash prefix of its name (`foo-bar-.service.d/`,
`foo-.service.d/`, so that more specific ones come first), and last in the directory of its type
(`service.d/`), each in every directory of the unit search path. A drop-in's file name decides: of files with
one name the first found wins (an empty one, or a link to /dev/null, masks the others), and the winners apply
in the order of their names.

A unit inside one of the search path's directories (under / or under the root of an image) gets the drop-ins of
them all, as the host that boots that root would apply them: `systemctl edit` writes its drop-in to
/etc/systemd/system whatever directory holds the unit. A unit anywhere else, such as in a repository, gets only
the drop-ins next to it.
"""

import os
from dataclasses import dataclass
from pathlib import Path

# The system manager's unit search path of systemd 252, in priority order (`systemd-analyze unit-paths`).
SYSTEM_UNIT_PATH = (
    "etc/systemd/system.control",
    "run/systemd/system.control",
    "run/systemd/transient",
    "run/systemd/generator.early",
    "etc/systemd/system",
    "etc/systemd/system.attached",
    "run/systemd/system",
    "run/systemd/system.attached",
    "run/systemd/generator",
    "usr/local/lib/systemd/system",
    "lib/systemd/system",
    "usr/lib/systemd/system",
    "run/systemd/generator.late",
)


@dataclass(frozen=True, slots=True)
class UnitFiles:
    drop_ins: tuple[Path, ...]  # in the order systemd applies them
    overridden_by: Path | None  # a unit file of the same name that systemd loads instead of this one


def unit_files(unit: Path) -> UnitFiles:
    """The drop-ins of a unit file; a drop-in given alone (a .conf file) has none."""
    if unit.suffix == ".conf":
        return UnitFiles((), None)
    search_path = _search_path(unit)
    if search_path is None:
        return UnitFiles(_winning_drop_ins(_drop_in_dirs(unit.name, [unit.parent])), None)
    first = next((directory / unit.name for directory in search_path if (directory / unit.name).exists()), None)
    overridden_by = first if first is not None and not _same_file(first, unit) else None
    return UnitFiles(_winning_drop_ins(_drop_in_dirs(unit.name, search_path)), overridden_by)


def _search_path(unit: Path) -> list[Path] | None:
    """The search path under the root whose unit directory holds the unit, or None outside them all."""
    directory = unit.parent.absolute().as_posix()
    for each in SYSTEM_UNIT_PATH:
        if directory == f"/{each}" or directory.endswith(f"/{each}"):
            root = Path(directory.removesuffix(each) or "/")
            return [root / entry for entry in SYSTEM_UNIT_PATH]
    return None


def _drop_in_dirs(name: str, search_path: list[Path]) -> list[Path]:
    names = drop_in_names(name)
    unit_type = name.rpartition(".")[2]
    return [directory / f"{each}.d" for directory in search_path for each in names] + [
        directory / f"{unit_type}.d" for directory in search_path
    ]


def drop_in_names(name: str) -> list[str]:
    """The name, its template, then its dash prefixes, longest first, each with its own template (dropin.c)."""
    stem, _, unit_type = name.rpartition(".")
    prefix, at, instance = stem.partition("@")
    names = [name]
    if at and instance:
        names += drop_in_names(f"{prefix}@.{unit_type}")
    chopped = False
    while True:
        dash = prefix.rfind("-")
        if dash <= 0:  # no dash, or only a leading one
            return names
        if dash + 1 < len(prefix) or chopped:
            prefix = prefix[: dash + 1]
            break
        prefix, chopped = prefix[:dash], True  # a trailing dash is chopped, once
    return names + drop_in_names(f"{prefix}{at}{instance}.{unit_type}")


def _winning_drop_ins(directories: list[Path]) -> tuple[Path, ...]:
    winners: dict[str, Path | None] = {}  # None: masked
    for directory in directories:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".conf") or entry.name in winners:
                continue
            path = Path(entry.path)
            # realpath, unlike Path.resolve, does not raise on a symlink loop (systemd skips such a file too).
            if os.path.realpath(path) == os.devnull or (path.is_file() and path.stat().st_size == 0):
                winners[entry.name] = None
            elif path.is_file():
                winners[entry.name] = path
    return tuple(path for _, path in sorted(winners.items()) if path is not None)


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False
