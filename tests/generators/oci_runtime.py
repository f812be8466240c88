"""The OCI runtimes as consumers of OCI seccomp profiles, for tests: runc and crun start a container under a profile.

    cannot_run_containers()               why runc and crun cannot run here, or None
    run_container(runtime, directory,     a container of `/` bound read-only, running argv under the profile
                  profile, argv, ...)     (linux.seccomp of config.json), started by the real runtime

The bundle is the one `runc spec` writes, with the host's / bound read-only as its root file system (root.path
"/" itself fails: "pivot_root .: device or resource busy"), no terminal, no cgroup mount and no resources
(this host's cgroups are hybrid). Everything happens in a mount namespace of its own, so no mount reaches the
host, and with a state directory of its own, removed afterwards: nothing outlives a call, even when it fails.
crun refuses hybrid cgroups ("drop all controllers from cgroupv2"), so it runs with --cgroup-manager=disabled
after the cgroup2 hierarchy is unmounted in that namespace.

Run as a program it starts one container, so a profile can be tried by hand, or learns what the runtimes do
under the container's filter before its execve (generators/data/oci-runtime-calls.txt, with bpftrace):

    python -m tests.generators.oci_runtime runc PROFILE.json [--no-new-privileges=false] /bin/true
    python -m tests.generators.oci_runtime learn STARTS > generators/data/oci-runtime-calls.txt
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generators.seccomp.spec import DOCKER_DEFAULT_CAPABILITIES
from profiler import syscalls

RUNTIMES = ("runc", "crun")
# Mounted, then the runtime run, in a mount namespace of its own; "$@" is the runtime's command line.
_START = """
set -eu
mount --bind / "$ROOTFS"
mount -o remount,bind,ro "$ROOTFS"
if [ "$RUNTIME" = crun ] && mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
exec "$@"
"""


def cannot_run_containers() -> str | None:
    """Why containers cannot be run here, or None."""
    if os.geteuid() != 0:
        return "starting containers with runc and crun needs root"
    missing = [tool for tool in (*RUNTIMES, "unshare", "mountpoint") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (make install installs runc and crun)"
    return None


def bundle_config(
    profile: Mapping[str, Any] | None,
    argv: Sequence[str],
    no_new_privileges: bool,
    uid: int = 0,
    docker_capabilities: bool = False,
) -> dict[str, Any]:
    """runc spec's config.json, changed to run argv as uid from the host's / under the seccomp profile (and with
    the capabilities `docker run` grants, where asked)."""
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(["runc", "spec"], cwd=directory, check=True, capture_output=True)
        config: dict[str, Any] = json.loads((Path(directory) / "config.json").read_text())
    config["root"] = {"path": "rootfs", "readonly": True}
    config["process"].update(
        terminal=False, args=list(argv), noNewPrivileges=no_new_privileges, user={"uid": uid, "gid": uid}
    )
    if docker_capabilities:
        granted = sorted(DOCKER_DEFAULT_CAPABILITIES)
        config["process"]["capabilities"] = {"bounding": granted, "effective": granted, "permitted": granted}
    config["mounts"] = [mount for mount in config["mounts"] if mount["destination"] != "/sys/fs/cgroup"]
    config["linux"].pop("resources", None)
    if profile is not None:
        config["linux"]["seccomp"] = dict(profile)
    return config


def run_container(
    runtime: str,
    directory: Path,
    profile: Mapping[str, Any] | None,
    argv: Sequence[str],
    *,
    no_new_privileges: bool = True,
    uid: int = 0,
    docker_capabilities: bool = False,
    name: str = "profiler-test",
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Start argv in a container of the runtime under the profile (None: no seccomp) and wait for it."""
    bundle = Path(tempfile.mkdtemp(prefix=f"bundle-{runtime}-{name}-", dir=directory))
    (bundle / "rootfs").mkdir()
    (bundle / "config.json").write_text(
        json.dumps(bundle_config(profile, argv, no_new_privileges, uid, docker_capabilities))
    )
    state = Path(tempfile.mkdtemp(prefix=f"state-{runtime}-{name}-", dir=directory))
    command = [runtime, "--root", str(state)]
    if runtime == "crun":
        command.append("--cgroup-manager=disabled")
    command += ["run", "--bundle", str(bundle), name]
    environment = {**os.environ, "ROOTFS": str(bundle / "rootfs"), "RUNTIME": runtime}
    try:
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", _START, "sh", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            check=False,
        )
    finally:
        # A container whose start failed half-way stays in the state directory; delete it, then the directory.
        subprocess.run(
            [runtime, "--root", str(state), "delete", "--force", name], capture_output=True, check=False, timeout=60
        )
        shutil.rmtree(state, ignore_errors=True)
        # The host never sees the rootfs mounted: / was bound on it only in the namespace.
        shutil.rmtree(bundle, ignore_errors=True)


