"""Learned policies run where they are deployed: each workload is recorded, then run by the real consumer under
its own generated policy, and again with the rule under test taken out, which breaks it.

    systemd 252   RestrictNamespaces= answers clone3 with ENOSYS: threads and child processes need clone
    runc, crun    the runtime's own calls between loading the filter and the exec
    any filter    a process stopped and continued in a timed sleep resumes through restart_syscall
    any filter    a policy that answers faccessat2 with ENOSYS needs faccessat, glibc's fallback
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from generators.compare import compare
from generators.formats import correction
from generators.interface import RenderOptions
from generators.profile import Profile
from generators.seccomp.oci import OciFormat
from generators.systemd.format import SystemdFormat
from profiler import syscalls
from tests.generators import oci_runtime, systemd_analyze
from tests.generators.conftest import recorded_profile

pytestmark = pytest.mark.tracing
LOADER = Path(__file__).parent / "seccomp" / "oci_libseccomp.py"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What runc spec gives the container's process: PATH and TERM, no PWD, and / as its working directory.
CONTAINER_ENV = {"PATH": PATH, "TERM": "xterm"}
PYTHON = ("/usr/bin/python3", "-I", "-S", "-c")
THREAD = "import threading; t = threading.Thread(target=print, args=('thread ran',)); t.start(); t.join()"
PIPELINE = ("/bin/sh", "-c", "echo hello | tr a-z A-Z")


def _without_line(text: str, line: str) -> str:
    assert line in text.splitlines(), f"{line!r} is not in the policy"
    return "".join(f"{each}\n" for each in text.splitlines() if each != line)


# --- systemd: RestrictNamespaces= answers clone3 with ENOSYS, so threads and children need clone ----------------------


@pytest.fixture
def units_can_run() -> None:
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def build_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A C program and its Makefile: make runs cc, which runs cc1, as and ld."""
    directory = tmp_path_factory.mktemp("build")
    (directory / "hello.c").write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    (directory / "Makefile").write_text("hello: hello.c\n\tcc -o hello hello.c\n")
    return directory


def _fresh_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    (target / "hello").unlink(missing_ok=True)
    return target


@pytest.fixture(scope="module")
def input_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zstd") / "input"
    path.write_bytes(os.urandom(1 << 16) * 64)  # 4 MiB, so that zstd -T2 starts its worker threads
    return path


WORKLOADS: dict[str, Callable[[Path, Path, Path], tuple[tuple[str, ...], Path]]] = {
    # name: (the build directory, the input file, a scratch directory) -> (argv, working directory)
    "python-thread": lambda build, data, scratch: ((*PYTHON, THREAD), scratch),
    "make-cc": lambda build, data, scratch: (("/usr/bin/make", "-s"), _fresh_copy(build, scratch / "build")),
    "zstd-T2": lambda build, data, scratch: (
        ("/usr/bin/zstd", "-q", "-f", "-T2", str(data), "-o", str(scratch / "out.zst")),
        scratch,
    ),
}


@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_threads_and_children_start_under_the_drop_in_through_the_clone_fallback(
    units_can_run: None,
    workload: str,
    systemd: SystemdFormat,
    build_directory: Path,
    input_file: Path,
    tmp_path: Path,
) -> None:
    """The drop-in allows clone, which no run made: RestrictNamespaces=yes makes glibc fall back to it from clone3."""
    recorded_in, run_in = tmp_path / "recorded", tmp_path / "run"
    recorded_in.mkdir()
    argv, cwd = WORKLOADS[workload](build_directory, input_file, recorded_in)
    # The syscall filter alone: the workload runs again in directories of other names, and the user manager
    # cannot set up the whole unit's ProtectHome= and kin (test_demo_unit.py runs a whole unit).
    profile = dataclasses.replace(recorded_profile(*argv, cwd=cwd, env={"PATH": PATH}), sandbox=None)
    assert "clone3" in profile.syscall_names() and "clone" not in profile.syscall_names()
    drop_in = systemd.render(profile, RenderOptions())
    assert "RestrictNamespaces=yes" in drop_in.splitlines()
    units = {}
    for name, text in (("whole", drop_in), ("without-clone", _without_line(drop_in, "SystemCallFilter=clone"))):
        (run_in / name).mkdir(parents=True)
        argv, cwd = WORKLOADS[workload](build_directory, input_file, run_in / name)
        command = " ".join(f'"{word}"' for word in argv)  # none of the words holds a double quote
        units[name] = (f"[Service]\nType=oneshot\nWorkingDirectory={cwd}\nExecStart={command}\n", text)
    results = systemd_analyze.run_units(tmp_path, units)
    assert results["whole"] == ("success", 0)
    assert results["without-clone"][0] == "exit-code" and results["without-clone"][1] != 0
    without = tmp_path / "without-clone.conf"
    without.write_text(units["without-clone"][1])
    missing = compare(profile, systemd.read(without)).missing
    assert [(item.need.name, item.need.because) for item in missing] == [("clone", ("clone3",))]


