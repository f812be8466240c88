"""`run --audit` starts the command as enforcement does, but for the filters: its user, its namespaces and its mounts
apply (a real program shows them from inside), and the paths those mounts refuse are named as what the policy
refuses, with exit status 1; without the setting, nothing is named and the status is 0."""

import json
import os
import pwd
from pathlib import Path

import pytest

from tests.profiler.enforcement.conftest import PROBE, PYTHON, RunProfiler, host_address, write_unit

pytestmark = [pytest.mark.tracing, pytest.mark.usefixtures("tracing_available")]
PROGRAM = os.path.realpath(PYTHON)


def _audit(run: RunProfiler, tmp_path: Path, unit: str, *command: str) -> tuple[int, str, str, list[dict[str, object]]]:
    report = tmp_path / "report.json"
    policy = write_unit(tmp_path, "[Service]\n" + unit)
    done = run("--audit", "--policy", str(policy), "--report", str(report), "--force", "--", *command)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr, list(json.loads(report.read_text())["would_refuse"])


def test_the_user_namespaces_and_mounts_apply(profiler_run: RunProfiler, tmp_path: Path) -> None:
    show = "id -u; echo $$; readlink /proc/self/ns/mnt /proc/self/ns/pid /proc/self/ns/net; ls -A /tmp | wc -l"
    unit = "User=nobody\nPrivateTmp=yes\nPrivateNetwork=yes\n"
    status, output, stderr, would = _audit(profiler_run, tmp_path, unit, "/bin/sh", "-c", show)
    assert (status, would) == (0, []), stderr
    uid, pid, mount, pids, network, in_tmp = output.split()
    host = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("mnt", "pid", "net")]
    assert uid == str(pwd.getpwnam("nobody").pw_uid)
    assert int(pid) <= 3, "the command is not in a PID namespace of its own"
    assert mount != host[0] and pids != host[1] and network != host[2]
    assert in_tmp == "0", "PrivateTmp= did not give the command an empty /tmp"
    # Without the settings, the same command shares the host's network, and runs as root.
    status, output, _, _ = _audit(profiler_run, tmp_path, "", "/bin/sh", "-c", show)
    assert status == 0 and output.split()[0] == "0" and output.split()[4] == host[2]


def test_a_path_its_mounts_refuse_is_named(
    profiler_run: RunProfiler, tmp_path: Path, shared_dirs: tuple[Path, Path]
) -> None:
    writable, other = shared_dirs
    target = other / "written"
    unit = f"ProtectSystem=strict\nReadWritePaths={writable}\n"
    status, _, stderr, would = _audit(profiler_run, tmp_path, unit, PYTHON, str(PROBE), "write", str(target))
    assert status == 1, stderr
    assert f"would refuse: path write to {target} by {PROGRAM}, 1x: EROFS from ProtectSystem=strict" in stderr
    assert [(each["kind"], each["name"], each["programs"]) for each in would] == [
        ("path", f"write to {target}", [PROGRAM])
    ]
    # The line that lets it, as generate writes it for that write: the directory the new file goes into. It was
    # there before the run, in /var/lib: not StateDirectory=, which would have systemd chown it and all in it.
    fix = json.loads((tmp_path / "report.json").read_text())["fix"]
    assert fix == f"[Service]\nReadWritePaths={other}\n", fix
    # With it, the same run is refused nothing, and writes, under run as under systemd.
    status, _, stderr, would = _audit(profiler_run, tmp_path, unit + fix, PYTHON, str(PROBE), "write", str(target))
    assert (status, would) == (0, []), stderr
    assert target.read_text() == "escaped\n"


def test_a_connection_its_private_network_refuses_is_named(profiler_run: RunProfiler, tmp_path: Path) -> None:
    host = host_address()
    status, _, stderr, would = _audit(
        profiler_run, tmp_path, "PrivateNetwork=yes\n", PYTHON, str(PROBE), "connect", host
    )
    assert status == 1, stderr
    # The connect the private network refused, and (the run recorded it) the setting check says to change.
    assert [(each["kind"], each["name"]) for each in would] == [
        ("setting", "PrivateNetwork=no"),
        ("connect", f"{host}:80"),
    ]
    assert "ENETUNREACH from PrivateNetwork=yes" in stderr
