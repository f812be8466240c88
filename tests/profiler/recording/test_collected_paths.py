"""File accesses and kernel uses from the tracer's events to the trace file, through the fake tracer (no root, no
BPF): what the collector makes of them is what the trace format writes, reads back, and a profile builds on."""

import errno
import os
from pathlib import Path

import pytest

from generators.profile import build_profile
from profiler import trace as trace_module
from profiler.recording.collector import Collector
from profiler.recording.fake_tracer import FakeTracer, file_observation, path_sight, process_event
from profiler.recording.tracer import (
    CWD_MARK,
    EventKind,
    KernelFileOp,
    Observation,
    ObservationKind,
    PathSight,
)
from profiler.trace import FileOp, KernelUse, RunInfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "traces"
CONNECT, MPROTECT = 42, 10  # x86_64
SERIAL = 1


@pytest.fixture
def run() -> RunInfo:
    return trace_module.load(FIXTURES / "true.trace.json").run


def _sight(name: int, op: KernelFileOp, path: str, *, error: int = 0, directory: int = 0, ns: int = 0) -> PathSight:
    return path_sight(SERIAL, name, op, path, error=error, directory=directory, time_ns=ns)


def _access(name: int, op: KernelFileOp, error: int = 0, count: int = 1) -> Observation:
    return file_observation(SERIAL, name, op, error=error, count=count)


def test_what_the_fake_tracer_saw_is_what_the_trace_file_holds(
    fake_tracer: FakeTracer, run: RunInfo, tmp_path: Path
) -> None:
    (tmp_path / "work").mkdir()
    fake_tracer.paths = True
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None, paths=True)
    collector.apply(process_event(EventKind.EXEC, SERIAL, os.getpid(), first_exec=True, path="/bin/sh"))
    sights = [
        _sight(11, KernelFileOp.READ, "/etc/hostname", ns=2_000_000),
        _sight(12, KernelFileOp.READ, "missing", error=errno.ENOENT, directory=CWD_MARK | SERIAL, ns=3_000_000),
        _sight(13, KernelFileOp.CREATE, f"{tmp_path}/work/./new", ns=4_000_000),
        _sight(14, KernelFileOp.WRITE, "/dev/null", ns=5_000_000),
        _sight(15, KernelFileOp.READ, "/etc/unsupported", error=524, ns=6_000_000),  # ENOTSUPP: no errno name
    ]
    fake_tracer.polls = [sights]
    for event in fake_tracer.poll(0):
        collector.apply(event)
    fake_tracer.table = [
        _access(11, KernelFileOp.READ, count=3),
        _access(12, KernelFileOp.READ, errno.ENOENT),
        _access(13, KernelFileOp.CREATE),
        _access(14, KernelFileOp.WRITE),
        _access(15, KernelFileOp.READ, 524),
        _access(99, KernelFileOp.READ),  # a name no sight taught: unresolved
        Observation(ObservationKind.KERNEL, SERIAL, 0, MPROTECT, 7, 0, 0, 0, 0, 1),
        Observation(
            ObservationKind.KERNEL,
            SERIAL,
            0,
            CONNECT,
            2,
            8080,
            int.from_bytes(bytes([127, 0, 0, 1]), "little"),
            0,
            0,
            2,
        ),
    ]
    trace = collector.build(run, fake_tracer.observations())
    saved = tmp_path / "paths.trace.json"
    trace.save(saved)
    again = trace_module.load(saved)
    assert again == trace
    assert again.file_accesses is not None and again.kernel_uses is not None
    accesses = {(a.path, a.op, a.error, a.device, a.count) for a in again.file_accesses}
    assert accesses >= {
        ("/etc/hostname", FileOp.READ, None, None, 3),
        (f"{os.getcwd()}/missing", FileOp.READ, "ENOENT", None, 1),
        (f"{tmp_path}/work/new", FileOp.CREATE, None, None, 1),
        ("/dev/null", FileOp.WRITE, None, (1, 3), 1),
        ("/etc/unsupported", FileOp.READ, "524", None, 1),
    }
    assert again.run.dropped.unresolved_paths == 1
    assert {(k.use, k.detail, k.count) for k in again.kernel_uses} == {
        (KernelUse.WRITE_EXECUTE, "mprotect PROT_READ|PROT_WRITE|PROT_EXEC", 1),
        (KernelUse.LOOPBACK, "connect 127.0.0.1:8080", 2),
    }
    sandbox = build_profile([(str(saved), again)]).sandbox
    assert sandbox is not None and sandbox.unresolved_paths == 1
    assert {need.path for need in sandbox.files} >= {"/etc/hostname", "/dev/null"}


