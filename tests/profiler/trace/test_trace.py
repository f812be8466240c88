"""The trace file format: round trips, determinism, compactness, version 1 still read, names checked against their
tables, and one clear error for every kind of bad file."""

import dataclasses
import json
import os
import posixpath
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiler import abi, explore, files, show, syscalls
from profiler import trace as trace_module
from profiler.errors import OutputError, TraceFormatError
from profiler.trace import (
    CapabilityCheck,
    CapabilitySource,
    CheckClass,
    DropCounters,
    EndReason,
    FileAccess,
    FileOp,
    Image,
    KernelInterfaceUse,
    KernelStack,
    KernelUse,
    NamespaceUse,
    Process,
    RecordingMode,
    RunInfo,
    SocketUse,
    SyscallUse,
    Trace,
)

REPOSITORY = Path(__file__).resolve().parents[3]
VERSION_1 = sorted(
    path
    for path in [*(REPOSITORY / "traces").glob("*.trace.json"), *(REPOSITORY / "tests/fixtures/traces").glob("*")]
    if json.loads(path.read_text())["schema_version"] == 1
)

byte_strings = st.binary(max_size=12).map(lambda raw: raw.replace(b"\0", b"").decode("utf-8", "surrogateescape"))
seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda s: round(s, 6))
counts = st.integers(min_value=1, max_value=2**63 - 1)
# Numbers libseccomp names, numbers it does not, one outside any syscall, and an x32 one.
SYSCALL_NUMBERS = (0, 1, 59, 231, 435, 999, -1, 0x40000000 | 1)
DETAIL_PATTERN = next(column for column in trace_module.KERNEL_USE_COLUMNS if column.name == "detail").kind.pattern  # type: ignore[attr-defined]


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    paths_recorded = draw(st.booleans())
    # A counter of the path tables is kept where the tables are not recorded too, where it is not zero.
    paths_dropped = draw(st.integers(0, 5))
    run = RunInfo(
        tool_version="0.1.0",
        component=draw(byte_strings),
        hostname=draw(byte_strings),
        kernel_release="6.18.0",
        architecture="x86_64",
        abi="x86_64",
        libseccomp_version="2.5.4",
        mode=draw(st.sampled_from(RecordingMode)),
        command=tuple(draw(st.lists(byte_strings, max_size=3))),
        target=draw(st.none() | byte_strings),
        user=draw(byte_strings),
        uid=draw(st.integers(0, 2**32 - 1)),
        gid=draw(st.integers(0, 2**32 - 1)),
        started_at="2026-11-29T00:00:00Z",
        ended_at="2026-11-29T00:00:01Z",
        duration_s=draw(seconds),
        end_reason=draw(st.sampled_from(EndReason)),
        exit_status=draw(st.none() | st.integers(0, 255)),
        capability_source=draw(st.sampled_from(CapabilitySource)),
        dropped=DropCounters(
            events=draw(st.integers(0, 5)),
            kernel_stacks=draw(st.integers(0, 2**63 - 1)),
            paths=paths_dropped,
            unresolved_paths=draw(st.integers(0, 5)) if paths_recorded else 0,
        ),
    )
    image = st.builds(
        Image,
        path=byte_strings,
        argv0=st.none() | byte_strings,
        exec_s=st.none() | seconds,
        abi=st.sampled_from(["x86_64", "x86"]),
    )
    processes = []
    for number in range(1, draw(st.integers(1, 4)) + 1):
        attached = draw(st.booleans())
        processes.append(
            Process(
                id=number,
                pid=draw(st.integers(1, 4194304)),
                parent=draw(st.none() | st.integers(1, number - 1)) if number > 1 else None,
                parent_pid=draw(st.none() | st.integers(1, 4194304)),
                start_s=None if attached else draw(seconds),
                exit_s=draw(st.none() | seconds),
                exit_code=draw(st.none() | st.integers(0, 255)),
                exit_signal=draw(st.none() | st.sampled_from(["SIGKILL", "SIGRTMIN+3"])),
                attached=attached,
                images=tuple(draw(st.lists(image, min_size=1, max_size=3))),
            )
        )
    owners = [(p.id, i, image.abi) for p in processes for i, image in enumerate(p.images)]
    owner = st.sampled_from(owners)
    stacks = tuple(
        KernelStack(i, tuple(draw(st.lists(st.sampled_from(["cap_capable", "setattr_prepare.isra.0"]), max_size=3))))
        for i in range(1, draw(st.integers(0, 3)) + 1)
    )

    def syscall_use() -> SyscallUse:
        process, image_index, image_abi = draw(owner)
        nr = draw(st.sampled_from(SYSCALL_NUMBERS))
        name, reason = syscalls.image_syscall_name(image_abi, nr)
        return SyscallUse(process, image_index, nr, name, reason, draw(counts), draw(st.none() | seconds))

    def check() -> CapabilityCheck:
        process, image_index, image_abi = draw(owner)
        stack = draw(st.none() | st.sampled_from([s.id for s in stacks])) if stacks else None
        nr = draw(st.none() | st.sampled_from(SYSCALL_NUMBERS[:6]))
        cap = draw(st.integers(0, 63))
        return CapabilityCheck(
            process,
            image_index,
            abi.capability_name(cap),
            cap,
            draw(st.booleans()),
            draw(st.sampled_from(CheckClass)),
            None if nr is None else syscalls.image_syscall_name(image_abi, nr)[0],
            nr,
            draw(st.booleans()),
            stack,
            None if stack else "the kernel could not walk this stack (EFAULT)",
            draw(counts),
        )

    def socket() -> SocketUse:
        process, image_index, _ = draw(owner)
        family, kind = draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([1, 2, 0x80001, 0x805, 12, 0x100]))
        syscall = draw(st.sampled_from(["socket", "socketpair"]))
        return SocketUse(process, image_index, syscall, abi.address_family_name(family), family,
                         abi.socket_type_names(kind), kind, draw(st.integers(0, 300)), draw(counts))  # fmt: skip

    def namespace() -> NamespaceUse:
        process, image_index, _ = draw(owner)
        flags = draw(st.integers(0, 2**32 - 1))
        syscall = draw(st.sampled_from(["clone", "clone3", "unshare", "setns"]))
        return NamespaceUse(process, image_index, syscall, abi.namespace_flag_names(flags), flags, draw(counts))

    def file_access() -> FileAccess:
        process, image_index, _ = draw(owner)
        return FileAccess(
            process,
            image_index,
            posixpath.normpath("/" + draw(byte_strings)).replace("//", "/"),
            draw(st.sampled_from(FileOp)),
            draw(st.none() | st.sampled_from(["ENOENT", "EACCES", "EROFS", "524"])),
            draw(st.none() | st.tuples(st.integers(0, 2**12 - 1), st.integers(0, 2**20 - 1))),
            draw(counts),
            draw(st.none() | seconds),
        )

    def kernel_use() -> KernelInterfaceUse:
        process, image_index, _ = draw(owner)
        detail = draw(st.from_regex(DETAIL_PATTERN, fullmatch=True))
        return KernelInterfaceUse(process, image_index, draw(st.sampled_from(KernelUse)), detail, draw(counts))

    return Trace(
        file_accesses=tuple(file_access() for _ in range(draw(st.integers(0, 4)))) if paths_recorded else None,
        kernel_uses=tuple(kernel_use() for _ in range(draw(st.integers(0, 3)))) if paths_recorded else None,
        run=run,
        processes=tuple(processes),
        syscalls=tuple(syscall_use() for _ in range(draw(st.integers(0, 6)))),
        capability_checks=tuple(check() for _ in range(draw(st.integers(0, 3)))),
        kernel_stacks=stacks,
        sockets=tuple(socket() for _ in range(draw(st.integers(0, 2)))),
        namespaces=tuple(namespace() for _ in range(draw(st.integers(0, 2)))),
    )


