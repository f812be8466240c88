"""Reading a trace file or its text (schema 2, or 1 through v1) into a validated Trace, a problem as one line."""

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from profiler.column_kinds import (
    Column,
    shown,
)
from profiler.errors import TraceFormatError
from profiler.files import read_input
from profiler.trace.columns import (
    PATH_TABLES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    TABLES,
)
from profiler.trace.model import (
    Trace,
)
from profiler.trace.v1 import (
    _read_v1,
)
from profiler.trace.validation import (
    Columns,
    _Builder,
    _checked,
    _Invalid,
    _object,
    _read_run,
    _repeated,
)


class _NotJson(Exception):
    """JSON that json.loads would take but a trace may not hold: NaN, Infinity, or a key given twice."""


def _refuse_constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = keys[_repeated(keys) or 0]
        raise _NotJson(f"the key {shown(twice)} twice in one object")
    return result


@contextmanager
def _without_collector_pauses() -> Iterator[None]:
    """Loading builds hundreds of thousands of objects and no cycle among them; the cyclic collector would walk
    them again and again as they are made (it doubles the time json.loads takes on a large trace)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _v2_table(tables: dict[str, Any], name: str, spec: tuple[Column, ...]) -> Columns:
    where = f"tables.{name}"
    if name not in tables:
        raise _Invalid("tables", f"no {name} table")
    table = _object(tables[name], where, ("columns", "rows"))
    names, rows = table["columns"], table["rows"]
    if type(names) is not list or not set(map(type, names)) <= {str} or len(set(names)) != len(names):
        raise _Invalid(f"{where}.columns", f"must be a list of distinct column names, not {shown(names)}")
    missing = [column.name for column in spec if column.name not in names]
    if missing:
        raise _Invalid(f"{where}.columns", f"no column {missing[0]!r}")
    if type(rows) is not list:
        raise _Invalid(f"{where}.rows", f"must be a list of rows, not {shown(rows)}")
    width = len(names)
    if rows and (set(map(type, rows)) != {list} or set(map(len, rows)) != {width}):
        row = next(index for index, value in enumerate(rows) if type(value) is not list or len(value) != width)
        raise _Invalid(f"{where}.rows[{row}]", f"must be an array of {width} values, one a column")
    if names != [column.name for column in spec]:  # columns in another order, or of a later profiler: skipped
        transposed = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        rows = list(zip(*(transposed[names.index(column.name)] for column in spec), strict=True))
    return _checked(rows, spec, lambda row, column: f"{where}.rows[{row}].{column}")


def _read_v2(data: dict[str, Any]) -> Trace:
    data = _object(data, "top level", ("schema", "schema_version", "run", "tables"))
    run = _read_run(data["run"], escaped=True)
    if type(data["tables"]) is not dict:
        raise _Invalid("tables", f"must be an object, not {shown(data['tables'])}")
    # Tables this profiler does not know are a later one's: skipped, as if not recorded.
    columns = {name: _v2_table(data["tables"], name, spec) for name, spec in TABLES.items()}
    recorded = [name for name in PATH_TABLES if name in data["tables"]]
    if recorded and len(recorded) < len(PATH_TABLES):
        missing = next(name for name in PATH_TABLES if name not in recorded)
        raise _Invalid("tables", f"{recorded[0]} without {missing}: a run records both or neither")
    columns.update((name, _v2_table(data["tables"], name, PATH_TABLES[name])) for name in recorded)
    builder = _Builder(run, lambda table, row, column: f"tables.{table}.rows[{row}].{column}")
    processes = builder.processes(columns["processes"], columns["images"])
    builder.syscall_names(columns["syscall_names"])
    syscall_uses = builder.syscalls(columns["syscalls"])
    stacks = builder.kernel_stacks(columns["kernel_stacks"])
    return Trace(
        run,
        processes,
        syscall_uses,
        builder.capability_checks(columns["capability_checks"]),
        stacks,
        builder.sockets(columns["sockets"]),
        builder.namespaces(columns["namespaces"]),
        builder.file_accesses(columns["file_accesses"]) if recorded else None,
        builder.kernel_uses(columns["kernel_uses"]) if recorded else None,
    )


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise TraceFormatError(f"{source}: not a profiler trace (JSON nested too deep); give a trace file") from None
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith("{"):
            raise TraceFormatError(f"{source}: not a profiler trace (not JSON); give a trace file") from None
        raise TraceFormatError(
            f"{source}: not valid JSON ({error.msg}: line {error.lineno} column {error.colno}), "
            "perhaps truncated; record the run again or restore the file"
        ) from None
    except _NotJson as error:
        raise TraceFormatError(f"{source}: not a profiler trace ({error}); give a trace file") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise TraceFormatError(f"{source}: not a profiler trace (a number of thousands of digits)") from None


def parse(text: str | bytes, source: str) -> Trace:
    """Read a trace (schema version 1 or 2) from its JSON text; source names it in errors."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceFormatError(
                f"{source}: not a trace (not UTF-8 text); give a file written by profiler record"
            ) from None
    text = text.removeprefix("\ufeff")  # the byte order mark some editors put first
    if not text.strip():
        raise TraceFormatError(f"{source}: empty file; record the run again")
    with _without_collector_pauses():
        return _parse(text, source)  # returns before the collector comes back, so that the JSON is gone


def _parse(text: str, source: str) -> Trace:
    data = _json(text, source)
    if type(data) is not dict or data.get("schema") != SCHEMA_NAME:
        raise TraceFormatError(f'{source}: not a profiler trace (no "schema": "{SCHEMA_NAME}")')
    version = data.get("schema_version")
    if type(version) is not int or version < 1:
        raise TraceFormatError(f"{source}: schema_version must be a positive integer, not {shown(version)}")
    if version > SCHEMA_VERSION:
        raise TraceFormatError(
            f"{source}: written by a newer profiler (trace schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade profiler"
        )
    try:
        return _read_v1(data) if version == 1 else _read_v2(data)
    except _Invalid as invalid:
        raise TraceFormatError(
            f"{source}: invalid trace at {invalid.where}: {invalid.problem}; record the run again or restore the file"
        ) from None


def load(path: Path | str) -> Trace:
    """Read and validate a trace file; any problem is one TraceFormatError line."""
    path = Path(path)
    return parse(read_input(path, "trace"), str(path))


def error_location(loc: Iterable[int | str]) -> str:
    """A pydantic error location as a path: ("processes", 3, "pid") is processes[3].pid."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "top level"