# Counts, per container process (tgid) and syscall number, the syscalls a process descended from the command makes
# while a seccomp filter is on it (SECCOMP_MODE_FILTER) and before its execve: what the runtime does under the
# container's filter. Threads and children inherit the state; an execve under the filter ends counting for good.
_LEARN_BPFTRACE = """
tracepoint:sched:sched_process_fork /(int64)args->parent_pid == (int64)cpid || @phase[args->parent_pid]/ {
  @phase[args->child_pid] = @phase[args->parent_pid] ? @phase[args->parent_pid] : 1;
}
tracepoint:raw_syscalls:sys_enter /@phase[tid] == 1 && curtask->seccomp.mode == 2/ { @calls[pid, args->id] = count(); }
tracepoint:sched:sched_process_exec /@phase[tid] == 1 && curtask->seccomp.mode == 2/ {
  @phase[tid] = 2; @phase[args->old_pid] = 2;
}
tracepoint:sched:sched_process_exit /@phase[tid]/ { delete(@phase[tid]); }
END { clear(@phase); }
"""
_CALLS = re.compile(r"^@calls\[(?P<process>\d+), (?P<nr>\d+)\]: \d+$")
# Everything lets through but a syscall no runtime makes, so that the runtime loads a filter and runs as usual.
LEARNING_PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}],
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One way a container is configured, as far as it changes what the runtime does after loading the filter."""

    no_new_privileges: bool
    uid: int
    docker_capabilities: bool  # Docker's default capability set rather than runc spec's

    @property
    def name(self) -> str:
        return f"no_new_privileges={str(self.no_new_privileges).lower()}"


SETTINGS = tuple(
    Setting(no_new_privileges, uid, docker)
    for no_new_privileges in (True, False)
    for uid in (0, 65534)
    for docker in (False, True)
)


def _starts(runtime: str, setting: Setting, starts: int) -> None:
    """Start /bin/true `starts` times under the learning profile (what bpftrace -c runs)."""
    with tempfile.TemporaryDirectory() as directory:
        for index in range(starts):
            done = run_container(
                runtime,
                Path(directory),
                LEARNING_PROFILE,
                ["/bin/true"],
                no_new_privileges=setting.no_new_privileges,
                uid=setting.uid,
                docker_capabilities=setting.docker_capabilities,
                name=f"learn-{index}",
            )
            if done.returncode != 0:
                sys.exit(f"{runtime} failed to start a container: {done.stderr.strip()}")


def learn(runtime: str, setting: Setting, starts: int) -> dict[str, int]:
    """Each syscall the runtime made under the filter before the execve, and in how many of the starts."""
    command = [
        sys.executable, "-m", "tests.generators.oci_runtime", "starts", runtime,
        str(setting.no_new_privileges), str(setting.uid), str(setting.docker_capabilities), str(starts),
    ]  # fmt: skip
    done = subprocess.run(
        ["bpftrace", "-e", _LEARN_BPFTRACE, "-c", " ".join(command)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    by_process: dict[int, set[str]] = {}
    for line in done.stdout.splitlines():
        if match := _CALLS.match(line):
            name, _ = syscalls.syscall_name(syscalls.native_abi(), int(match["nr"]))
            by_process.setdefault(int(match["process"]), set()).add(name or f"#{match['nr']}")
    if len(by_process) != starts:
        sys.exit(f"{runtime}: saw {len(by_process)} containers under a filter, not {starts}")
    names = sorted({name for calls in by_process.values() for name in calls})
    return {name: sum(name in calls for calls in by_process.values()) for name in names}


def _version(runtime: str) -> str:
    first = subprocess.run([runtime, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    package = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", runtime], capture_output=True, text=True, check=False
    ).stdout
    return f"{first.split()[-1]} (Debian package {package})" if package else first.split()[-1]


def learned_table(starts: int) -> str:
    """generators/data/oci-runtime-calls.txt: what each runtime calls, per no-new-privileges setting."""
    lines = [
        "# Syscalls each OCI runtime makes in the container's process after it loads the container's seccomp filter",
        "# and before it execs the container's program: a profile must allow them, or the container does not start.",
        f"# Recorded: each runtime started /bin/true {starts} times in each of {len(SETTINGS)} settings",
        "# (no_new_privileges true and false; as root and as uid 65534; with the capabilities of runc spec and of",
        "# docker run) under a filter that allows everything, while bpftrace counted the syscalls each container",
        "# process made under a filter until its execve (tests/generators/oci_runtime.py), on",
        f"# Linux {os.uname().release} {os.uname().machine}. Regenerate as root, with bpftrace installed:",
        f"#   .venv/bin/python -m tests.generators.oci_runtime learn {starts} > generators/data/oci-runtime-calls.txt",
        "# Columns: runtime, setting, syscall, and in how many of that setting's starts the runtime made it.",
    ]
    for runtime in RUNTIMES:
        lines.append(f"runtime {runtime} {_version(runtime)}")
        for no_new_privileges in (True, False):
            chosen = [setting for setting in SETTINGS if setting.no_new_privileges is no_new_privileges]
            seen: dict[str, int] = {}
            for setting in chosen:
                for name, count in learn(runtime, setting, starts).items():
                    seen[name] = seen.get(name, 0) + count
            total = starts * len(chosen)
            lines += [f"{runtime} {chosen[0].name} {name} {count}/{total}" for name, count in sorted(seen.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    match argv[1:]:
        case ["learn", starts]:
            sys.stdout.write(learned_table(int(starts)))
        case ["starts", runtime, no_new_privileges, uid, docker, starts]:
            _starts(runtime, Setting(no_new_privileges == "True", int(uid), docker == "True"), int(starts))
        case [runtime, profile_path, *rest] if runtime in RUNTIMES:
            no_new_privileges = True
            if rest and rest[0].startswith("--no-new-privileges="):
                no_new_privileges = rest.pop(0).split("=", 1)[1] == "true"
            profile = json.loads(Path(profile_path).read_text()) if profile_path != "-" else None
            with tempfile.TemporaryDirectory() as directory:
                done = run_container(runtime, Path(directory), profile, rest, no_new_privileges=no_new_privileges)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            sys.exit(done.returncode)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