# --- runc and crun: the runtime's own calls between loading the filter and the exec ----------------------------------


@pytest.fixture(scope="module")
def containers_can_run() -> None:
    reason = oci_runtime.cannot_run_containers()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def pipeline_profile(containers_can_run: None) -> Profile:
    """Recorded as the container runs it: from /, with runc spec's environment (no PWD: dash calls getcwd)."""
    return recorded_profile(*PIPELINE, cwd=Path("/"), env=CONTAINER_ENV)


@pytest.fixture(scope="module")
def true_profile(containers_can_run: None) -> Profile:
    return recorded_profile("/bin/true", cwd=Path("/"), env=CONTAINER_ENV)


CONTAINERS = {"pipeline": (PIPELINE, "HELLO\n"), "true": (("/bin/true",), "")}


@pytest.mark.parametrize("no_new_privileges", [True, False], ids=["no_new_privileges", "privileges"])
@pytest.mark.parametrize("runtime", oci_runtime.RUNTIMES)
@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_the_container_starts_under_its_own_profile_with_the_runtimes_calls(
    container: str,
    runtime: str,
    no_new_privileges: bool,
    pipeline_profile: Profile,
    true_profile: Profile,
    tmp_path: Path,
) -> None:
    argv, output = CONTAINERS[container]
    profile = pipeline_profile if container == "pipeline" else true_profile

    def start(runtimes: tuple[str, ...], name: str) -> subprocess.CompletedProcess[str]:
        document = json.loads(OciFormat().render(profile, RenderOptions(runtimes=runtimes)))
        return oci_runtime.run_container(
            runtime, tmp_path, document, argv, no_new_privileges=no_new_privileges, name=name
        )

    started = start(("crun", "runc"), "both")
    assert (started.returncode, started.stdout) == (0, output), started.stderr
    mine = start((runtime,), "own")
    assert (mine.returncode, mine.stdout) == (0, output), mine.stderr
    workload_only = start((), "none")
    if runtime == "crun" and no_new_privileges:
        # crun with no_new_privileges loads the filter just before the exec: it calls only close and execve under
        # it, which every workload makes too, so a profile without the runtime's calls starts as well.
        assert workload_only.returncode == 0, workload_only.stderr
    else:
        assert workload_only.returncode != 0 and workload_only.stdout == ""
    other = start(tuple(name for name in oci_runtime.RUNTIMES if name != runtime), "other")
    if not (runtime == "crun" and no_new_privileges):
        assert other.returncode != 0, "the other runtime's calls are not this runtime's"


# --- restart_syscall: a process stopped and continued in a timed sleep resumes through it ----------------------------

SLEEPERS = {
    # name: (argv recorded and run, the syscall the process sleeps in when it is stopped)
    "sleep": (("/bin/sleep", "1"), "clock_nanosleep"),
    "poll": ((*PYTHON, "import select; select.poll().poll(1000); print('woke')"), "poll"),
    "futex": ((*PYTHON, "import threading; threading.Event().wait(1); print('woke')"), "futex"),
}


