"""Recording real programs under the real tracer, and checking what the trace says about them."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from profiler import trace as trace_module
from profiler.errors import TracingError, WorkloadError
from profiler.recording.kernel_features import CapabilityProbe
from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CgroupTarget, PidTarget, resolve_cgroup
from profiler.recording.tracer import TableSizes
from profiler.trace import CheckClass, EndReason, Trace
from tests.profiler.recording.conftest import RecordCommand, profiler_cli, programs, syscall_names, which


def capability_classes(trace: Trace) -> dict[str, set[CheckClass]]:
    classes: dict[str, set[CheckClass]] = {}
    for check in trace.capability_checks:
        classes.setdefault(check.capability or str(check.cap), set()).add(check.classification)
    return classes


def test_root_chown_needs_cap_chown_and_only_probes_cap_sys_admin(
    record_command: RecordCommand, tmp_path: Path
) -> None:
    target = tmp_path / "owned-by-root"
    target.touch()
    trace = record_command(which("chown"), "nobody", str(target)).trace
    classes = capability_classes(trace)
    needed = {name for name, kinds in classes.items() if CheckClass.NEEDED in kinds}
    assert needed == {"CAP_CHOWN"}
    assert classes["CAP_SYS_ADMIN"] == {CheckClass.PROBE}
    chown = next(c for c in trace.capability_checks if c.capability == "CAP_CHOWN")
    stack = trace.stack(chown.stack)
    assert chown.syscall == "fchownat" and chown.granted and chown.initial_user_ns
    assert stack is not None and "setattr_prepare" in stack.frames


def test_unprivileged_user_is_refused_cap_chown(record_command: RecordCommand) -> None:
    # pytest's tmp_path sits in a directory only root may enter.
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o755)
        target = Path(directory) / "writable"
        target.touch(mode=0o666)
        recording = record_command(which("chown"), "root:root", str(target), user="nobody")
    trace = recording.trace
    assert recording.exit_status == 1
    assert (trace.run.user, trace.run.uid) == ("nobody", 65534)
    assert capability_classes(trace)["CAP_CHOWN"] == {CheckClass.DENIED}


def test_python_sockets_are_seen_and_true_makes_none(record_command: RecordCommand) -> None:
    script = "import socket\nsocket.socket(socket.AF_INET6).close()\nsocket.socketpair(socket.AF_UNIX)\n"
    trace = record_command(sys.executable, "-c", script).trace
    families = {(use.syscall, use.family, use.type[0]) for use in trace.sockets}
    assert ("socket", "AF_INET6", "SOCK_STREAM") in families
    assert ("socketpair", "AF_UNIX", "SOCK_STREAM") in families
    assert record_command(which("true")).trace.sockets == ()


def test_grandchild_that_outlives_its_parent_is_traced(record_command: RecordCommand) -> None:
    script = (
        "import os, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5)\n"
        "        os.execv('/bin/echo', ['echo', 'late'])\n"
        "    os._exit(0)\n"
        "os.waitpid(child, 0)\n"
    )
    trace = record_command(sys.executable, "-c", script).trace
    root, child, grandchild = trace.processes
    assert (child.parent, grandchild.parent) == (root.id, child.id)
    assert [image.path for image in grandchild.images] == [sys.executable, "/bin/echo"]
    assert root.exit_s is not None and child.exit_s is not None and grandchild.exit_s is not None
    assert grandchild.exit_s > max(root.exit_s, child.exit_s) + 0.3
    assert grandchild.exit_code == 0 and trace.run.end_reason is EndReason.EXITED
    assert "write" in {u.name for u in trace.syscalls if (u.process, u.image) == (grandchild.id, 1)}


def strace_syscalls(argv: list[str], tmp_path: Path) -> set[str]:
    log = tmp_path / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-o", str(log), *argv], capture_output=True, check=True)
    names = set()
    for line in log.read_text().splitlines():
        match = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if match:
            names.add(match.group(1))
    return names


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "-la", "/"],
        ["sh", "-c", "echo hi | cat | wc -c"],
        [
            sys.executable,
            "-c",
            "import subprocess, threading; t = threading.Thread(target=print); t.start(); "
            "t.join(); subprocess.run(['true'])",
        ],
    ],
    ids=["ls", "shell-pipeline", "python-thread-and-child"],
)
def test_syscalls_agree_with_strace(record_command: RecordCommand, argv: list[str], tmp_path: Path) -> None:
    ours = syscall_names(record_command(*argv).trace)
    theirs = strace_syscalls(argv, tmp_path)
    # strace shows a call only once it starts it, and so does the tracer: the sets agree exactly,
    # exit_group included (strace prints it as "= ?").
    assert ours == theirs


def test_storm_of_a_thousand_short_processes_is_recorded_whole(record_command: RecordCommand) -> None:
    trace = record_command("sh", "-c", "for i in $(seq 1000); do /bin/true; done").trace
    runs_of_true = [p for p in trace.processes if p.images[-1].path == "/bin/true"]
    assert len(runs_of_true) == 1000
    assert all(p.exit_code == 0 and p.exit_s is not None for p in runs_of_true)
    assert trace.run.dropped.total == 0
    assert all({"execve", "exit_group"} <= {u.name for u in trace.syscalls if u.process == p.id} for p in runs_of_true)


def test_exec_chain_and_threads(record_command: RecordCommand) -> None:
    script = "import threading\nfor t in [threading.Thread(target=len, args=((),)) for _ in range(4)]: t.start()\n"
    trace = record_command("sh", "-c", f"exec {sys.executable} -c '{script}'").trace
    assert len(trace.processes) == 1, "threads are not processes"
    assert [image.path for image in trace.processes[0].images] == ["/usr/bin/sh", sys.executable]
    assert "clone3" in {u.name for u in trace.syscalls if u.image == 1}


def wait_for_sleeping_child(parent: int, argv: list[str], timeout_s: float = 20) -> int:
    """The pid of a child of parent that runs argv (a sleep) and is asleep in it, once there is one."""
    cmdline = "".join(f"{arg}\0" for arg in argv).encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            for pid in children:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline and Path(
                    f"/proc/{pid}/stat"
                ).read_text().startswith(f"{pid} (sleep) S "):
                    return int(pid)
        except OSError:  # a child that just exited
            pass
        time.sleep(0.05)
    raise AssertionError(f"no child of {parent} was sleeping in {argv} after {timeout_s} s")


def test_ctrl_c_during_a_recording_leaves_a_valid_trace(tmp_path: Path) -> None:
    output = tmp_path / "interrupted.trace.json"
    # A terminal sends Ctrl-C to the whole foreground process group: profiler and the command.
    profiler = subprocess.Popen(
        [sys.executable, "-m", "profiler.cli", "record", "-o", str(output), "--", "sleep", "30"],
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once the command runs sleep and sleeps (it execs only when the tracer is attached).
    wait_for_sleeping_child(profiler.pid, ["sleep", "30"])
    os.killpg(profiler.pid, signal.SIGINT)
    _, errors = profiler.communicate(timeout=30)
    assert profiler.returncode == 128 + signal.SIGINT, errors
    trace = trace_module.load(output)
    assert trace.run.end_reason is EndReason.INTERRUPTED
    sleep = trace.processes[0]
    assert sleep.images[0].path.endswith("/sleep") and sleep.exit_signal == "SIGINT"
    assert "clock_nanosleep" in syscall_names(trace)


def test_streams_and_exit_status_pass_through(tmp_path: Path) -> None:
    output = tmp_path / "streams.trace.json"
    script = 'read line; echo "got $line"; echo "to stderr" >&2; exit 3'
    result = profiler_cli("record", "-o", str(output), "--", "sh", "-c", script, input="hello\n")
    assert result.returncode == 3
    assert result.stdout == "got hello\n"
    assert "to stderr\n" in result.stderr and "profiler: trace saved to" in result.stderr
    assert trace_module.load(output).run.exit_status == 3


def test_attach_to_a_pid_follows_its_children_old_and_new() -> None:
    loop = subprocess.Popen(["sh", "-c", "sleep 30 & while true; do /bin/true; sleep 0.1; done"])
    try:
        sleep_30 = wait_for_sleeping_child(loop.pid, ["sleep", "30"])  # a child running before the attach
        trace = record(PidTarget(loop.pid), RecordOptions(duration_s=1.0)).trace
    finally:
        loop.kill()
        loop.wait()
    shell = next(p for p in trace.processes if p.pid == loop.pid)
    assert shell.attached and shell.parent is None
    # sleep 30, asleep all along, makes no syscall while recorded: found through /proc, it is in the tree anyway.
    [old_sleep] = [p for p in trace.processes if p.attached and p.pid == sleep_30]
    assert old_sleep.images[0].path.endswith("/sleep") and old_sleep.parent == shell.id
    assert old_sleep.exit_s is None and not [use for use in trace.syscalls if use.process == old_sleep.id]
    new = [p for p in trace.processes if not p.attached]
    assert any(p.images[-1].path == "/bin/true" and p.parent == shell.id for p in new)
    assert trace.run.end_reason is EndReason.DURATION and trace.run.duration_s < 3


def test_an_attached_tree_that_goes_on_running_names_every_image_it_recorded() -> None:
    """Recording ends while attached processes still exec; the last ones' images were once left unnamed (with
    four exec loops, in nearly every run) when the tables were read after the last drain of the ring buffer."""
    # A run whose ring buffer overflowed (a loaded machine starves the reader) loses exec events, and their images
    # are rightly unknown: only runs without drops test the naming, and three of them must be had.
    clean = 0
    for _ in range(10):
        # Four exec loops, in a process group of their own to kill them all, and each ended by timeout anyway.
        loops = "for i in 1 2 3 4; do timeout --foreground 20 sh -c 'while true; do /bin/true; done' & done; wait"
        loop = subprocess.Popen(["sh", "-c", loops], start_new_session=True)
        try:
            trace = record(PidTarget(loop.pid), RecordOptions(duration_s=0.3)).trace
        finally:
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()
        if trace.run.dropped.events:
            continue
        assert not [image for p in trace.processes for image in p.images if image.path.startswith("[unknown")]
        clean += 1
        if clean == 3:
            return
    pytest.fail(f"only {clean} of 10 recordings of the exec loops ran without dropped events")


def test_attach_never_traces_profiler_itself(tmp_path: Path) -> None:
    output = tmp_path / "self.trace.json"
    result = profiler_cli("record", "-o", str(output), "--pid", str(os.getpid()), "--duration", "0.5")
    assert result.returncode == 0, result.stderr
    trace = trace_module.load(output)
    recorded = {p.pid for p in trace.processes}
    assert os.getpid() in recorded or not recorded
    assert all("profiler.cli" not in " ".join(image.argv0 or "" for image in p.images) for p in trace.processes)
    with pytest.raises(WorkloadError):
        record(PidTarget(os.getpid()))


def test_attach_to_a_cgroup(tmp_path: Path) -> None:
    try:
        root = resolve_cgroup(Path("."))
    except WorkloadError as error:
        pytest.skip(f"this kernel has no cgroup v2 hierarchy mounted: {error}")
    group = root / f"profiler-test-{os.getpid()}"
    group.mkdir()
    member = subprocess.Popen(
        ["sh", "-c", f"echo $$ > {group}/cgroup.procs; while true; do cat /etc/hostname >/dev/null; sleep 0.1; done"]
    )
    try:
        time.sleep(0.3)
        trace = record(CgroupTarget(group), RecordOptions(duration_s=1.0)).trace
    finally:
        (group / "cgroup.kill").write_text("1")
        member.wait()
        while "populated 1" in (group / "cgroup.events").read_text():
            time.sleep(0.05)
        group.rmdir()
    assert any(p.pid == member.pid and p.attached for p in trace.processes)
    assert "/usr/bin/cat" in programs(trace)
    assert trace.run.target == str(group)


def test_namespaces_created_are_recorded(record_command: RecordCommand) -> None:
    trace = record_command(which("unshare"), "--user", "--net", "true")
    uses = {(use.syscall, use.flags) for use in trace.trace.namespaces}
    assert ("unshare", ("CLONE_NEWUSER", "CLONE_NEWNET")) in uses or (
        "unshare",
        ("CLONE_NEWNET", "CLONE_NEWUSER"),
    ) in uses


def test_an_unknown_syscall_number_stays_a_number(record_command: RecordCommand) -> None:
    script = "import ctypes\nctypes.CDLL(None, use_errno=True).syscall(999)\n"
    trace = record_command(sys.executable, "-c", script).trace
    unknown = next(use for use in trace.syscalls if use.nr == 999)
    assert unknown.name is None and unknown.unresolved and "999" in unknown.unresolved
    assert "libseccomp" in unknown.unresolved


# A static 32-bit x86 program with no C library: run with one argument it makes sockets all three ways a
# 32-bit program can (socketcall, and socket/socketpair called directly since Linux 4.3), a UTS namespace,
# then execs itself as "again"; run with two it exits with status 3.
PROGRAM_32_BIT = r"""
    .globl _start
