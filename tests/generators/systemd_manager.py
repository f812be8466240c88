"""systemd 252 as a system manager: PID 1 of PID, mount, cgroup, UTS and IPC namespaces of its own, running units.

The root user manager of systemd_analyze.run_units cannot set up ProtectHome=, ProtectKernelTunables=,
ProtectKernelModules=, ProtectKernelLogs= or IPAddressDeny= (exit 226); a system manager can. It must not act on
the host, so:
- it sees only the units written here (SYSTEMD_UNIT_PATH, no generators), each with DefaultDependencies=no: a unit
  that pulled in sysinit.target would run systemd-tmpfiles --remove on the real /tmp, systemd-sysctl on the real
  kernel, and more;
- /run and /etc/systemd/system are tmpfs of its namespace, and its cgroup tree is a cgroup2 mount of its own
  cgroup namespace, rooted in a cgroup profiler makes for it (workload_cgroup), so its slices are not the
  host's and whatever is left of it is killed with that cgroup, even when the test process dies;
- its output files are written under its /run, read from outside through /proc/PID/root.
"""

import os
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from profiler.recording.workload_cgroup import WorkloadCgroup

SYSTEMD = Path("/lib/systemd/systemd")
UNITS = Path("/run/profiler-units")
OUTPUT = Path("/run/profiler-output")
START_TIMEOUT_S = 30.0
# Every unit the manager runs gets these first, and its own settings after them.
HARNESS_DROP_IN = (
    "[Unit]\nDefaultDependencies=no\n[Service]\nStandardOutput=file:{output}.out\nStandardError=file:{output}.err\n"
)
# exit.target and systemd-exit.service as systemd ships them, without the shutdown targets this manager lacks.
_SPECIAL_UNITS = {
    "idle.target": "[Unit]\nDescription=profiler test: nothing to do\nDefaultDependencies=no\n",
    "exit.target": "[Unit]\nDefaultDependencies=no\nRequires=systemd-exit.service\nAfter=systemd-exit.service\n",
    "systemd-exit.service": "[Unit]\nDefaultDependencies=no\nSuccessAction=exit-force\n"
    "[Service]\nType=oneshot\nExecStart=/bin/true\n",
}
_SCRIPT = f"""
set -eu
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p {UNITS} {OUTPUT} /run/profiler-no-generators
for special in idle.target exit.target systemd-exit.service; do printf '%s' "$1" > {UNITS}/$special; shift; done
echo ready > "$1"
exec env container=profiler-test SYSTEMD_UNIT_PATH={UNITS} SYSTEMD_GENERATOR_PATH=/run/profiler-no-generators \
    SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/profiler-no-generators \
    {SYSTEMD} --system --unit=idle.target --log-target=null --show-status=no
"""


@dataclass(frozen=True, slots=True)
class UnitRun:
    """How one start of a oneshot service ended, and what it printed."""

    result: str  # success, exit-code, signal, ...
    status: int  # ExecMainStatus: the exit code, or 226 and its kin where systemd could not set the process up
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.result == "success" and self.status == 0


class SystemManager:
    """A running manager: write units into it, start them one at a time, read how they ended."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._root = Path(f"/proc/{pid}/root")

    def systemctl(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "systemctl", "--no-pager", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run(self, name: str, unit: str, drop_ins: Mapping[str, str] | None = None) -> UnitRun:
        """Write NAME.service (with drop-ins NAME.service.d/FILE) and start it once; a oneshot service waits
        for its process, so the result is final when start returns."""
        service = f"{name}.service"
        directory = self._root / UNITS.relative_to("/") / f"{service}.d"
        directory.mkdir(parents=True, exist_ok=True)
        (self._root / UNITS.relative_to("/") / service).write_text(unit)
        (directory / "00-harness.conf").write_text(HARNESS_DROP_IN.format(output=OUTPUT / name))
        for file_name, text in (drop_ins or {}).items():
            (directory / file_name).write_text(text)
        reload = self.systemctl("daemon-reload")
        assert reload.returncode == 0, reload.stderr
        self.systemctl("start", service)
        shown = self.systemctl("show", "--value", "-p", "Result", "-p", "ExecMainStatus", service).stdout.split()
        output = self._root / OUTPUT.relative_to("/")
        return UnitRun(
            shown[0],
            int(shown[1]),
            _read(output / f"{name}.out"),
            _read(output / f"{name}.err"),
        )

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.systemctl("is-system-running").stdout.strip() in ("running", "degraded"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the system manager (pid {self.pid}) did not come up in {START_TIMEOUT_S:.0f}s")


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def cannot_run_system_manager() -> str | None:
    """Why a system manager cannot be run here, or None."""
    if os.geteuid() != 0:
        return "a systemd system manager in namespaces of its own needs root"
    for tool in (SYSTEMD, Path("/usr/bin/unshare"), Path("/usr/bin/nsenter"), Path("/bin/systemctl")):
        if not tool.exists():
            return f"{tool} is not installed"
    return None


@contextmanager
def system_manager(scratch: Path) -> Iterator[SystemManager]:
    """A system manager for the duration of the block; it exits, and its cgroup is removed, at the end."""
    cgroup = WorkloadCgroup.create()
    if cgroup is None:
        raise RuntimeError("no cgroup2 hierarchy this process may make a cgroup in, for the system manager")
    ready = scratch / "manager-ready"
    command = ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--mount-proc", "--cgroup"]
    command += ["--uts", "--ipc", "sh", "-c", _SCRIPT, "sh", *_SPECIAL_UNITS.values(), str(ready)]
    try:
        with cgroup.joined() as joined:
            assert joined, "cannot join the system manager's cgroup"
            launcher = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with launcher:
            try:
                manager = SystemManager(_manager_pid(launcher, ready))
                manager.wait_until_up()
                yield manager
                manager.systemctl("exit")
                launcher.wait(timeout=60)
            finally:
                cgroup.kill()  # what is left of it, after a test that failed, or a manager that would not exit
    finally:
        _remove_below(cgroup)
        cgroup.close()


def _remove_below(cgroup: WorkloadCgroup) -> None:
    """Remove the cgroups the manager made inside its own once they are empty: a cgroup with children cannot go."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while cgroup.populated() and time.monotonic() < deadline:
        time.sleep(0.01)
    for directory in sorted((p for p in cgroup.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with suppress(OSError):
            directory.rmdir()


def _manager_pid(launcher: "subprocess.Popen[bytes]", ready: Path) -> int:
    """The pid, in this PID namespace, of the systemd that unshare's child became."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise RuntimeError(f"the system manager's set-up failed: {shlex.join(map(str, launcher.args))}")
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        if ready.exists() and pids and Path(f"/proc/{pids[0]}/exe").resolve() == SYSTEMD.resolve():
            return int(pids[0])
        time.sleep(0.05)
    raise TimeoutError("the system manager did not start")
