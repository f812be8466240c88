"""Recording the files and kernel interfaces real programs use: each access appears with its operation, result and
program, relative paths made absolute, and nothing at all where the recording was asked not to look."""

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from profiler.recording.file_accesses import born_since
from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget, PidTarget
from profiler.recording.tracer import TableSizes
from profiler.trace import FileOp, KernelUse, Trace
from tests.profiler.recording.conftest import RecordCommand, which

# One program doing one of each thing, in a directory it is given; it ends by exec'ing true.
WORKLOAD = textwrap.dedent(
    """
    import ctypes, mmap, os, shutil, socket, sys
    os.chdir(sys.argv[1])
    fd = os.open("created", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"x")
    os.close(fd)
    with open("written", "w") as written:
        written.write("x")
    os.rename("written", "renamed")
    os.unlink("created")
    os.chmod("renamed", 0o4755)
    os.symlink("renamed", "link")
    open("link").close()
    os.mkdir("sub")
    open("sub/inner", "w").close()
    os.listdir(".")
    directory = os.open("sub", os.O_RDONLY | os.O_DIRECTORY)
    os.close(os.open("inner", os.O_RDONLY, dir_fd=directory))
    try:
        open("missing")
    except FileNotFoundError:
        pass
    open("/dev/null", "w").close()
    open("/proc/1/status").read()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.socket()
    client.connect(server.getsockname())
    named = socket.socket(socket.AF_UNIX)  # an abstract name: a peer in the network namespace, as loopback is
    named.bind("\\0profiler-test-peer")
    named.listen()
    socket.socket(socket.AF_UNIX).connect("\\0profiler-test-peer")
    socket.socket(socket.AF_UNIX).bind("bound.sock")  # makes the socket's file, relative to the directory
    with open("made", "w") as made:  # O_CREAT without O_EXCL: the file is new, and stays
        made.write("x")
    with open(sys.argv[2], "w") as rewritten:  # O_CREAT, O_TRUNC of a file there before the run
        rewritten.write("x")
    beyond = socket.socket()
    beyond.setblocking(False)
    try:
        beyond.connect(("192.0.2.1", 9))
    except BlockingIOError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.mmap(-1, mmap.PAGESIZE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    assert libc.mprotect(ctypes.c_void_p(address), mmap.PAGESIZE, 7) == 0, ctypes.get_errno()
    assert libc.mprotect(ctypes.c_void_p(address), mmap.PAGESIZE, 5) == 0, ctypes.get_errno()  # as a JIT does
    libc.personality(0x0008)
    try:  # asked for is what counts: a cgroup without realtime runtime refuses it even to root
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except PermissionError:
        pass
    os.makedirs("tree/a")
    open("tree/a/file", "w").close()
    shutil.rmtree("tree")  # through descriptors: a dup of each directory's, unlinkat relative to it
    os.execv("/usr/bin/true", ["true"])
    """
)


def accesses(trace: Trace, process: int = 1) -> set[tuple[str, FileOp, str | None]]:
    assert trace.file_accesses is not None
    return {(row.path, row.op, row.error) for row in trace.file_accesses if row.process == process}


def kernel_uses(trace: Trace) -> set[tuple[KernelUse, str]]:
    assert trace.kernel_uses is not None
    return {(row.use, row.detail) for row in trace.kernel_uses}


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trace, Path]:
    directory = tmp_path_factory.mktemp("work").resolve()
    (directory / "there").write_text("")
    recording = record(CommandTarget((sys.executable, "-c", WORKLOAD, str(directory), str(directory / "there"))))
    assert recording.exit_status == 0
    return recording.trace, directory