@settings(max_examples=80)
@given(traces())
def test_a_trace_written_then_read_is_the_same_and_writes_the_same_bytes(trace: Trace) -> None:
    text = trace.to_json()
    again = trace_module.parse(text, "round-trip")
    assert again == trace
    assert again.to_json() == text


@settings(max_examples=40)
@given(traces())
def test_every_row_is_one_line(trace: Trace) -> None:
    document = json.loads(trace.to_json())
    rows = sum(len(table["rows"]) for table in document["tables"].values())
    assert sum(1 for line in trace.to_json().splitlines() if line.startswith("[")) == rows


@settings(max_examples=40)
@given(traces())
def test_what_is_written_is_what_the_json_schema_says(trace: Trace) -> None:
    jsonschema.Draft202012Validator(trace_module.json_schema()).validate(json.loads(trace.to_json()))


def test_the_json_schema_is_a_valid_schema_of_every_table() -> None:
    schema = trace_module.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]["tables"]["required"]) == set(trace_module.TABLES)
    assert set(schema["properties"]["tables"]["properties"]) == {*trace_module.TABLES, *trace_module.PATH_TABLES}


def test_the_json_schema_says_the_path_tables_come_together(saved: tuple[Path, Trace]) -> None:
    path, _ = saved
    validator = jsonschema.Draft202012Validator(trace_module.json_schema())
    document = json.loads(path.read_text())
    validator.validate(document)
    document["tables"].pop("kernel_uses")
    assert not validator.is_valid(document)
    document["tables"].pop("file_accesses")
    validator.validate(document)


