"""How long `profiler run` takes to start a command, until its exec, against a plain fork and exec measured the
same way (subprocess.Popen returns once the child has exec'd), in the same run.

Three confinements: namespaces only (mount, PID, IPC: what every run gets), the demo's learned drop-in
(a seccomp allow-list with its supervisor), and the practitioner's unit (user, capabilities, private network,
PrivateDevices=, ProtectSystem=strict, the seccomp allow-list of @system-service), the last also watched for the
capabilities and paths it refuses (the eBPF program compiled and attached first: `run`'s default). Then what the
watch costs a confined syscall-bound loop, against the same loop unwatched. Needs root:
python benchmarks/run_startup.py.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.enforcement.confinement import Confinement
from profiler.enforcement.launcher import Command, launch
from profiler.pipeline.confining import confinement_of, run_policy

ROUNDS = 15
TRUE = "/bin/true"
PYTHON = "/usr/bin/python3"  # not the pyenv shim on PATH
UNIT = """\
[Service]
User=nobody
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
PrivateTmp=yes
PrivateDevices=yes
PrivateNetwork=yes
ProtectSystem=strict
ProtectHome=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
SystemCallFilter=@system-service
SystemCallArchitectures=native
"""
DEMO_FILTER = """\
[Service]
SystemCallFilter=@basic-io @file-system @process @signal @network-io @io-event @ipc @timer @default brk mmap
SystemCallErrorNumber=EPERM
RestrictNamespaces=yes
NoNewPrivileges=yes
"""


def _plain() -> float:
    started = time.perf_counter()
    child = subprocess.Popen([TRUE])
    elapsed = time.perf_counter() - started
    child.wait()
    return elapsed


def _confined(confinement: Confinement, watched: bool = False) -> float:
    command = Command((TRUE,), TRUE, dict(os.environ), "/")
    return launch(confinement, command, watch_refusals=watched).startup_s


# A syscall-bound loop that writes how long it took: the watch's cost to a confined workload (and to the host:
# its sys_exit tracepoint puts every task on the slow syscall path while it is attached).
LOOP = """import os, sys, time
started = time.perf_counter()
for _ in range(200_000):
    os.getppid()
open(sys.argv[1], "w").write(str(time.perf_counter() - started))
"""


def _loop(watched: bool) -> float:
    with tempfile.NamedTemporaryFile(dir="/var/tmp", prefix="profiler-bench-") as result:
        argv = (PYTHON, "-c", LOOP, result.name)
        launch(Confinement(), Command(argv, PYTHON, dict(os.environ), "/"), watch_refusals=watched)
        return float(Path(result.name).read_text())


def _median(measure: object, *arguments: object) -> float:
    return statistics.median(measure(*arguments) for _ in range(ROUNDS))  # type: ignore[operator]


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run_startup.py: confining a command needs root")
    with tempfile.TemporaryDirectory() as directory:
        units = {}
        for name, text in (("unit", UNIT), ("demo", DEMO_FILTER)):
            path = Path(directory) / f"{name}.service"
            path.write_text(text)
            units[name] = confinement_of(run_policy([path]))
    plain = _median(_plain)
    print(f"run start-up until exec, median of {ROUNDS} (baseline: fork and exec of {TRUE})")
    print(f"  fork and exec (subprocess.Popen)        {plain * 1000:7.2f} ms")
    for label, confinement, watched in (
        ("namespaces only", Confinement(), False),
        ("a seccomp allow-list, supervised", units["demo"], False),
        ("the practitioner's unit", units["unit"], False),
        ("the same, watched for refusals (eBPF)", units["unit"], True),
    ):
        seconds = _median(_confined, confinement, watched)
        print(f"  {label:<40} {seconds * 1000:7.2f} ms  {seconds / plain:6.1f}x")
    unwatched = _median(_loop, False)
    print(f"a syscall-bound loop (200,000 getppid), confined, median of {ROUNDS} (baseline: not watched)")
    print(f"  not watched                              {unwatched * 1000:7.2f} ms")
    watched_loop = _median(_loop, True)
    print(f"  watched for refusals (eBPF)              {watched_loop * 1000:7.2f} ms  {watched_loop / unwatched:6.2f}x")


if __name__ == "__main__":
    main()