def test_what_a_program_does_to_files_is_recorded_with_absolute_paths(workload: tuple[Trace, Path]) -> None:
    trace, work = workload
    seen = accesses(trace)
    for access in [
        (f"{work}/created", FileOp.CREATE, None),  # O_CREAT|O_EXCL, relative to the working directory
        (f"{work}/written", FileOp.WRITE, None),
        (f"{work}/written", FileOp.RENAME, None),
        (f"{work}/renamed", FileOp.RENAME, None),
        (f"{work}/created", FileOp.DELETE, None),
        (f"{work}/renamed", FileOp.CHMOD, None),
        (f"{work}/renamed", FileOp.SETID, None),
        (f"{work}/link", FileOp.CREATE, None),
        (f"{work}/link", FileOp.READ, None),  # as given, and as resolved:
        (f"{work}/renamed", FileOp.READ, None),
        (f"{work}/sub", FileOp.CREATE, None),
        (work.as_posix(), FileOp.LIST, None),
        (f"{work}/sub/inner", FileOp.READ, None),  # openat through a directory descriptor
        (f"{work}/missing", FileOp.READ, "ENOENT"),
        ("/dev/null", FileOp.WRITE, None),
        ("/usr/bin/true", FileOp.EXEC, None),
        (f"{work}/tree/a", FileOp.LIST, None),
        (f"{work}/tree/a/file", FileOp.DELETE, None),
        (f"{work}/tree/a", FileOp.DELETE, None),
        (f"{work}/bound.sock", FileOp.CREATE, None),  # bind of an AF_UNIX path (an abstract name makes no file)
        (f"{work}/made", FileOp.WRITE, None),
        (f"{work}/there", FileOp.WRITE, None),
    ]:
        assert access in seen, access
    # Born during the recording: the open made it (where the file system keeps birth times, as ext4 does).
    assert ((f"{work}/made", FileOp.CREATE, None) in seen) is born_since(f"{work}/made", 0)
    assert (f"{work}/there", FileOp.CREATE, None) not in seen
    assert not any("profiler-test-peer" in path for path, _, _ in seen)
    assert any(op is FileOp.MAP_EXEC and "/libc.so" in path for path, op, _ in seen), "ld.so maps libc executable"
    device = next(row.device for row in trace.file_accesses or () if row.path == "/dev/null")
    assert device == (1, 3)
    assert all(row.device is None for row in trace.file_accesses or () if row.path.startswith(str(work)))
    assert trace.run.dropped.nonzero() == {}


def test_exec_is_the_old_image_and_the_new_one_reads_its_libraries(workload: tuple[Trace, Path]) -> None:
    trace, _ = workload
    rows = trace.file_accesses or ()
    assert {(row.image, row.op) for row in rows if row.path == "/usr/bin/true"} == {(0, FileOp.EXEC)}
    assert any(row.image == 1 and row.op is FileOp.MAP_EXEC for row in rows)


def test_kernel_interfaces_are_recorded_with_their_detail(workload: tuple[Trace, Path]) -> None:
    trace, _ = workload
    uses = kernel_uses(trace)
    assert (KernelUse.WRITE_EXECUTE, "mprotect PROT_READ|PROT_WRITE|PROT_EXEC") in uses
    assert (KernelUse.WRITE_EXECUTE, "mprotect PROT_READ|PROT_EXEC") in uses  # MemoryDenyWriteExecute= refuses it
    assert (KernelUse.PERSONALITY, "personality(0x0008)") in uses
    assert (KernelUse.REALTIME, "sched_setscheduler SCHED_FIFO") in uses
    assert (KernelUse.NETWORK, "connect 192.0.2.1:9") in uses
    assert (KernelUse.OTHER_PROCESS, "/proc/1/status read") in uses
    loopback = {detail.split()[0] for use, detail in uses if use is KernelUse.LOOPBACK}
    assert loopback == {"bind", "connect"}
    assert {
        (KernelUse.LOOPBACK, "bind @profiler-test-peer"),
        (KernelUse.LOOPBACK, "connect @profiler-test-peer"),
    } <= uses
    assert not any(use is KernelUse.REALTIME and "OTHER" in detail for use, detail in uses)


def test_a_failed_exec_on_the_path_is_a_probe_and_the_one_found_is_the_exec(record_command: RecordCommand) -> None:
    # execvp tries each PATH directory in turn.
    trace = record_command(which("env"), "PATH=/nonexistent-dir:/usr/bin", "true").trace
    execs = {(row.path, row.error) for row in trace.file_accesses or () if row.op is FileOp.EXEC}
    assert execs == {(which("env"), None), ("/nonexistent-dir/true", "ENOENT"), ("/usr/bin/true", None)}


def test_no_paths_records_neither_table(record_command: RecordCommand) -> None:
    trace = record_command(which("cat"), "/etc/hostname", options=RecordOptions(paths=False)).trace
    assert trace.file_accesses is None and trace.kernel_uses is None
    assert trace.syscalls


def test_a_full_table_counts_what_it_dropped(record_command: RecordCommand) -> None:
    options = RecordOptions(sizes=TableSizes(files=16))
    trace = record_command(which("ls"), "-R", "/usr/share/doc", options=options).trace
    assert trace.file_accesses is not None and len(trace.file_accesses) <= 2 * 16
    assert trace.run.dropped.paths > 0


