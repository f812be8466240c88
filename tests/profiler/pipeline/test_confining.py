"""A unit read once, by the systemd reader, becomes what `run` applies; what it does not apply is named."""

import grp
import secrets
import shutil
from pathlib import Path

import pytest

from profiler.enforcement.confinement import FileSystem, ProtectHome, ProtectSystem
from profiler.errors import EnforcementError, PolicyParseError
from profiler.pipeline.confining import RunPolicy, confinement_of, run_policy
from tests.generators.conftest import REPOSITORY


def _unit(tmp_path: Path, text: str) -> Path:
    unit = tmp_path / "tool.service"
    unit.write_text("[Service]\n" + text)
    return unit


def test_the_sandbox_settings_and_the_group_come_from_the_reader(tmp_path: Path) -> None:
    unit = _unit(
        tmp_path,
        "User=nobody\nGroup=daemon\nPrivateTmp=yes\nProtectSystem=strict\nProtectHome=read-only\n"
        "ReadWritePaths=-/var/lib/tool /srv\nPrivateNetwork=yes\nPrivateTmp=no\n",
    )
    confinement = confinement_of(run_policy([unit]))
    assert confinement.account is not None and confinement.account.gid == grp.getgrnam("daemon").gr_gid
    assert confinement.private_network
    # The last PrivateTmp= wins, as in systemd; '-' only says a missing path is no error.
    assert confinement.file_system == FileSystem(
        private_tmp=False,
        protect_system=ProtectSystem.STRICT,
        protect_home=ProtectHome.READ_ONLY,
        read_write_paths=("/var/lib/tool", "/srv"),
    )


def test_what_run_does_not_apply_is_named_with_its_line(tmp_path: Path) -> None:
    unit = _unit(
        tmp_path,
        "ProtectSystem=strict\nProtectControlGroups=yes\nInaccessiblePaths=/srv\nProtectKernelTunables=yes\n"
        "ReadWritePaths=/var/lib\nMemoryDenyWriteExecute=yes\nBindPaths=/a:/b\nBindPaths=\n",
    )
    assert run_policy([unit]).not_applied == (
        f"InaccessiblePaths=/srv ({unit}:4)",
        f"MemoryDenyWriteExecute=yes ({unit}:7)",
        f"ProtectControlGroups=yes ({unit}:3)",
        f"ProtectKernelTunables=yes ({unit}:5): its syscalls and capabilities only, not the read-only /proc/sys, "
        "/sys and the like",
    )


def test_a_relative_read_write_path_is_one_line(tmp_path: Path) -> None:
    unit = _unit(tmp_path, "ReadWritePaths=var/lib\n")
    with pytest.raises(PolicyParseError, match=r"tool.service:2: ReadWritePaths=var/lib: var/lib is not a normalised"):
        confinement_of(run_policy([unit]))


def test_a_seccomp_profile_has_no_file_system_settings(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}'
    )
    chosen = run_policy([profile])
    assert confinement_of(chosen).file_system == FileSystem() and chosen.not_applied == ()


def test_a_directory_systemd_manages_is_writable_where_it_is_and_named_where_it_is_not(tmp_path: Path) -> None:
    unit = _unit(tmp_path, "ProtectSystem=strict\nStateDirectory=systemd\nCacheDirectory=profiler-test-not-there\n")
    chosen = run_policy([unit])
    assert "/var/lib/systemd" in confinement_of(chosen).file_system.read_write_paths
    assert chosen.not_applied == (
        f"CacheDirectory=profiler-test-not-there ({unit}:4): left writable where it is, not made "
        "(/var/cache/profiler-test-not-there is not there)",
    )


@pytest.mark.parametrize("name", ["/etc", "../etc", "app/../../etc"])
def test_a_managed_directory_that_names_a_path_out_of_its_tree_is_one_line(tmp_path: Path, name: str) -> None:
    """systemd ignores the line (not a normalised relative path); run does not start under a line it cannot read."""
    unit = _unit(tmp_path, f"ProtectSystem=strict\nStateDirectory={name}\n")
    with pytest.raises(PolicyParseError, match=rf"tool.service:3: StateDirectory={name}: {name} is not a normalised"):
        run_policy([unit])


