"""Schema 2 writing: a trace as the JSON text profiler saves (one row a line), and saved where it can be."""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from profiler import byte_strings
from profiler.errors import OutputError
from profiler.files import PRIVATE, write_text_atomically
from profiler.trace.columns import (
    PATH_COUNTERS,
    PATH_TABLES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    TABLES,
)
from profiler.trace.rows import (
    DropCounters,
    Image,
    Process,
    RunInfo,
)

if TYPE_CHECKING:
    from profiler.trace.model import Trace


_ROW_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _microseconds(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e6)


def _image_start_us(process: Process, image: Image) -> int:
    """Where first_us counts from: the image's exec, else its process's start, else the start of the recording."""
    return _microseconds(image.exec_s if image.exec_s is not None else process.start_s) or 0


def _rows_text(rows: list[tuple[Any, ...]]) -> str:
    """Rows as JSON arrays, one a line."""
    if not rows:
        return ""
    body = _ROW_ENCODER(rows)[1:-1]
    # Encoding all rows at once is five times faster than one by one; the line breaks go between rows, which
    # is where "],[" is when no string holds it.
    if body.count("],[") == len(rows) - 1:
        return "\n" + body.replace("],[", "],\n[") + "\n"
    return "\n" + ",\n".join(map(_ROW_ENCODER, rows)) + "\n"


def _table_rows(trace: "Trace") -> dict[str, list[tuple[Any, ...]]]:
    encode = byte_strings.encode
    starts: dict[tuple[int, int], tuple[str, int]] = {}
    images = []
    for process in trace.processes:
        for index, image in enumerate(process.images):
            starts[(process.id, index)] = (image.abi, _image_start_us(process, image))
            argv0 = None if image.argv0 is None else encode(image.argv0)
            images.append((process.id, index, encode(image.path), argv0, _microseconds(image.exec_s), image.abi))
    names: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    syscall_rows = []
    for use in trace.syscalls:
        image_abi, start = starts[(use.process, use.image)]
        names.setdefault((image_abi, use.nr), (use.name, use.unresolved))
        first = None if use.first_s is None else round(use.first_s * 1e6) - start
        syscall_rows.append((use.process, use.image, use.nr, use.count, first))
    for check in trace.capability_checks:
        if check.syscall_nr is not None:
            reason = None if check.syscall else "not named when recorded"
            names.setdefault((starts[(check.process, check.image)][0], check.syscall_nr), (check.syscall, reason))
    tables: dict[str, list[tuple[Any, ...]]] = {
        "processes": [
            (
                p.id,
                p.pid,
                p.parent,
                p.parent_pid,
                _microseconds(p.start_s),
                _microseconds(p.exit_s),
                p.exit_code,
                p.exit_signal,
                p.attached,
            )
            for p in trace.processes
        ],
        "images": images,
        "syscall_names": [(image_abi, nr, *named) for (image_abi, nr), named in sorted(names.items())],
        "syscalls": syscall_rows,
        "kernel_stacks": [(stack.id, stack.frames) for stack in trace.kernel_stacks],
        "capability_checks": [
            (
                c.process,
                c.image,
                c.cap,
                c.granted,
                c.classification.value,
                c.syscall_nr,
                c.initial_user_ns,
                c.stack,
                c.stack_error,
                c.count,
            )
            for c in trace.capability_checks
        ],
        "sockets": [
            (s.process, s.image, s.syscall, s.family_nr, s.type_nr, s.protocol, s.count) for s in trace.sockets
        ],
        "namespaces": [(n.process, n.image, n.syscall, n.flags_nr, n.count) for n in trace.namespaces],
    }
    if trace.file_accesses is not None and trace.kernel_uses is not None:
        tables["file_accesses"] = [
            (
                a.process,
                a.image,
                encode(a.path),
                a.op.value,
                a.error,
                *(a.device or (None, None)),
                a.count,
                None if a.first_s is None else round(a.first_s * 1e6) - starts[(a.process, a.image)][1],
            )
            for a in trace.file_accesses
        ]
        tables["kernel_uses"] = [(k.process, k.image, k.use.value, k.detail, k.count) for k in trace.kernel_uses]
    return tables