def test_a_path_longer_than_a_trace_holds_is_counted_not_written(
    fake_tracer: FakeTracer, run: RunInfo, tmp_path: Path
) -> None:
    """A relative name in a deep working directory makes a path beyond PATH_MAX, which the kernel resolved a
    directory at a time: the trace keeps what it can read back, and counts the rest."""
    deep = "/" + "/".join(["d" * 200] * 20)  # 4,020 bytes
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None, paths=True)
    collector.apply(process_event(EventKind.EXEC, SERIAL, os.getpid(), first_exec=True, path="/bin/sh"))
    collector.apply(_sight(21, KernelFileOp.CHDIR, deep))
    collector.apply(_sight(22, KernelFileOp.READ, "f" * 200, directory=21))
    collector.apply(_sight(23, KernelFileOp.READ, "/etc/hostname"))
    fake_tracer.table = [
        _access(21, KernelFileOp.CHDIR),
        _access(22, KernelFileOp.READ),
        _access(23, KernelFileOp.READ),
    ]
    trace = collector.build(run, fake_tracer.observations())
    saved = tmp_path / "deep.trace.json"
    trace.save(saved)
    again = trace_module.load(saved)
    assert again.file_accesses is not None
    paths = {access.path for access in again.file_accesses}
    assert "/etc/hostname" in paths and not any(path.startswith(deep) for path in paths)
    assert again.run.dropped.unresolved_paths == 1


def test_many_processes_of_one_program_make_its_rows_and_what_is_kept_does_not_grow(
    fake_tracer: FakeTracer, run: RunInfo, tmp_path: Path
) -> None:
    """Ten short processes of /bin/true read one file and call mprotect, as a service's workers would: one row per
    program, counting them all and naming the process image that read it first; summed as each process's
    observations are reclaimed, so that what the collector holds stays one entry however many there are."""
    shared = f"{tmp_path.resolve()}/shared"
    opened_ms = {2: 5, 3: 2, 4: 9, 5: 6, 6: 3, 7: 10, 8: 7, 9: 4, 10: 1, 11: 8}  # serial 10 reads it first
    collector = Collector(fake_tracer, start_ns=0, native_abi="x86_64", initial_user_ns=None, paths=True)
    collector.apply(process_event(EventKind.EXEC, SERIAL, os.getpid(), first_exec=True, path="/bin/sh"))
    collector.apply(_sight(31, KernelFileOp.READ, shared, ns=20_000_000))
    fake_tracer.table = [_access(31, KernelFileOp.READ)]
    for serial, ms in opened_ms.items():
        pid = 1000 + serial
        collector.apply(process_event(EventKind.FORK, serial, pid, parent_serial=SERIAL))
        collector.apply(process_event(EventKind.EXEC, serial, pid, image=1, path="/bin/true"))
        collector.apply(path_sight(serial, 31, KernelFileOp.READ, shared, image=1, time_ns=ms * 1_000_000))
        fake_tracer.table += [
            file_observation(serial, 31, KernelFileOp.READ, image=1, count=2),
            Observation(ObservationKind.KERNEL, serial, 1, MPROTECT, 7, 0, 0, 0, 0, 1),
        ]
        if serial != 11:  # the last one still runs when the recording ends: its counts are read then
            collector.apply(process_event(EventKind.EXIT, serial, pid))
            collector.reclaim(now=float("inf"))
            assert len(collector.uses.files) == len(collector.uses.kernel) == 1
            assert len(collector.path_names.first_ns) == 2  # /bin/sh's and /bin/true's
            assert collector.reclaimed == []
    trace = collector.build(run, fake_tracer.observations())
    trace.save(tmp_path / "many.trace.json")
    again = trace_module.load(tmp_path / "many.trace.json")
    assert again.file_accesses is not None and again.kernel_uses is not None
    assert [
        (again.program(a.process, a.image), a.process, a.image, a.count, a.first_s)
        for a in again.file_accesses
        if a.path == shared
    ] == [
        ("/bin/sh", 1, 0, 1, 0.02),
        ("/bin/true", 10, 1, 20, 0.001),
    ]
    assert [(k.process, k.image, k.detail, k.count) for k in again.kernel_uses] == [
        (2, 1, "mprotect PROT_READ|PROT_WRITE|PROT_EXEC", 10)  # the kernel side keeps no time: the lowest id
    ]