@pytest.mark.parametrize("path", VERSION_1, ids=lambda path: path.name)
def test_version_1_traces_still_load_and_mean_the_same_in_version_2(path: Path) -> None:
    old = trace_module.load(path)
    assert json.loads(path.read_text())["schema_version"] == 1
    assert old.file_accesses is None and old.kernel_uses is None, "version 1 recorded no files"
    written = old.to_json()
    assert trace_module.parse(written, "again") == old
    assert len(written) < len(path.read_text())


def test_a_version_1_backslash_is_a_backslash() -> None:
    data = json.loads((REPOSITORY / "tests" / "fixtures" / "traces" / "curl-fetch-v1.trace.json").read_text())
    data["run"]["command"] = ["curl", "C:\\tmp\\x"]
    loaded = trace_module.parse(json.dumps(data), "v1")
    assert loaded.run.command == ("curl", "C:\\tmp\\x")
    assert '"C:\\\\\\\\tmp\\\\\\\\x"' in loaded.to_json()


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
    chown = Process(1, 100, None, 99, 0.0, 0.1, 0, None, False, (Image("/usr/bin/chown", "chown", 0.0, "x86_64"),))
    child = Process(2, 101, 1, 100, 0.05, 0.1, 0, None, False, (Image("/usr/bin/chown", "chown", None, "x86_64"),))
    check = CapabilityCheck(1, 0, "CAP_CHOWN", 0, True, CheckClass.NEEDED, "fchownat", 260, True, 1, None, 1)
    trace = Trace(
        run,
        (chown, child),
        (SyscallUse(1, 0, 260, "fchownat", None, 1, 0.05), SyscallUse(2, 0, 999, None, "unknown", 2, None)),
        (check,),
        (KernelStack(1, ("cap_capable", "setattr_prepare")),),
        (SocketUse(1, 0, "socket", "AF_UNIX", 1, ("SOCK_STREAM", "SOCK_CLOEXEC"), 0x80001, 0, 1),),
        (NamespaceUse(1, 0, "unshare", ("CLONE_NEWUSER",), 0x10000000, 1),),
        file_accesses=(
            FileAccess(1, 0, "/etc/passwd", FileOp.READ, None, None, 2, 0.01),
            FileAccess(2, 0, "/dev/null", FileOp.WRITE, None, (1, 3), 1, None),
        ),
        kernel_uses=(KernelInterfaceUse(1, 0, KernelUse.LOOPBACK, "connect 127.0.0.1:8080", 1),),
    )
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


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def table(data: dict[str, Any], name: str) -> list[list[Any]]:
    rows: list[list[Any]] = data["tables"][name]["rows"]
    return rows


def cell(name: str, row: int, column: str, value: object) -> Callable[[Path], object]:
    """A change to one cell of a version 2 file."""

    def change(data: dict[str, Any]) -> None:
        spec = {**trace_module.TABLES, **trace_module.PATH_TABLES}[name]
        table(data, name)[row][[each.name for each in spec].index(column)] = value

    return lambda path: edit(path, change)