_start:
    cmpl $1, (%esp)
    jne again
    pushl $0                   # socketcall(SYS_SOCKET, {AF_INET, SOCK_DGRAM, 0}), its arguments on the
    pushl $2                   # stack as the C library puts them
    pushl $2
    movl $102, %eax
    movl $1, %ebx
    movl %esp, %ecx
    int $0x80
    addl $12, %esp
    movl $359, %eax            # socket(AF_UNIX, SOCK_STREAM, 0)
    movl $1, %ebx
    movl $1, %ecx
    xorl %edx, %edx
    int $0x80
    movl $360, %eax            # socketpair(AF_UNIX, SOCK_DGRAM, 0, pair)
    movl $1, %ebx
    movl $2, %ecx
    xorl %edx, %edx
    leal pair, %esi
    int $0x80
    movl $310, %eax            # unshare(CLONE_NEWUTS)
    movl $0x04000000, %ebx
    int $0x80
    movl $11, %eax             # execve(argv[0], {"again", "x"}, NULL)
    movl 4(%esp), %ebx
    leal again_argv, %ecx
    xorl %edx, %edx
    int $0x80
again:
    movl $252, %eax            # exit_group(3)
    movl $3, %ebx
    int $0x80
    .data
pair: .long 0, 0
again_argv: .long again_name, again_arg, 0
again_name: .asciz "again"
again_arg: .asciz "x"
"""


def test_a_32_bit_process_is_flagged_named_in_its_own_table_and_decoded(
    record_command: RecordCommand, tmp_path: Path
) -> None:
    if (
        not Path("/proc/config.gz").exists()
        or b"CONFIG_IA32_EMULATION=y" not in subprocess.run(["zcat", "/proc/config.gz"], capture_output=True).stdout
    ):
        pytest.skip("this kernel does not run 32-bit programs (no CONFIG_IA32_EMULATION)")
    source = tmp_path / "program32.S"
    source.write_text(PROGRAM_32_BIT)
    program = tmp_path / "program32"
    subprocess.run(["gcc", "-m32", "-static", "-no-pie", "-nostdlib", "-o", str(program), str(source)], check=True)
    recording = record_command(str(program))
    trace = recording.trace
    assert recording.exit_status == 3
    [process] = trace.processes
    assert [image.abi for image in process.images] == ["x86", "x86"]
    assert process.images[1].argv0 == "again"
    assert process.exit_code == 3
    assert {(u.nr, u.name) for u in trace.syscalls} >= {(102, "socketcall"), (359, "socket"), (252, "exit_group")}
    sockets = {(s.syscall, s.family, s.type) for s in trace.sockets}
    assert sockets == {
        ("socket", "AF_INET", ("SOCK_DGRAM",)),
        ("socket", "AF_UNIX", ("SOCK_STREAM",)),
        ("socketpair", "AF_UNIX", ("SOCK_DGRAM",)),
    }
    assert {(n.syscall, n.flags) for n in trace.namespaces} == {("unshare", ("CLONE_NEWUTS",))}
    assert trace.run.dropped.sockets == 0


def test_full_tables_are_counted_as_dropped_not_lost_silently(record_command: RecordCommand) -> None:
    tiny = TableSizes(rows=1, observations=4, stacks=4)
    recording = record_command(
        "sh", "-c", "ls / >/dev/null; cat /etc/hostname >/dev/null", options=RecordOptions(sizes=tiny)
    )
    dropped = recording.trace.run.dropped
    assert dropped.syscalls > 0
    trace_module.parse(recording.trace.to_json(), "tiny")


def test_observations_of_exited_processes_make_room_for_later_ones(record_command: RecordCommand) -> None:
    """A long recording of many short processes: the kernel's observations table holds 512 entries, the run makes
    about 900 (root's /bin/true and sleep check CAP_SYS_ADMIN in six places each), over some seconds. Entries of
    processes that exited are taken out as the recording goes; without that, hundreds would be dropped."""
    small = TableSizes(observations=512)
    script = "for i in $(seq 80); do /bin/true; sleep 0.05; done"
    trace = record_command("sh", "-c", script, options=RecordOptions(sizes=small)).trace
    assert trace.run.dropped.total == 0
    assert len(trace.capability_checks) > small.observations
    runs_of_true = {p.id for p in trace.processes if p.images[-1].path == "/bin/true"}
    assert len(runs_of_true) == 80
    assert runs_of_true <= {check.process for check in trace.capability_checks}


def test_kprobe_fallback_records_capability_checks(record_command: RecordCommand, tmp_path: Path) -> None:
    try:
        options = RecordOptions(capability_probe=CapabilityProbe.KPROBE)
        target = tmp_path / "file"
        target.touch()
        trace = record_command(which("chown"), "nobody", str(target), options=options).trace
    except TracingError as error:
        pytest.skip(f"the kprobe fallback cannot load here: {error}")
    assert capability_classes(trace)["CAP_CHOWN"] == {CheckClass.NEEDED}
    assert capability_classes(trace)["CAP_SYS_ADMIN"] == {CheckClass.PROBE}


def test_a_saved_trace_loads_back_identical(record_command: RecordCommand, tmp_path: Path) -> None:
    trace = record_command("sh", "-c", "ls / > /dev/null").trace
    path = tmp_path / "saved.trace.json"
    trace.save(path)
    assert trace_module.load(path) == trace
    assert path.read_text() == trace_module.load(path).to_json()
