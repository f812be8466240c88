"""A unit read once, by the systemd reader, becomes what `run` applies; what it does not apply is named."""

import grp
from pathlib import Path

import pytest

from profiler.enforcement.confinement import FileSystem, ProtectHome, ProtectSystem
from profiler.errors import PolicyParseError
from profiler.pipeline.confining import confinement_of, run_policy


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
