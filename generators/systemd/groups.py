"""systemd's syscall groups for SystemCallFilter= (@default, @system-service, ...): live, or from the committed table.

The groups change between systemd versions, so the ones that matter are those of the systemd that will read the
policy. `systemd-analyze syscall-filter` prints them when systemd is installed; elsewhere the table committed in
generators/data/, generated from it, stands in and says which systemd version produced it.

Regenerate the committed table on a machine with the systemd you target:
    python -m generators.systemd.groups > generators/data/systemd-syscall-groups.txt
"""

import functools
import importlib.resources
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

COMMITTED_TABLE = "systemd-syscall-groups.txt"
LISTING_COMMAND = ("systemd-analyze", "syscall-filter", "--no-pager")
VERSION_COMMAND = ("systemd-analyze", "--version")
_VERSION_KEY = "# systemd: "
# @default is added to every allow-list; @known holds every syscall systemd knows. Neither is a group
# a drop-in should name to allow what a workload used.
IMPLIED_GROUP = "@default"
ALL_KNOWN_GROUP = "@known"


@dataclass(frozen=True, slots=True)
class SyscallGroups:
    """The groups of one systemd version: each group's direct members, syscall names and @groups."""

    systemd_version: str  # such as "252 (252.38-1~deb12u1)"
    origin: str  # the command or the committed file they were read from
    members: Mapping[str, tuple[str, ...]]

    def __contains__(self, group: str) -> bool:
        return group in self.members

    def expand(self, group: str) -> frozenset[str]:
        """The syscall names of a group, its nested groups expanded (groups include groups)."""
        names: set[str] = set()
        pending, seen = [group], {group}
        while pending:
            for member in self.members.get(pending.pop(), ()):
                if not member.startswith("@"):
                    names.add(member)
                elif member not in seen:
                    seen.add(member)
                    pending.append(member)
        return frozenset(names)

    def describe(self) -> str:
        return f"systemd {self.systemd_version}, from {self.origin}"


def parse_listing(text: str) -> dict[str, tuple[str, ...]]:
    """Groups from the text `systemd-analyze syscall-filter` prints (or the committed table, which is the same).

    A group is a line "@name", then indented lines: a "# description", then its members, up to a blank line.
    Lines starting with "#" in the first column (the listing's trailing sections of ungrouped syscalls, which
    depend on the local kernel, and the table's header) belong to no group.
    """
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif not line.strip() or not line[0].isspace():
            current = None
        elif current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
    return {name: tuple(members) for name, members in groups.items()}


def _outputs(*commands: tuple[str, ...]) -> list[str | None]:
    """What each command printed, None where it failed; they run side by side (a command such as check waits on
    both: 6-20 ms each here)."""
    started: list[subprocess.Popen[str] | None] = []
    for command in commands:
        try:
            started.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        except OSError:
            started.append(None)
    outputs: list[str | None] = []
    for process in started:
        if process is None:
            outputs.append(None)
            continue
        with process:
            try:
                stdout, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout = None
            outputs.append(stdout if process.returncode == 0 else None)
    return outputs


def installed_syscall_groups() -> SyscallGroups | None:
    """The groups of the systemd installed here, or None where systemd-analyze is missing or fails."""
    listing, version = _outputs(LISTING_COMMAND, VERSION_COMMAND)
    if listing is None or version is None:
        return None
    groups = parse_listing(listing)
    if IMPLIED_GROUP not in groups:
        return None
    first_line = version.splitlines()[0] if version.strip() else "systemd unknown"
    return SyscallGroups(first_line.removeprefix("systemd "), " ".join(LISTING_COMMAND[:2]), MappingProxyType(groups))


def committed_syscall_groups() -> SyscallGroups:
    """The groups of the table committed with profiler, with the systemd version that produced it."""
    text = importlib.resources.files("generators").joinpath("data", COMMITTED_TABLE).read_text(encoding="utf-8")
    version = next(line.removeprefix(_VERSION_KEY) for line in text.splitlines() if line.startswith(_VERSION_KEY))
    return SyscallGroups(version, f"generators/data/{COMMITTED_TABLE}", MappingProxyType(parse_listing(text)))


@functools.cache
def syscall_groups() -> SyscallGroups:
    """The installed systemd's groups where systemd-analyze runs, else the committed table."""
    return installed_syscall_groups() or committed_syscall_groups()


def committed_table_text(groups: SyscallGroups) -> str:
    """The text of the committed table for these groups: a header, then the listing's group blocks."""
    header = [
        "# systemd's syscall groups for SystemCallFilter=, read where systemd-analyze is not installed.",
        f"{_VERSION_KEY}{groups.systemd_version}",
        f"# Generated with: python -m generators.systemd.groups > generators/data/{COMMITTED_TABLE}",
        f"# which keeps the group blocks of: {' '.join(LISTING_COMMAND)}",
        "",
    ]
    blocks = [
        f"{name}\n" + "".join(f"    {member}\n" for member in members) for name, members in groups.members.items()
    ]
    return "\n".join(header) + "\n".join(blocks)


def main() -> int:
    groups = installed_syscall_groups()
    if groups is None:
        print("systemd-analyze syscall-filter is not available here: install systemd", file=sys.stderr)
        return 2
    sys.stdout.write(committed_table_text(groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