BAD_FILES: dict[str, tuple[Callable[[Path], object], str]] = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "not valid JSON .*perhaps truncated"),
    "empty": (lambda p: p.write_text(""), "empty file"),
    "binary": (lambda p: p.write_bytes(b"\x00\xff\xfe junk"), "not UTF-8"),
    "csv": (lambda p: p.write_text("name,count\nread,3\n"), "not a profiler trace \\(not JSON\\)"),
    "foreign-json": (lambda p: p.write_text('{"traceEvents": []}'), 'not a profiler trace \\(no "schema"'),
    "deep": (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "JSON nested too deep"),
    "newer": (lambda p: edit(p, lambda d: d.update(schema_version=3)), "newer profiler \\(trace schema 3.*upgrade"),
    "version-type": (lambda p: edit(p, lambda d: d.update(schema_version="2")), "schema_version must be a positive"),
    "unknown-key": (lambda p: edit(p, lambda d: d.update(surprise=1)), "invalid trace at surprise: unknown key"),
    "no-table": (lambda p: edit(p, lambda d: d["tables"].pop("syscalls")), "at tables: no syscalls table"),
    "no-column": (
        lambda p: edit(p, lambda d: d["tables"]["syscalls"]["columns"].remove("count")),
        "at tables.syscalls.columns: no column 'count'",
    ),
    "short-row": (lambda p: edit(p, lambda d: table(d, "syscalls")[0].pop()), "syscalls.rows\\[0\\]: must be an array"),
    "dangling-reference": (
        cell("syscalls", 0, "process", 99),
        "syscalls.rows\\[0\\].image: names process 99 image 0, which is not recorded",
    ),
    "huge-integer": (
        lambda p: p.write_text(p.read_text().replace('"uid": 0', '"uid": ' + "9" * 5000)),
        "a number of thousands of digits",
    ),
    "beyond-int64": (cell("syscalls", 0, "count", 2**63), "count: must be an integer from 1 to 9223372036854775807"),
    "negative-count": (cell("syscalls", 0, "count", -1), "count: must be an integer from 1"),
    "boolean-count": (cell("syscalls", 0, "count", True), "count: must be an integer from 1 to .*, not true"),
    "nan": (lambda p: p.write_text(p.read_text().replace('"duration_s": 0.1', '"duration_s": NaN')), "NaN is not"),
    "infinity": (lambda p: p.write_text(p.read_text().replace("0.1,", "Infinity,", 1)), "Infinity is not"),
    "overflow": (lambda p: p.write_text(p.read_text().replace("0.1,", "1e999,", 1)), "must be a number of seconds"),
    "key-twice": (lambda p: p.write_text(p.read_text().replace('"uid": 0,', '"uid": 0, "uid": 5,')), "twice"),
    "null-start": (cell("processes", 0, "start_us", None), "start_us: null for a process running when recording"),
    "parent-cycle": (cell("processes", 0, "parent", 2), "parent: process 1 is its own ancestor"),
    "unknown-signal": (cell("processes", 0, "exit_signal", "KILL\n"), "exit_signal: must be a signal name"),
    "surrogate": (
        lambda p: p.write_text(p.read_text().replace('"/usr/bin/chown"', '"\\udce9"', 1)),
        "path: not a byte string as a trace writes one: a lone surrogate",
    ),
    "nul-in-path": (cell("images", 0, "path", "/bin/a\u0000b"), "path: not a byte string.*a NUL byte"),
    "foreign-abi": (cell("images", 0, "abi", "aarch64"), "abi: aarch64 is neither this run's ABI"),
    "stack-and-error": (cell("capability_checks", 0, "stack_error", "why"), "stack_error: must be null where"),
    "unknown-stack": (cell("capability_checks", 0, "stack", 7), "stack: names kernel stack 7"),
    "unnamed-number": (cell("syscalls", 0, "nr", 261), "nr: syscall 261 on x86_64 is not in syscall_names"),
    "syscall-name": (cell("syscall_names", 0, "name", "fchownat\nExecStartPre=/x"), "name: must be a syscall name"),
    "contradicted": (
        cell("syscall_names", 0, "name", "read"),
        "name: 'read' for syscall 260 on x86_64, which libseccomp .* names 'fchownat'",
    ),
    "misplaced": (
        lambda p: (cell("syscall_names", 1, "unresolved", None)(p), cell("syscall_names", 1, "name", "read")(p)),
        "name: 'read' for syscall 999 on x86_64, where read is 0",
    ),
    "long-reason": (cell("syscall_names", 1, "unresolved", "x" * 513), "unresolved: must be why there is no name"),
    "control-in-reason": (cell("syscall_names", 1, "unresolved", "a\u001b[2Jb"), "unresolved: must be why"),
    "no-image": (lambda p: edit(p, lambda d: table(d, "images").pop()), "processes.rows\\[1\\].id: process 2 has no"),
    "image-gap": (cell("images", 1, "image", 1), "image: image 1 of process 2 follows 0 images"),
    "capability-number": (cell("capability_checks", 0, "cap", 64), "cap: must be an integer from 0 to 63"),
    "one-path-table": (
        lambda p: edit(p, lambda d: d["tables"].pop("kernel_uses")),
        "at tables: file_accesses without kernel_uses: a run records both or neither",
    ),
    "other-path-table": (
        lambda p: edit(p, lambda d: d["tables"].pop("file_accesses")),
        "at tables: kernel_uses without file_accesses",
    ),
    "unknown-op": (cell("file_accesses", 0, "op", "chown"), "file_accesses.rows\\[0\\].op: must be one of read, write"),
    "unknown-use": (cell("kernel_uses", 0, "use", "ptrace"), "kernel_uses.rows\\[0\\].use: must be one of write-exec"),
    "relative-path": (cell("file_accesses", 0, "path", "etc/passwd"), 'path: "etc/passwd" is not an absolute, norm'),
    "empty-path": (cell("file_accesses", 0, "path", ""), 'path: "" is not an absolute, normalised path'),
    "dot-dot": (cell("file_accesses", 0, "path", "/var/lib/../../etc/shadow"), "is not an absolute, normalised"),
    "dot": (cell("file_accesses", 0, "path", "/etc/./passwd"), "is not an absolute, normalised"),
    "double-slash": (cell("file_accesses", 0, "path", "//etc/passwd"), "is not an absolute, normalised"),
    "inner-slashes": (cell("file_accesses", 0, "path", "/etc//passwd"), "is not an absolute, normalised"),
    "trailing-slash": (cell("file_accesses", 0, "path", "/etc/"), "is not an absolute, normalised"),
    "long-path": (cell("file_accesses", 0, "path", "/" + "a" * 4096), "path: .*longer than 4096 bytes"),
    "escape-in-path": (cell("file_accesses", 0, "path", "/etc\\q"), "path: not a byte string.*a backslash"),
    "errno-name": (cell("file_accesses", 0, "error", "ENOENT\nx"), "error: must be an errno name"),
    "errno-number": (cell("file_accesses", 0, "error", "-2"), "error: must be an errno name such as ENOENT, or its"),
    "half-device": (cell("file_accesses", 1, "device_minor", None), "device_minor: must be null where device_major"),
    "minor-beyond": (cell("file_accesses", 1, "device_minor", 2**20), "device_minor: must be an integer from 0 to"),
    "file-process": (cell("file_accesses", 0, "process", 99), "file_accesses.rows\\[0\\].image: names process 99"),
    "file-before-recording": (cell("file_accesses", 0, "first_us", -(10**9)), "first_us: puts the first use before"),
    "control-in-detail": (cell("kernel_uses", 0, "detail", "a\u001b[2Jb"), "detail: must be what was asked"),
    "long-detail": (cell("kernel_uses", 0, "detail", "x" * 513), "detail: must be what was asked.*512 printable"),
    "kernel-use-count": (
        cell("kernel_uses", 0, "count", 0),
        "kernel_uses.rows\\[0\\].count: must be an integer from 1",
    ),
    "path-counter": (
        lambda p: edit(p, lambda d: d["run"]["dropped"].update(paths=-1)),
        "run.dropped.paths: must be an integer from 0",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_one_clear_error(saved: tuple[Path, Trace], kind: str) -> None:
    path, _ = saved
    damage, message = BAD_FILES[kind]
    damage(path)
    with pytest.raises(TraceFormatError, match=message) as error:
        trace_module.load(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_number_libseccomp_here_does_not_know_keeps_the_name_it_was_recorded_with(saved: tuple[Path, Trace]) -> None:
    path, _ = saved
    cell("syscall_names", 1, "name", "cachestat2")(path)
    cell("syscall_names", 1, "unresolved", None)(path)
    unknown = next(use for use in trace_module.load(path).syscalls if use.nr == 999)
    assert unknown.name is None
    assert unknown.unresolved == (
        f"recorded as cachestat2 by libseccomp 2.5.4; libseccomp {syscalls.libseccomp_version()} here knows no "
        "syscall 999 on x86_64"
    )


def test_tables_and_columns_a_later_profiler_adds_are_skipped(saved: tuple[Path, Trace]) -> None:
    path, trace = saved

    def later(data: dict[str, Any]) -> None:
        data["tables"]["device_accesses"] = {"columns": ["process", "path"], "rows": [[1, "/dev/null"]]}
        syscalls_table = data["tables"]["syscalls"]
        syscalls_table["columns"] = ["errno", *reversed(syscalls_table["columns"])]
        syscalls_table["rows"] = [[0, *reversed(row)] for row in syscalls_table["rows"]]

    edit(path, later)
    assert trace_module.load(path) == trace


def test_a_byte_order_mark_is_read_past(saved: tuple[Path, Trace]) -> None:
    path, trace = saved
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert trace_module.load(path) == trace


V1_NAMES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "capability": (
        lambda d: d["capability_checks"][0].update(capability="CAP_BPF"),
        "capability_checks\\[0\\].capability: 'CAP_BPF' for the number profiler names",
    ),
    "family": (lambda d: d["sockets"][0].update(family="AF_PACKET"), "sockets\\[0\\].family: 'AF_PACKET'"),
    "socket-type": (lambda d: d["sockets"][0].update(type=[]), "sockets\\[0\\].type: \\[\\] for type"),
    "namespace-flag": (
        lambda d: d["namespaces"][0].update(flags=["CLONE_NEWBOGUS"]),
        "namespaces\\[0\\].flags: \\['CLONE_NEWBOGUS'\\] for flags",
    ),
    "syscall": (
        lambda d: [row.update(name="ptrace") for row in d["syscalls"] if row["nr"] == 0],
        "syscalls\\[0\\].name: 'ptrace' for syscall 0 on x86_64, which libseccomp .* names 'read'",
    ),
    "past-libseccomp's-int": (
        lambda d: d["syscalls"][0].update(nr=2**31),
        "syscalls\\[0\\].name: 'read' for syscall 2147483648 on x86_64, where read is 0",
    ),
    "injected": (lambda d: d["syscalls"][0].update(name="read\nbpf"), "syscalls\\[0\\].name: must be a syscall name"),
    "two-names": (
        lambda d: d["capability_checks"][0].update(syscall="getpid"),
        "capability_checks\\[0\\].syscall: 'getpid' for syscall",
    ),
    "nested-image": (
        lambda d: d["processes"][0]["images"][0].update(path=7),
        "processes\\[0\\].images\\[0\\].path: must be a string",
    ),
}


@pytest.mark.parametrize("kind", list(V1_NAMES))
def test_a_version_1_name_that_is_not_its_numbers_is_refused(tmp_path: Path, kind: str) -> None:
    fixture = REPOSITORY / "tests" / "fixtures" / "traces" / "explore-tree.trace.json"
    data = json.loads(fixture.read_text())
    change, message = V1_NAMES[kind]
    change(data)
    path = tmp_path / "edited.trace.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TraceFormatError, match=message) as error:
        trace_module.load(path)
    assert "\n" not in str(error.value)


def test_a_directory_or_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="is a directory"):
        trace_module.load(tmp_path)
    with pytest.raises(TraceFormatError, match="cannot read: No such file"):
        trace_module.load(tmp_path / "missing.json")


