"""The system manager harness: the settings the root user manager cannot set up bite under it, and only there."""

from pathlib import Path

import pytest

from tests.generators import systemd_analyze
from tests.generators.systemd_manager import SystemManager

# Each setting, and a probe that exits 0 while what the setting takes away is there, 1 once it is gone.
_PY = "/usr/bin/python3 -c"
PROBES: dict[str, str] = {
    # /root is still there, empty and of mode 0, for root: what it held is gone.
    "ProtectHome=yes": "/bin/sh -c 'test \"$(stat -c %%a /root)\" != 0'",
    # Writes the value it read: the host's tunable is left as it was.
    "ProtectKernelTunables=yes": "/bin/sh -c 'cat /proc/sys/kernel/printk_ratelimit "
    "> /proc/sys/kernel/printk_ratelimit || exit 1'",
    # finit_module(-1) fails with EBADF where modules may be loaded (ENOSYS on a kernel without modules, as here),
    # with EPERM where the setting's filter refuses it.
    "ProtectKernelModules=yes": f"{_PY} 'import ctypes, errno, sys; libc = ctypes.CDLL(None, use_errno=True); "
    'libc.syscall(313, -1, b"", 0); sys.exit(ctypes.get_errno() == errno.EPERM)\'',
    "ProtectKernelLogs=yes": f"{_PY} 'import os; os.open(\"/dev/kmsg\", os.O_RDONLY | os.O_NONBLOCK)'",
    # Nothing listens on port 1: refused at once where packets flow, unanswered where the cgroup drops them.
    "IPAddressDeny=any": f"{_PY} 'import errno, socket, sys; s = socket.socket(); s.settimeout(2); "
    'sys.exit(s.connect_ex(("127.0.0.1", 1)) != errno.ECONNREFUSED)\'',
}


def _service(command: str) -> str:
    return f"[Service]\nType=oneshot\nExecStart={command}\n"


@pytest.mark.parametrize("setting", PROBES)
def test_each_setting_takes_away_what_its_probe_uses_under_a_system_manager(
    system_manager: SystemManager, setting: str
) -> None:
    name = setting.partition("=")[0].lower()
    unconfined = system_manager.run(f"{name}-open", _service(PROBES[setting]))
    confined = system_manager.run(name, _service(PROBES[setting]), {"50-setting.conf": f"[Service]\n{setting}\n"})
    assert unconfined.succeeded, unconfined
    assert (confined.result, confined.status) == ("exit-code", 1), confined


# What the root user manager of systemd_analyze.run_units does with each: 226/NAMESPACE before the probe runs, for
# all but IPAddressDeny=, whose cgroup firewall it sets up as well as the system manager does.
USER_MANAGER = {setting: ("exit-code", 226) for setting in PROBES} | {"IPAddressDeny=any": ("exit-code", 1)}


def test_the_user_manager_cannot_set_up_the_mount_settings(tmp_path: Path) -> None:
    """Why the harness exists."""
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)
    units = {f"setting{index}": setting for index, setting in enumerate(PROBES)}
    results = systemd_analyze.run_units(
        tmp_path, {name: (_service(PROBES[setting]), f"[Service]\n{setting}\n") for name, setting in units.items()}
    )
    assert {units[name]: result for name, result in results.items()} == USER_MANAGER