def test_path_events_that_wake_no_one_do_not_overflow_the_ring(record_command: RecordCommand) -> None:
    # 20,000 new paths from one process, no process event among them to wake user space: some 2.4 MB of events
    # into a ring of 1 MiB, which each CPU's unread share (a quarter of it on two CPUs) drains in time.
    options = RecordOptions(sizes=TableSizes(ringbuf_pages=256))
    opens = "for i in range(20000):\n try: open(f'/nonexistent/{i:05}-' + 'x' * 40)\n except OSError: pass"
    trace = record_command(sys.executable, "-c", opens, options=options).trace
    assert trace.run.dropped.events == 0
    missing = {row.path for row in trace.file_accesses or () if row.path.startswith("/nonexistent/")}
    assert len(missing) == 20000


def test_a_relative_path_of_a_process_that_started_elsewhere(record_command: RecordCommand, tmp_path: Path) -> None:
    # A child started in another directory by its parent: its working directory is learned from the chdir.
    (tmp_path / "here").write_text("x")
    trace = record_command(which("sh"), "-c", f"cd {tmp_path} && cat here && cd / && cat etc/hostname").trace
    read = {(row.path, row.error) for row in trace.file_accesses or () if row.op is FileOp.READ}
    assert (f"{tmp_path.resolve()}/here", None) in read
    assert ("/etc/hostname", None) in read


def test_the_processes_of_one_program_share_its_rows_which_name_the_first(
    record_command: RecordCommand, tmp_path: Path
) -> None:
    # Two cat processes read one file: one row for the program, counting both, naming the one that read it first.
    shared = tmp_path / "shared"
    shared.write_text("x")
    cat = which("cat")
    trace = record_command(which("sh"), "-c", f"{cat} {shared} >/dev/null; {cat} {shared} >/dev/null").trace
    cats = sorted(
        (image.exec_s or 0.0, process.id, index)
        for process in trace.processes
        for index, image in enumerate(process.images)
        if image.path == cat
    )
    assert len({process for _, process, _ in cats}) == 2
    rows = [row for row in trace.file_accesses or () if row.path == str(shared.resolve()) and row.op is FileOp.READ]
    _, first, image = cats[0]
    assert [(row.process, row.image, row.count) for row in rows] == [(first, image, 2)]


def test_the_cli_says_whether_it_records_paths() -> None:
    def program(*options: str) -> str:
        command = [sys.executable, "-m", "profiler.cli", "record", "--ebpf", *options, "--", "true"]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    assert "#define RECORD_PATHS 1" in program()
    assert "#define RECORD_PATHS" not in program("--no-paths")


def test_the_interpreters_an_exec_runs_are_recorded(record_command: RecordCommand, tmp_path: Path) -> None:
    # The kernel opens a script's #! interpreter and an ELF program's loader itself, with no syscall of the program.
    script = tmp_path / "script"
    script.write_text("#!/bin/sh -e\nexit 0\n")
    script.chmod(0o755)
    trace = record_command(str(script)).trace
    seen = {(row.image, row.path, row.op) for row in trace.file_accesses or () if row.process == 1}
    assert (0, str(script), FileOp.EXEC) in seen  # the command itself: its exec ran before the kernel side saw it
    assert (0, "/bin/sh", FileOp.EXEC) in seen
    assert (0, os.path.realpath("/bin/sh"), FileOp.EXEC) in seen  # as given, and resolved
    if platform.machine() == "x86_64":
        assert (0, "/lib64/ld-linux-x86-64.so.2", FileOp.MAP_EXEC) in seen
        assert (0, os.path.realpath("/lib64/ld-linux-x86-64.so.2"), FileOp.MAP_EXEC) in seen


def test_an_attached_process_s_relative_paths_are_made_absolute_against_its_directory(tmp_path: Path) -> None:
    # It was started in a directory before the recording: where it works is read at its adoption.
    (tmp_path / "relative").write_text("x")
    loop = subprocess.Popen(["sh", "-c", "while true; do cat relative >/dev/null; sleep 0.05; done"], cwd=tmp_path)
    try:
        trace = record(PidTarget(loop.pid), RecordOptions(duration_s=1.0)).trace
    finally:
        loop.kill()
        loop.wait()
    read = {row.path for row in trace.file_accesses or () if row.op is FileOp.READ and row.error is None}
    assert f"{tmp_path.resolve()}/relative" in read
    assert trace.run.dropped.unresolved_paths == 0
