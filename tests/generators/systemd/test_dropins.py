"""Which drop-ins apply to a unit, and in which order: systemd-analyze, run on a root tree, is the oracle.

Drop-ins are placed in every kind of directory systemd looks in (the unit's own `NAME.d/`, a dash prefix's
`web-.service.d/`, the type's `service.d/`) across the unit search path under a root; files of one name in
several of them, empty ones and links to /dev/null decide which wins. `systemd-analyze --root=ROOT security
--offline=true` then says what the unit allows, and the reader must agree with every check it makes.
"""

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators.systemd.dropins import drop_in_names, unit_files
from generators.systemd.format import SystemdFormat
from tests.generators import systemd_analyze

UNIT = "lib/systemd/system/web-api.service"
DROP_IN_DIRS = (
    "etc/systemd/system/web-api.service.d",
    "run/systemd/system/web-api.service.d",
    "lib/systemd/system/web-api.service.d",
    "etc/systemd/system/web-.service.d",
    "lib/systemd/system/web-.service.d",
    "etc/systemd/system/service.d",
    "usr/lib/systemd/system/service.d",
)
SETTINGS = (
    "NoNewPrivileges=yes",
    "NoNewPrivileges=no",
    "RestrictNamespaces=yes",
    "RestrictNamespaces=",
    "SystemCallArchitectures=native",
    "SystemCallArchitectures=",
    "CapabilityBoundingSet=CAP_CHOWN",
    "CapabilityBoundingSet=",
    "RestrictAddressFamilies=AF_UNIX",
    "RestrictAddressFamilies=~AF_PACKET",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@mount",
    "User=web",
    "MASK",  # a link to /dev/null
    "",  # an empty file, which masks too
)


def build_root(root: Path, drop_ins: list[tuple[str, str, str]]) -> Path:
    unit = root / UNIT
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    for directory, name, content in drop_ins:
        path = root / directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            continue
        if content == "MASK":
            path.symlink_to(os.devnull)
        else:
            path.write_text(f"[Service]\n{content}\n" if content else "")
    return unit


@pytest.mark.usefixtures("systemd_analyze")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    drop_ins=st.lists(
        st.tuples(
            st.sampled_from(DROP_IN_DIRS),
            st.sampled_from(["10-a.conf", "20-b.conf", "30-c.conf"]),
            st.sampled_from(SETTINGS),
        ),
        max_size=8,
    )
)
def test_systemd_agrees_on_which_drop_ins_apply(drop_ins: list[tuple[str, str, str]], systemd: SystemdFormat) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        unit = build_root(root, drop_ins)
        policy = systemd.read(unit)
        checks = systemd_analyze.security_checks(unit, root=root)
        expected = systemd_analyze.expected_checks(policy, systemd.groups, set(checks))
        assert {name: checks[name] for name in expected} == expected


def test_the_most_specific_directory_of_the_highest_priority_wins(tmp_path: Path) -> None:
    unit = build_root(
        tmp_path,
        [
            ("etc/systemd/system/web-api.service.d", "50-x.conf", "NoNewPrivileges=yes"),
            ("lib/systemd/system/web-api.service.d", "50-x.conf", "NoNewPrivileges=no"),
            ("etc/systemd/system/web-.service.d", "60-y.conf", "User=web"),
            ("usr/lib/systemd/system/service.d", "10-z.conf", "RestrictNamespaces=yes"),
            ("etc/systemd/system/service.d", "60-y.conf", "User=other"),
            ("run/systemd/system/web-api.service.d", "70-masked.conf", "MASK"),
            ("lib/systemd/system/web-api.service.d", "70-masked.conf", "User=masked"),
        ],
    )
    assert [path.relative_to(tmp_path).as_posix() for path in unit_files(unit).drop_ins] == [
        "usr/lib/systemd/system/service.d/10-z.conf",
        "etc/systemd/system/web-api.service.d/50-x.conf",
        "etc/systemd/system/web-.service.d/60-y.conf",
    ]


def test_a_unit_outside_the_search_path_gets_the_drop_ins_next_to_it_only(tmp_path: Path) -> None:
    unit = tmp_path / "web-api.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    for directory in ("web-api.service.d", "web-.service.d", "service.d"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / f"{directory}.conf").write_text("[Service]\nNoNewPrivileges=yes\n")
    assert [path.parent.name for path in unit_files(unit).drop_ins] == [
        "service.d",
        "web-.service.d",
        "web-api.service.d",
    ]


def test_a_unit_that_another_overrides_or_masks_says_so(tmp_path: Path, systemd: SystemdFormat) -> None:
    unit = build_root(tmp_path, [])
    override = tmp_path / "etc/systemd/system/web-api.service"
    override.parent.mkdir(parents=True)
    override.write_text("[Service]\nExecStart=/bin/false\n")
    assert [finding.message for finding in systemd.read(unit).findings] == [
        f"systemd loads {override} instead of this file, which it overrides: give that one"
    ]
    override.unlink()
    override.symlink_to(os.devnull)
    assert [finding.message for finding in systemd.read(unit).findings] == [
        f"{override} masks the unit: systemd will not start it"
    ]
    override.unlink()
    override.symlink_to(unit)  # `systemctl link` and enabled units: the same file
    assert systemd.read(unit).findings == ()


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("web-api.service", ["web-api.service", "web-.service"]),
        ("foo-bar-waldo.service", ["foo-bar-waldo.service", "foo-bar-.service", "foo-.service"]),
        ("getty@tty1.service", ["getty@tty1.service", "getty@.service"]),
        ("a--b.service", ["a--b.service", "a--.service", "a-.service"]),
        ("-x.service", ["-x.service"]),
    ],
)
def test_the_names_whose_drop_in_directories_apply(name: str, names: list[str]) -> None:
    assert drop_in_names(name) == names


def test_a_drop_in_that_is_a_symlink_loop_is_skipped_as_systemd_skips_it(
    tmp_path: Path, systemd: SystemdFormat
) -> None:
    unit = build_root(tmp_path, [("etc/systemd/system/web-api.service.d", "20-b.conf", "NoNewPrivileges=yes")])
    (tmp_path / "lib/systemd/system/web-api.service.d").mkdir()
    (tmp_path / "lib/systemd/system/web-api.service.d/10-loop.conf").symlink_to("10-loop.conf")
    assert [path.name for path in unit_files(unit).drop_ins] == ["20-b.conf"]
    assert systemd.read(unit).no_new_privileges is True