def test_a_managed_directory_is_opened_where_it_resolves_in_its_tree_and_never_out_of_it(tmp_path: Path) -> None:
    """/var/lib/NAME a symlink to /etc would open /etc: one line, nothing started. A symlink within the tree (what
    DynamicUser=yes leaves) is opened where it leads; of NAME:LINK, NAME is the directory."""
    name = f"profiler-test-{secrets.token_hex(4)}"
    link, own = Path("/var/lib") / name, Path("/var/lib") / f"{name}-own"
    try:
        link.symlink_to("/etc")
        chosen = run_policy([_unit(tmp_path, f"ProtectSystem=strict\nStateDirectory={name}\n")])
        with pytest.raises(EnforcementError, match=rf"StateDirectory={name} \(.*:3\): {link} leads to /etc, out of"):
            confinement_of(chosen)
        own.mkdir()
        link.unlink()
        link.symlink_to(own.name)
        for value in (name, f"{name}:other"):
            chosen = run_policy([_unit(tmp_path, f"ProtectSystem=strict\nStateDirectory={value}\n")])
            assert confinement_of(chosen).file_system.read_write_paths == (str(own),)
    finally:
        link.unlink(missing_ok=True)
        shutil.rmtree(own, ignore_errors=True)


def test_dynamic_user_runs_as_nobody_where_the_host_has_no_user_of_its_name_and_brings_its_sandbox(
    tmp_path: Path,
) -> None:
    """systemd allocates a user that owns no file at start; run, which does not, runs as nobody (as the runs that
    generate writes DynamicUser=yes for ran), says so, and takes --user or a static user of the unit's name."""
    unit = _unit(tmp_path, "DynamicUser=yes\n")
    chosen = run_policy([unit])
    assert _account_name(chosen) == "nobody" and _account_name(chosen, user="daemon") == "daemon"
    assert (
        f"DynamicUser=yes ({unit}:2): no user allocated at start: as nobody, who owns no file, unless --user "
        "names another"
    ) in chosen.not_applied
    # What systemd implies for it applies as the unit's own lines would.
    file_system = confinement_of(chosen, user="daemon").file_system
    assert (file_system.protect_system, file_system.private_tmp) == (ProtectSystem.STRICT, True)
    # A static user of the name it would allocate (User=, or the unit's name) is the one systemd runs it as; a
    # User= no static user has is allocated too.
    static = run_policy([_unit(tmp_path, "DynamicUser=yes\nUser=daemon\n")])
    assert _account_name(static) == "daemon"
    assert (
        f"DynamicUser=yes ({tmp_path}/tool.service:2): no user allocated at start: as daemon, the static user of "
        "that name, as systemd does"
    ) in static.not_applied
    allocated = run_policy([_unit(tmp_path, "DynamicUser=yes\nUser=profiler-test-not-a-user\n")])
    assert _account_name(allocated) == "nobody"


def _account_name(chosen: RunPolicy, user: str | None = None) -> str | None:
    account = confinement_of(chosen, user).account
    return account.name if account is not None else None


def test_the_drop_in_generated_from_traces_is_named_by_them_not_by_a_temporary_file() -> None:
    """run reads the drop-in generate writes for traces from a temporary file, gone once it reports: what it does
    not apply is named by the traces, at its line of `generate --no-comments`."""
    trace = REPOSITORY / "traces" / "pip-audit.trace.json"
    chosen = run_policy([trace])
    described = f"the drop-in generated from {trace}"
    assert chosen.not_applied and all(f"({described}:" in each for each in chosen.not_applied), chosen.not_applied
    dynamic = next(each for each in chosen.not_applied if each.startswith("DynamicUser=yes"))
    assert dynamic.startswith(f"DynamicUser=yes ({described}:"), dynamic