def test_what_is_read_is_bounded(saved: tuple[Path, Trace]) -> None:
    path, _ = saved
    with pytest.raises(TraceFormatError, match="larger than 0 MiB, more than any trace profiler reads"):
        files.read_input(path, "trace", limit=100)
    with pytest.raises(TraceFormatError, match="/dev/zero: is a character device, not a regular file"):
        trace_module.load("/dev/zero")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.trace.json")
    result = subprocess.run(
        [sys.executable, "-m", "profiler.cli", "show", str(tmp_path / "pipe.trace.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == f"profiler: error: {tmp_path}/pipe.trace.json: is a FIFO (a named pipe), not a regular " \
        "file; give a trace file\n"  # fmt: skip


def chain(depth: int) -> Trace:
    image = (Image("/bin/sh", "sh", None, "x86_64"),)
    processes = tuple(
        Process(n, 1000 + n, n - 1 or None, 999 + n, n / 1000, None, None, None, False, image)
        for n in range(1, depth + 1)
    )
    base = trace_module.load(REPOSITORY / "traces" / "curl-fetch.trace.json")
    return Trace(base.run, processes, (), (), (), (), ())


def test_a_chain_thousands_deep_is_shown_and_graphed() -> None:
    deep = trace_module.parse(chain(5000).to_json(), "deep")
    lines = show.render_summary(deep, "deep").splitlines()
    assert sum(1 for line in lines if "/bin/sh  [pid" in line) == 5000
    graph = explore.process_tree(explore.tables([("deep", deep)]).processes)
    assert max(depth for _, depth in graph.nodes(data="depth")) == 4999


def test_a_trace_that_cannot_go_where_asked_goes_to_the_first_rescue_that_takes_it(
    saved: tuple[Path, Trace], tmp_path: Path
) -> None:
    _, trace = saved
    taken, free = tmp_path / "taken", tmp_path / "free"
    taken.mkdir()
    free.mkdir()
    os.mkfifo(taken / "x.trace.json")
    asked = tmp_path / "missing" / "x.trace.json"
    result = trace_module.save_or_rescue(trace, asked, overwrite=False, rescue=[tmp_path / "gone", taken, free])
    assert result.path.parent == taken and result.path.name.startswith("profiler-")
    assert trace_module.load(result.path) == trace
    assert (
        result.failures[0] == f"{asked}: directory {asked.parent} does not exist; create it or choose another -o path"
    )
    assert any("is a FIFO" in failure for failure in result.failures)
    with pytest.raises(OutputError, match=r"; the trace could not be saved anywhere$"):
        trace_module.save_or_rescue(trace, asked, overwrite=False, rescue=[tmp_path / "gone"])


def test_rescue_directories_are_tried_in_the_documented_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    expected = [tmp_path, *(Path(each) for each in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(each))]
    assert list(trace_module.rescue_directories()) == expected


@given(st.integers(0, 2**32 - 1))
def test_every_row_the_loader_accepts_has_names_a_profile_can_use(number: int) -> None:
    from generators.profile import NAMESPACE_TYPES

    assert abi.socket_type_names(number), "a socket type always has a name"
    assert set(abi.namespace_flag_names(number)) <= set(NAMESPACE_TYPES)


def test_a_recorded_version_2_trace_reads_back_to_its_own_bytes() -> None:
    # Recorded by: profiler record -o xargs-true.trace.json --component xargs-true --
    #   sh -c 'seq 3 | xargs -P8 -n1 /bin/true'
    path = REPOSITORY / "tests" / "fixtures" / "traces" / "xargs-true.trace.json"
    assert trace_module.load(path).to_json() == path.read_text()


def test_a_trace_without_the_path_tables_did_not_record_them_and_is_written_as_before() -> None:
    path = REPOSITORY / "tests" / "fixtures" / "traces" / "xargs-true.trace.json"
    trace = trace_module.load(path)
    assert trace.file_accesses is None and trace.kernel_uses is None
    document = json.loads(trace.to_json())
    assert not set(trace_module.PATH_TABLES) & set(document["tables"])
    assert not set(trace_module.PATH_COUNTERS) & set(document["run"]["dropped"])


def test_empty_path_tables_mean_recorded_and_nothing_seen(saved: tuple[Path, Trace]) -> None:
    _, trace = saved
    empty = dataclasses.replace(trace, file_accesses=(), kernel_uses=())
    again = trace_module.parse(empty.to_json(), "empty")
    assert again.file_accesses == () and again.kernel_uses == ()
    assert set(json.loads(empty.to_json())["run"]["dropped"]) >= set(trace_module.PATH_COUNTERS)


def test_a_trace_with_path_tables_but_without_their_counters_reads_them_as_zero(saved: tuple[Path, Trace]) -> None:
    path, trace = saved
    edit(path, lambda d: [d["run"]["dropped"].pop(name) for name in trace_module.PATH_COUNTERS])
    assert trace_module.load(path) == trace


def test_the_path_tables_are_given_together() -> None:
    trace = chain(1)
    with pytest.raises(ValueError, match="both or neither"):
        dataclasses.replace(trace, file_accesses=())


def test_the_format_page_documents_every_table_column_and_dropped_counter() -> None:
    page = (REPOSITORY / "docs" / "trace-format.md").read_text()
    sections = {section.split("\n", 1)[0]: section for section in page.split("\n## ")[1:]}
    for name, columns in {**trace_module.TABLES, **trace_module.PATH_TABLES}.items():
        assert name in sections, name
        # process and image, where a row was recorded, are said once, in syscalls.
        for column in [each for each in columns if each.name not in ("process", "image") or name == "syscalls"]:
            assert f"`{column.name}`" in sections[name], f"{name}.{column.name}"
    for counter in dataclasses.fields(DropCounters):
        assert re.search(rf"^\| [^|]*`{counter.name}`[^|]*\|", sections["run"], re.MULTILINE), counter.name