def _stopped_and_continued(
    profile_path: Path, argv: tuple[str, ...], sleeping_in: str
) -> subprocess.CompletedProcess[str]:
    """Run argv under the profile as a runtime loads it; once it sleeps, stop it and continue it."""
    number = syscalls.syscall_number(syscalls.native_abi(), sleeping_in)
    process = subprocess.Popen(
        [sys.executable, str(LOADER), str(profile_path), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # /proc/PID/syscall starts with the number of the syscall it is blocked in
        try:
            if Path(f"/proc/{process.pid}/syscall").read_text().split()[0] == str(number):
                break
        except (OSError, IndexError):
            pass
        time.sleep(0.01)
    else:
        process.kill()
        pytest.fail(f"{argv[0]} never slept in {sleeping_in}")
    process.send_signal(signal.SIGSTOP)
    time.sleep(0.1)
    process.send_signal(signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("sleeper", sorted(SLEEPERS))
def test_a_sleeper_survives_stop_and_continue_under_its_own_profile(sleeper: str, tmp_path: Path) -> None:
    argv, sleeping_in = SLEEPERS[sleeper]
    profile = recorded_profile(*argv)
    assert sleeping_in in profile.syscall_names() and "restart_syscall" not in profile.syscall_names()
    document = json.loads(OciFormat().render(profile, RenderOptions(runtimes=())))
    whole, without = tmp_path / "whole.json", tmp_path / "without.json"
    whole.write_text(json.dumps(document))
    document["syscalls"] = [rule for rule in document["syscalls"] if rule["names"] != ["restart_syscall"]]
    without.write_text(json.dumps(document))
    survived = _stopped_and_continued(whole, argv, sleeping_in)
    assert survived.returncode == 0, survived.stderr
    broken = _stopped_and_continued(without, argv, sleeping_in)
    assert broken.returncode != 0
    missing = compare(profile, OciFormat().read(without), runtimes=()).missing
    assert [(item.need.name, sleeping_in in item.need.because) for item in missing] == [("restart_syscall", True)]


# --- a policy that answers a syscall with ENOSYS needs the C library's fallback ---------------------------------------

ACCESS = "import os; print(os.access('/etc/hostname', os.R_OK, effective_ids=True))"  # glibc: faccessat2 first


def test_a_profile_that_answers_faccessat2_with_enosys_needs_faccessat(tmp_path: Path) -> None:
    """As a deployed profile may (runc answers syscalls newer than its profile's with ENOSYS; a hand-written one)."""
    profile = recorded_profile(*PYTHON, ACCESS)
    assert "faccessat2" in profile.syscall_names() and "faccessat" not in profile.syscall_names()
    document = json.loads(OciFormat().render(profile, RenderOptions(runtimes=())))
    for rule in document["syscalls"]:
        if rule["names"] == ["faccessat2"]:
            rule.update(action="SCMP_ACT_ERRNO", errnoRet=38, comment="answered with ENOSYS")
    enosys = tmp_path / "enosys.json"
    enosys.write_text(json.dumps(document))

    def run(path: Path) -> str:
        done = subprocess.run([sys.executable, str(LOADER), str(path), *PYTHON, ACCESS], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(enosys) == "False\n", "glibc fell back to faccessat, which the profile refuses"
    comparison = compare(profile, OciFormat().read(enosys), runtimes=())
    assert [(item.need.name, item.need.because) for item in comparison.missing] == [("faccessat", ("faccessat2",))]
    fix = correction(comparison)
    assert fix is not None
    document["syscalls"] += json.loads(f"[{fix.text}]")
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(document))
    assert run(fixed) == "True\n"


# --- systemd's reading: RestrictNamespaces= answers clone3 with ENOSYS whenever it restricts anything ---------------

CLONE3 = (
    "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "  # clone3(NULL, 0): EINVAL, or a filter's ENOSYS
    "sys.exit(ctypes.get_errno() if libc.syscall(435, None, 0) < 0 else 0)"
)
ENOSYS, EINVAL = 38, 22


def test_restrict_namespaces_answers_clone3_with_enosys_as_the_reader_says(
    units_can_run: None, systemd: SystemdFormat, tmp_path: Path
) -> None:
    values = {
        "yes": "yes", "not-user": "~user", "user": "user", "time": "time",
        "no": "no", "empty": "", "all-seven": "cgroup ipc net mnt pid user uts", "all": "~",
    }  # fmt: skip
    unit = f'[Service]\nType=oneshot\nExecStart=/usr/bin/python3 -c "{CLONE3}"\n'
    results = systemd_analyze.run_units(
        tmp_path, {name: (unit, f"[Service]\nRestrictNamespaces={value}\n") for name, value in values.items()}
    )
    for name in values:
        read = systemd.read(tmp_path / "config" / "systemd" / "user" / f"{name}.service")
        answered = [each.setting for each in read.syscall_overrides("clone3") if each.errno == "ENOSYS"]
        assert results[name] == ("exit-code", ENOSYS if answered else EINVAL), (name, answered)
    assert {name for name in values if results[name][1] == ENOSYS} == {"yes", "not-user", "user", "time"}