def _run_object(run: RunInfo, paths_recorded: bool) -> dict[str, Any]:
    encode = byte_strings.encode
    dropped = {counter.name: getattr(run.dropped, counter.name) for counter in fields(DropCounters)}
    return {
        "tool_version": run.tool_version,
        "component": encode(run.component),
        "hostname": encode(run.hostname),
        "kernel_release": encode(run.kernel_release),
        "architecture": encode(run.architecture),
        "abi": run.abi,
        "libseccomp_version": run.libseccomp_version,
        "mode": run.mode.value,
        "command": [encode(argument) for argument in run.command],
        "target": None if run.target is None else encode(run.target),
        "user": encode(run.user),
        "uid": run.uid,
        "gid": run.gid,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_s": run.duration_s,
        "end_reason": run.end_reason.value,
        "exit_status": run.exit_status,
        "capability_source": run.capability_source.value,
        "dropped": {
            name: count for name, count in dropped.items() if paths_recorded or count or name not in PATH_COUNTERS
        },
    }


def _render(trace: "Trace") -> str:
    run = json.dumps(_run_object(trace.run, trace.file_accesses is not None), indent=2, ensure_ascii=False).replace(
        "\n", "\n  "
    )
    tables = []
    specs = {**TABLES, **PATH_TABLES}
    for name, rows in _table_rows(trace).items():
        header = json.dumps([column.name for column in specs[name]])
        tables.append(f'    "{name}": {{"columns": {header}, "rows": [{_rows_text(rows)}]}}')
    return (
        f'{{\n  "schema": "{SCHEMA_NAME}",\n  "schema_version": {SCHEMA_VERSION},\n  "run": {run},\n'
        + '  "tables": {\n'
        + ",\n".join(tables)
        + "\n  }\n}\n"
    )


# --- saving where it can ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedTrace:
    path: Path  # where the trace is
    failures: tuple[str, ...]  # why each place tried before it failed: empty when it is where it was asked to be


def rescue_directories() -> tuple[Path, ...]:
    """Where a trace goes that cannot be written where asked, in this order: $TMPDIR, /tmp, /var/tmp (on disk
    and kept across reboots, often another file system than /tmp), /dev/shm (memory: room when disks are full)."""
    candidates = [os.environ.get("TMPDIR"), "/tmp", "/var/tmp", "/dev/shm"]
    unique: dict[str, Path] = {}
    for candidate in candidates:
        if candidate and os.path.isdir(candidate):
            unique.setdefault(os.path.realpath(candidate), Path(candidate))
    return tuple(unique.values())


def save_or_rescue(trace: "Trace", path: Path, *, overwrite: bool, rescue: Sequence[Path] | None = None) -> SavedTrace:
    """Save the trace at path or, failing that, in the first rescue directory (rescue_directories() by default)
    that takes it: under the same name, or a new one where that name is taken or too long. An OutputError names
    every failure when no place takes it."""
    text = trace.to_json()
    failures: list[str] = []
    places = [(path, overwrite)]
    for directory in rescue_directories() if rescue is None else rescue:
        places.append((directory / path.name, False))
    while places:
        place, replace = places.pop(0)
        try:
            write_text_atomically(place, text, overwrite=replace, mode=PRIVATE)
            return SavedTrace(place, tuple(failures))
        except OutputError as error:
            failures.append(str(error))
        if place != path and (os.path.lexists(place) or len(os.fsencode(place.name)) > 255):
            places.insert(0, (place.parent / f"profiler-{os.urandom(6).hex()}.trace.json", False))
    raise OutputError("; ".join(failures) + "; the trace could not be saved anywhere")
