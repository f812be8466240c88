"""The trace file format: round trips, determinism, and one clear error for every kind of bad file."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiler import trace as trace_module
from profiler.errors import OutputError, TraceFormatError
from profiler.trace import (
    CapabilityCheck,
    CapabilitySource,
    CheckClass,
    DropCounters,
    EndReason,
    Image,
    KernelStack,
    NamespaceUse,
    Process,
    RecordingMode,
    RunInfo,
    SocketUse,
    SyscallUse,
    Trace,
)

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda s: round(s, 6))
counts = st.integers(min_value=1, max_value=2**40)


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    run = RunInfo(
        tool_version="0.1.0",
        component=draw(names),
        hostname=draw(names),
        kernel_release="6.18.0",
        architecture="x86_64",
        abi="x86_64",
        libseccomp_version="2.5.4",
        mode=draw(st.sampled_from(RecordingMode)),
        command=tuple(draw(st.lists(names, max_size=3))),
        target=draw(st.none() | names),
        user=draw(names),
        uid=draw(st.integers(0, 2**32 - 1)),
        gid=draw(st.integers(0, 2**32 - 1)),
        started_at="2026-11-29T00:00:00Z",
        ended_at="2026-11-29T00:00:01Z",
        duration_s=draw(seconds),
        end_reason=draw(st.sampled_from(EndReason)),
        exit_status=draw(st.none() | st.integers(0, 255)),
        capability_source=draw(st.sampled_from(CapabilitySource)),
        dropped=DropCounters(events=draw(st.integers(0, 5))),
    )
    image = st.builds(Image, path=names, argv0=st.none() | names, exec_s=st.none() | seconds, abi=st.just("x86_64"))
    processes = []
    for number in range(1, draw(st.integers(1, 4)) + 1):
        processes.append(
            Process(
                id=number,
                pid=draw(st.integers(1, 4194304)),
                parent=draw(st.none() | st.integers(1, number - 1)) if number > 1 else None,
                parent_pid=draw(st.none() | st.integers(1, 4194304)),
                start_s=draw(st.none() | seconds),
                exit_s=draw(st.none() | seconds),
                exit_code=draw(st.none() | st.integers(0, 255)),
                exit_signal=draw(st.none() | st.just("SIGKILL")),
                attached=draw(st.booleans()),
                images=tuple(draw(st.lists(image, min_size=1, max_size=3))),
            )
        )
    owner = st.sampled_from([(p.id, i) for p in processes for i in range(len(p.images))])
    stacks = tuple(
        KernelStack(i, tuple(draw(st.lists(names, max_size=4)))) for i in range(1, draw(st.integers(0, 3)) + 1)
    )

    def syscall_use(where: tuple[int, int]) -> SyscallUse:
        nr = draw(st.integers(0, 1000))
        named = draw(st.booleans())
        return SyscallUse(
            where[0],
            where[1],
            nr,
            "read" if named else None,
            None if named else "unknown",
            draw(counts),
            draw(st.none() | seconds),
        )

    def check(where: tuple[int, int]) -> CapabilityCheck:
        stack = draw(st.none() | st.sampled_from([s.id for s in stacks])) if stacks else None
        return CapabilityCheck(
            where[0],
            where[1],
            "CAP_CHOWN",
            0,
            draw(st.booleans()),
            draw(st.sampled_from(CheckClass)),
            draw(st.none() | st.just("fchownat")),
            None,
            draw(st.booleans()),
            stack,
            None if stack else "the kernel could not walk this stack (EFAULT)",
            draw(counts),
        )

    return Trace(
        run=run,
        processes=tuple(processes),
        syscalls=tuple(syscall_use(draw(owner)) for _ in range(draw(st.integers(0, 5)))),
        capability_checks=tuple(check(draw(owner)) for _ in range(draw(st.integers(0, 3)))),
        kernel_stacks=stacks,
        sockets=tuple(
            SocketUse(*draw(owner), "socket", "AF_UNIX", 1, ("SOCK_STREAM",), 1, 0, draw(counts))
            for _ in range(draw(st.integers(0, 2)))
        ),
        namespaces=tuple(
            NamespaceUse(*draw(owner), "unshare", ("CLONE_NEWUSER",), 0x10000000, draw(counts))
            for _ in range(draw(st.integers(0, 2)))
        ),
    )


@settings(max_examples=60)
@given(traces())
def test_a_trace_written_then_read_is_the_same_and_writes_the_same_bytes(trace: Trace) -> None:
    text = trace.to_json()
    again = trace_module.parse(text, "round-trip")
    assert again == trace
    assert again.to_json() == text


@settings(max_examples=30)
@given(traces())
def test_every_row_is_one_line(trace: Trace) -> None:
    lines = trace.to_json().splitlines()
    rows = len(trace.processes) + len(trace.syscalls) + len(trace.capability_checks) + len(trace.kernel_stacks)
    rows += len(trace.sockets) + len(trace.namespaces)
    assert sum(1 for line in lines if line.startswith("    {")) == rows


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Trace]:
    run = RunInfo(
        "0.1.0",
        "chown",
        "host",
        "6.18.0",
        "x86_64",
        "x86_64",
        "2.5.4",
        RecordingMode.COMMAND,
        ("chown", "nobody", "f"),
        None,
        "root",
        0,
        0,
        "2026-11-29T00:00:00Z",
        "2026-11-29T00:00:01Z",
        0.1,
        EndReason.EXITED,
        0,
        CapabilitySource.TRACEPOINT,
        DropCounters(),
    )
    process = Process(1, 100, None, 99, 0.0, 0.1, 0, None, False, (Image("/usr/bin/chown", "chown", 0.0, "x86_64"),))
    trace = Trace(run, (process,), (SyscallUse(1, 0, 260, "fchownat", None, 1, 0.05),), (), (), (), ())
    path = tmp_path / "a.trace.json"
    trace.save(path)
    return path, trace


def test_save_refuses_to_overwrite_without_being_told(saved: tuple[Path, Trace]) -> None:
    path, trace = saved
    with pytest.raises(OutputError, match="already exists; use --force"):
        trace.save(path)
    trace.save(path, overwrite=True)
    assert trace_module.load(path) == trace
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file is left behind"


def rewrite(path: Path, change: dict[str, object]) -> None:
    data = json.loads(path.read_text())
    data.update(change)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "not valid JSON .*perhaps truncated"),
        (lambda p: p.write_text(""), "empty file"),
        (lambda p: p.write_bytes(b"\x00\xff\xfe junk"), "not UTF-8"),
        (lambda p: p.write_text("name,count\nread,3\n"), "not a profiler trace \\(not JSON\\)"),
        (lambda p: p.write_text('{"traceEvents": []}'), 'not a profiler trace \\(no "schema"'),
        (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "JSON nested too deep"),
        (lambda p: rewrite(p, {"schema_version": 2}), "newer profiler \\(trace schema 2.*upgrade profiler"),
        (lambda p: rewrite(p, {"schema_version": "1"}), "schema_version must be a positive integer"),
        (lambda p: rewrite(p, {"surprise": 1}), "invalid trace at surprise: Unexpected"),
        (lambda p: rewrite(p, {"processes": [{"id": 1}]}), "invalid trace at processes\\[0\\]"),
        (
            lambda p: rewrite(
                p, {"syscalls": [dict(process=99, image=0, nr=0, name="read", unresolved=None, count=1, first_s=None)]}
            ),
            "names process 99 image 0, which is not recorded",
        ),
    ],
    ids=[
        "truncated",
        "empty",
        "binary",
        "csv",
        "foreign-json",
        "deep",
        "newer",
        "version-type",
        "unknown-key",
        "bad-row",
        "dangling-reference",
    ],
)
def test_a_bad_file_is_one_clear_error(saved: tuple[Path, Trace], damage, message: str) -> None:  # type: ignore[no-untyped-def]
    path, _ = saved
    damage(path)
    with pytest.raises(TraceFormatError, match=message) as error:
        trace_module.load(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_directory_or_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="is a directory"):
        trace_module.load(tmp_path)
    with pytest.raises(TraceFormatError, match="cannot read: No such file"):
        trace_module.load(tmp_path / "missing.json")


def test_the_json_schema_describes_every_table() -> None:
    schema = trace_module.json_schema()
    assert set(schema["required"]) >= {"run", "processes", "syscalls", "capability_checks", "kernel_stacks"}
    assert schema["additionalProperties"] is False
