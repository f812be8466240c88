"""Each way out, tried by a real program under an enforced policy, fails the way the policy says; the same
program gets out when the setting that stops it is taken away, so that each test can fail."""

import os
from pathlib import Path

import pytest

from tests.profiler.enforcement.conftest import (
    EACCES,
    EAFNOSUPPORT,
    ENOSYS,
    EPERM,
    EROFS,
    KILLED_BY_SIGSYS,
    PRACTITIONER_UNIT,
    PROBE,
    PYTHON,
    RunProfiler,
    write_unit,
)


def _unit(tmp_path: Path, writable: Path, *, without: tuple[str, ...] = (), extra: str = "") -> Path:
    lines = PRACTITIONER_UNIT.format(writable=writable).splitlines()
    kept = [line for line in lines if not line.startswith(without)] if without else lines
    return write_unit(tmp_path, "\n".join(kept) + "\n" + extra)


def _probe(run: RunProfiler, unit: Path, *probe: str, user: str | None = None) -> int:
    arguments = ["--policy", str(unit), *(["--user", user] if user else []), "--", PYTHON, str(PROBE), *probe]
    done = run(*arguments)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


@pytest.mark.parametrize(
    ("probe", "confined", "taken_away", "unconfined"),
    [
        # The user change holds: nobody cannot become root again, with no capability to do it.
        (("setuid-root",), EPERM, ("User=", "AmbientCapabilities="), 0),
        (("af-packet",), EAFNOSUPPORT, ("RestrictAddressFamilies=",), EPERM),  # then nobody lacks CAP_NET_RAW
        (("unshare-user",), EPERM, ("RestrictNamespaces=",), 0),
        # The launcher (init of the PID namespace, root) cannot be traced: ptrace is not in @system-service,
        # and the filter kills what it does not allow, as systemd's does without SystemCallErrorNumber=.
        (("ptrace-parent",), KILLED_BY_SIGSYS, ("SystemCallFilter=", "User=", "CapabilityBoundingSet="), 0),
        (("syscall-32",), KILLED_BY_SIGSYS, ("SystemCallArchitectures=",), 0),
        # No module support in this kernel answers ENOSYS; the filter refuses before the kernel is asked.
        (("load-module", "/dev/null"), KILLED_BY_SIGSYS, ("SystemCallFilter=", "PrivateDevices="), ENOSYS),
        (("bind-80",), 0, ("AmbientCapabilities=",), EACCES),
    ],
)
def test_a_way_out_fails_as_the_policy_says(
    profiler_run: RunProfiler,
    shared_dirs: tuple[Path, Path],
    tmp_path: Path,
    probe: tuple[str, ...],
    confined: int,
    taken_away: tuple[str, ...],
    unconfined: int,
) -> None:
    writable, _ = shared_dirs
    assert _probe(profiler_run, _unit(tmp_path, writable), *probe) == confined
    assert _probe(profiler_run, _unit(tmp_path, writable, without=taken_away), *probe) == unconfined


def test_writes_outside_read_write_paths_fail_read_only(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    writable, other = shared_dirs
    unit = _unit(tmp_path, writable)
    assert _probe(profiler_run, unit, "write", str(writable / "file")) == 0
    assert _probe(profiler_run, unit, "write", str(other / "file")) == EROFS
    assert not (other / "file").exists()
    unprotected = _unit(tmp_path, writable, without=("ProtectSystem=",))
    assert _probe(profiler_run, unprotected, "write", str(other / "file")) == 0


def test_a_root_only_file_is_unreadable_as_the_user(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    writable, other = shared_dirs
    secret = other / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    unit = _unit(tmp_path, writable)
    assert _probe(profiler_run, unit, "read", str(secret)) == EACCES
    assert _probe(profiler_run, unit, "read", str(secret), user="root") == 0


def test_home_directories_are_out_of_reach(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    writable, _ = shared_dirs
    assert os.path.isdir("/root")
    as_root = _unit(tmp_path, writable, without=("User=",))
    assert _probe(profiler_run, as_root, "write", "/root/.profiler-escape") == EACCES  # an empty, mode 000 tmpfs
    assert not os.path.exists("/root/.profiler-escape")


def test_the_confined_process_status_shows_its_capabilities_no_new_privs_and_filter(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    writable, _ = shared_dirs
    done = profiler_run("--policy", str(_unit(tmp_path, writable)), "--", PYTHON, str(PROBE), "status")
    assert done.returncode == 0, done.stderr
    cap_net_bind_service = f"{1 << 10:016x}"
    assert done.stdout.splitlines() == [
        f"CapInh:\t{cap_net_bind_service}",
        f"CapPrm:\t{cap_net_bind_service}",
        f"CapEff:\t{cap_net_bind_service}",
        f"CapBnd:\t{cap_net_bind_service}",
        f"CapAmb:\t{cap_net_bind_service}",
        "NoNewPrivs:\t1",  # systemd's too: a seccomp setting for a user without CAP_SYS_ADMIN
        "Seccomp:\t2",
    ]


def test_a_call_the_policy_kills_is_named_and_kills_as_seccomp_would(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    writable, _ = shared_dirs
    unit = _unit(tmp_path, writable)
    done = profiler_run("--policy", str(unit), "--", PYTHON, str(PROBE), "ptrace-parent")
    assert done.returncode == KILLED_BY_SIGSYS
    assert "refused: ptrace by /usr/bin/python3" in done.stderr and "killed from SystemCallFilter=" in done.stderr
    done = profiler_run("--policy", str(unit), "--", PYTHON, str(PROBE), "syscall-32")
    assert done.returncode == KILLED_BY_SIGSYS
    assert "refused: getpid by /usr/bin/python3" in done.stderr
    assert "killed from SystemCallArchitectures= (x86 ABI)" in done.stderr
