"""systemd's syscall groups: read from systemd-analyze, or from the table committed from it."""

import subprocess
from types import MappingProxyType

import pytest

from generators.systemd.groups import (
    IMPLIED_GROUP,
    LISTING_COMMAND,
    SyscallGroups,
    committed_syscall_groups,
    committed_table_text,
    installed_syscall_groups,
    parse_listing,
)

LISTING = """@default
    # System calls that are always permitted
    brk
    exit

@basic-io
    # Basic IO
    read
    write

@system-service
    # General system service operations
    @basic-io
    @default
    openat

# Ungrouped System Calls (known but not included in any of the groups except @known):
#   kern_features
"""


def test_groups_are_read_from_the_listing_systemd_analyze_prints() -> None:
    assert parse_listing(LISTING) == {
        "@default": ("brk", "exit"),
        "@basic-io": ("read", "write"),
        "@system-service": ("@basic-io", "@default", "openat"),
    }


def test_groups_expand_the_groups_they_include() -> None:
    groups = SyscallGroups("test", "test", MappingProxyType(parse_listing(LISTING)))
    assert groups.expand("@system-service") == {"brk", "exit", "read", "write", "openat"}
    assert groups.expand("@nosuchgroup") == frozenset()


def test_a_cycle_of_groups_ends() -> None:
    groups = SyscallGroups("test", "test", MappingProxyType({"@a": ("@b", "read"), "@b": ("@a", "write")}))
    assert groups.expand("@a") == {"read", "write"}


def test_the_committed_table_names_the_systemd_that_made_it() -> None:
    groups = committed_syscall_groups()
    assert groups.systemd_version.startswith("252 ")
    assert IMPLIED_GROUP in groups and groups.expand("@system-service") >= groups.expand(IMPLIED_GROUP)
    assert len(groups.members) == 29


def test_the_committed_table_is_its_own_text() -> None:
    groups = committed_syscall_groups()
    assert parse_listing(committed_table_text(groups)) == dict(groups.members)


def test_without_systemd_analyze_the_committed_table_stands_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert installed_syscall_groups() is None


@pytest.mark.usefixtures("systemd_analyze")
def test_the_committed_table_matches_the_installed_systemd_of_its_version() -> None:
    installed = installed_syscall_groups()
    committed = committed_syscall_groups()
    assert installed is not None
    if installed.systemd_version.split()[0] != committed.systemd_version.split()[0]:
        pytest.skip(f"systemd {installed.systemd_version} is installed; the table is of {committed.systemd_version}")
    assert dict(installed.members) == dict(committed.members)


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("group", sorted(committed_syscall_groups().members))
def test_each_group_is_what_systemd_analyze_lists_for_it(group: str) -> None:
    """`systemd-analyze syscall-filter GROUP` prints the group alone: its names, and the groups it includes."""
    listing = subprocess.run([*LISTING_COMMAND, group], capture_output=True, text=True, check=True).stdout
    members = parse_listing(listing)[group]
    groups = committed_syscall_groups()
    nested = frozenset().union(*(groups.expand(each) for each in members if each.startswith("@")))
    assert groups.expand(group) == {each for each in members if not each.startswith("@")} | nested
