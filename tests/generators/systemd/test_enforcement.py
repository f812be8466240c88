"""The drop-in under a real systemd 252: the workload it was made from runs, and fails without a line it needs."""

from pathlib import Path

import pytest

from generators.compare import compare
from generators.formats import correction
from generators.interface import RenderOptions
from generators.systemd.format import SystemdFormat
from tests.generators import systemd_analyze
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import make_profile

ENOSYS, EPERM = 38, 1
# Exits with the errno uname() fails with, 0 when it works.
UNAME = "import os, sys\ntry:\n    os.uname()\nexcept OSError as error:\n    sys.exit(error.errno)\n"


@pytest.fixture(autouse=True)
def units_can_run() -> None:
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)


def _service(command: str) -> str:
    return f"[Service]\nType=oneshot\nExecStart={command}\n"


def test_the_traced_workload_runs_under_its_drop_in_and_needs_each_line(
    committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """chown was traced as `chown nobody FILE` as root: it needs fchownat, and CAP_CHOWN in the bounding set."""
    drop_in = systemd.render(committed_profile("chown"), RenderOptions())

    def without(line: str) -> str:
        assert line in drop_in.splitlines()
        return "".join(f"{each}\n" for each in drop_in.splitlines() if each != line)

    files = {name: tmp_path / f"{name}.file" for name in ("whole", "no-fchownat", "no-cap-chown")}
    for file in files.values():
        file.touch()
    results = systemd_analyze.run_units(
        tmp_path,
        {
            "whole": (_service(f"/usr/bin/chown nobody {files['whole']}"), drop_in),
            "no-fchownat": (
                _service(f"/usr/bin/chown nobody {files['no-fchownat']}"),
                without("SystemCallFilter=fchownat"),
            ),
            "no-cap-chown": (
                _service(f"/usr/bin/chown nobody {files['no-cap-chown']}"),
                without("CapabilityBoundingSet=CAP_CHOWN"),
            ),
        },
    )
    assert results == {"whole": ("success", 0), "no-fchownat": ("exit-code", 1), "no-cap-chown": ("exit-code", 1)}
    assert files["whole"].owner() == "nobody" and files["no-fchownat"].owner() == "root"


def test_an_errno_on_a_tilde_line_after_an_allow_list_is_what_the_syscall_returns(tmp_path: Path) -> None:
    """The form the drop-in uses for ENOSYS: systemd 252 refuses uname with ENOSYS, not SystemCallErrorNumber=."""
    script = tmp_path / "uname.py"
    script.write_text(UNAME)
    python = _service(f"/usr/bin/python3 {script}")
    allow_list = "[Service]\nSystemCallFilter=@system-service\nSystemCallErrorNumber=EPERM\n"
    results = systemd_analyze.run_units(
        tmp_path,
        {
            "enosys": (python, allow_list + "SystemCallFilter=~uname:ENOSYS\n"),
            "eperm": (python, allow_list + "SystemCallFilter=~uname\n"),
            "allowed": (python, allow_list),
        },
    )
    assert results == {"enosys": ("exit-code", ENOSYS), "eperm": ("exit-code", EPERM), "allowed": ("success", 0)}


def test_namespaces_are_allowed_by_type_and_mapping_root_gets_the_inferred_capability(
    committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """unshare was traced making user and net namespaces as root and mapping root into the user namespace.

    The kernel tests CAP_SETFCAP for that mapping with cap_raised(), which no trace sees: the profile infers it
    from the user namespace a root process created, and the drop-in with it is what makes the workload run.
    """
    drop_in = systemd.render(committed_profile("unshare-user-net"), RenderOptions())
    assert "CapabilityBoundingSet=CAP_SETFCAP" in drop_in
    assert "inferred: root created a user namespace" in drop_in.replace("\n#   ", " ")
    command = _service("/usr/bin/unshare --user --net --map-root-user /bin/true")
    results = systemd_analyze.run_units(
        tmp_path,
        {
            "generated": (command, drop_in),
            "without-setfcap": (command, drop_in.replace("CapabilityBoundingSet=CAP_SETFCAP\n", "")),
            "without-net": (command, drop_in.replace("RestrictNamespaces=net\n", "")),
        },
    )
    assert results == {
        "generated": ("success", 0),
        "without-setfcap": ("exit-code", 1),
        "without-net": ("exit-code", 1),
    }


def test_families_are_allowed_by_name_for_an_unprivileged_service(
    committed_profile: LoadTraces, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """Python as nobody, traced opening an AF_INET6 and an AF_UNIX socket, then reading /etc/hostname."""
    drop_in = systemd.render(committed_profile("python-sockets-nobody"), RenderOptions())
    traced = (
        "import socket; socket.socket(socket.AF_INET6).close(); socket.socket(socket.AF_UNIX).close(); "
        "print(open('/etc/hostname').read())"
    )
    command = f'[Service]\nType=oneshot\nUser=nobody\nExecStart=/usr/bin/python3 -c "{traced}"\n'
    results = systemd_analyze.run_units(
        tmp_path,
        {
            "whole": (command, drop_in),
            "no-inet6": (command, drop_in.replace("RestrictAddressFamilies=AF_INET6\n", "")),
        },
    )
    assert results == {"whole": ("success", 0), "no-inet6": ("exit-code", 1)}


# Exits with 100 + the errno of a read-only clock_adjtime() (adjtimex in glibc), 0 when it works (an uncaught
# Python error exits with 1, which EPERM alone would be).
CLOCK = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "timex = ctypes.create_string_buffer(512)\n"
    "sys.exit(100 + ctypes.get_errno() if libc.adjtimex(timex) < 0 else 0)\n"
)


def test_a_setting_that_refuses_whatever_the_lists_say_is_missing_and_undone_by_the_fix(
    systemd: SystemdFormat, tmp_path: Path
) -> None:
    """ProtectClock=yes loads a seccomp filter of its own: allowing @clock in SystemCallFilter= does not help."""
    script = tmp_path / "clock.py"
    script.write_text(CLOCK)
    unit_text = _service(f"/usr/bin/python3 {script}") + "ProtectClock=yes\nSystemCallFilter=@system-service @clock\n"
    unit = tmp_path / "clock.service"
    unit.write_text(unit_text)
    comparison = compare(make_profile(syscalls=["clock_adjtime", "read", "exit_group"]), systemd.read(unit))
    assert [(item.need.name, item.refused) for item in comparison.missing] == [
        ("clock_adjtime", f"refused with EPERM by ProtectClock=yes ({unit}:4), whatever the lists say")
    ]
    fix = correction(comparison)
    assert fix is not None and "ProtectClock=no\n" in fix.text
    results = systemd_analyze.run_units(tmp_path, {"protected": (unit_text, None), "fixed": (unit_text, fix.text)})
    assert results == {"protected": ("exit-code", 100 + EPERM), "fixed": ("success", 0)}
