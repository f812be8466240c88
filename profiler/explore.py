"""Traces as tidy pandas DataFrames and the process tree as a networkx graph, for notebooks and other tools.

One row per fact the trace recorded, one column per property, and in every table a `run` column naming the
trace it came from (its file name without .trace.json), so that many runs stack into one table:

    runs               one row per trace: component, command, user, when, how long, how it ended, drops
    processes          one row per process: pid, parent, the exec chain, start, exit
    images             one row per program a process ran: the one inherited at fork, then one per execve
    syscalls           one row per (process, image, syscall): count and first use, in seconds since the start
    capability_checks  one row per distinct check: capability, class, granted, syscall, via, kernel path
    sockets            one row per (process, image, family, type, protocol): socket() and socketpair() calls
    namespaces         one row per (process, image, syscall, flags): namespaces created or joined
    file_accesses      one row per (program, path, op, result): files, directories and devices used, on the
                       process image that made the first (older traces: per process image)
    kernel_uses        one row per (program, use, detail): kernel interfaces reached other than by a path

file_accesses and kernel_uses have no rows for a run that did not record them: `runs.paths_recorded` tells
that apart from a run that touched nothing.

Where the model has no name for a number (a syscall, capability or family newer than the tables that named
it), the name column holds `#NUMBER`, as `profiler show` prints it, so that a groupby never drops the row; the
number column is always there, and `syscalls.unresolved` says why.

pandas and networkx are imported when a table or graph is built, not with this module: the CLI needs the
table names on every start and should not pay for pandas.
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from profiler import trace as trace_model
from profiler.capability_paths import asking_function
from profiler.escaping import json_dumps, spreadsheet_cell
from profiler.trace import Trace

if TYPE_CHECKING:
    import pandas as pd


class Table(StrEnum):
    RUNS = "runs"
    PROCESSES = "processes"
    IMAGES = "images"
    SYSCALLS = "syscalls"
    CAPABILITY_CHECKS = "capability_checks"
    SOCKETS = "sockets"
    NAMESPACES = "namespaces"
    FILE_ACCESSES = "file_accesses"
    KERNEL_USES = "kernel_uses"


# Where a row was recorded: the columns every table but runs and processes starts with.
_ORIGIN: Final = (("run", "str"), ("component", "str"), ("process", "int64"), ("pid", "int64"), ("image", "int64"))
_ORIGIN_PROGRAM: Final = (*_ORIGIN, ("program", "str"))

# Each table's columns and their dtypes: "str" missing values are NaN, "Int64" ones pd.NA, "float64" ones NaN.
COLUMNS: Final[dict[Table, tuple[tuple[str, str], ...]]] = {
    Table.RUNS: (
        ("run", "str"),
        ("source", "str"),  # the path the trace was loaded from
        ("component", "str"),
        ("command", "str"),  # shell-quoted
        ("mode", "str"),
        ("target", "str"),
        ("user", "str"),
        ("uid", "int64"),
        ("hostname", "str"),
        ("kernel_release", "str"),
        ("abi", "str"),
        ("started_at", "str"),  # ISO 8601, UTC: sorts as text
        ("duration_s", "float64"),
        ("end_reason", "str"),
        ("exit_status", "Int64"),
        ("capability_source", "str"),
        ("dropped", "int64"),  # events the kernel side lost, all counters together: non-zero means incomplete
        ("paths_recorded", "bool"),  # whether file_accesses and kernel_uses were recorded (else "not recorded")
    ),
    Table.PROCESSES: (
        ("run", "str"),
        ("component", "str"),
        ("process", "int64"),  # the process id in the trace, unique even when the kernel reused the pid
        ("pid", "int64"),
        ("parent", "Int64"),
        ("parent_pid", "Int64"),
        ("program", "str"),  # the last image: what the process ran when it exited
        ("exec_chain", "str"),  # every image, the inherited one first, joined by " → "
        ("start_s", "float64"),
        ("exit_s", "float64"),
        ("exit_code", "Int64"),
        ("exit_signal", "str"),
        ("attached", "bool"),
    ),
    Table.IMAGES: (
        *_ORIGIN_PROGRAM,
        ("argv0", "str"),
        ("exec_s", "float64"),  # missing for an image inherited at fork (it began with the process) or attached
        ("abi", "str"),
    ),
    Table.SYSCALLS: (
        *_ORIGIN_PROGRAM,
        ("abi", "str"),
        ("syscall", "str"),
        ("nr", "int64"),
        ("unresolved", "str"),
        ("count", "int64"),
        ("first_s", "float64"),
    ),
    Table.CAPABILITY_CHECKS: (
        *_ORIGIN_PROGRAM,
        ("capability", "str"),
        ("cap", "int64"),
        ("granted", "bool"),
        ("classification", "str"),  # needed, denied or probe (a noaudit check: says nothing about need)
        ("syscall", "str"),  # missing outside a syscall
        ("syscall_nr", "Int64"),
        ("initial_user_ns", "bool"),
        ("via", "str"),  # the kernel function that asked: profiler.capability_paths.asking_function
        ("kernel_path", "str"),  # outermost frame first, joined by ";": the folded form flame-graph tools read
        ("stack_error", "str"),  # why kernel_path is missing
        ("count", "int64"),
    ),
    Table.SOCKETS: (
        *_ORIGIN_PROGRAM,
        ("syscall", "str"),
        ("family", "str"),
        ("family_nr", "int64"),
        ("type", "str"),  # the type and its flags joined by "|"
        ("type_nr", "int64"),
        ("protocol", "int64"),
        ("count", "int64"),
    ),
    Table.NAMESPACES: (
        *_ORIGIN_PROGRAM,
        ("syscall", "str"),
        ("flags", "str"),  # CLONE_NEW* names joined by "|"; missing for setns on a namespace of any type
        ("flags_nr", "int64"),
        ("count", "int64"),
    ),
    Table.FILE_ACCESSES: (
        *_ORIGIN_PROGRAM,
        ("path", "str"),  # absolute
        ("op", "str"),  # read, write, create, delete, rename, link, chmod, setid, exec, map-exec, list
        ("error", "str"),  # the errno name where it failed (a probe, not a need); missing where it succeeded
        ("device_major", "Int64"),  # a device node's numbers; missing for anything else
        ("device_minor", "Int64"),
        ("count", "int64"),
        ("first_s", "float64"),
    ),
    Table.KERNEL_USES: (
        *_ORIGIN_PROGRAM,
        ("use", "str"),  # write-execute, personality, realtime, other-process, network, loopback
        ("detail", "str"),  # what was asked: "connect 127.0.0.1:8080", "personality(0x0008)"
        ("count", "int64"),
    ),
}


@dataclass(frozen=True, slots=True)
class TraceTables:
    """The tables of one or many traces, stacked; see the module docstring for what each holds."""

    runs: pd.DataFrame
    processes: pd.DataFrame
    images: pd.DataFrame
    syscalls: pd.DataFrame
    capability_checks: pd.DataFrame
    sockets: pd.DataFrame
    namespaces: pd.DataFrame
    file_accesses: pd.DataFrame
    kernel_uses: pd.DataFrame

    def table(self, table: Table) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, table.value)
        return frame


def run_name(source: str) -> str:
    """The name a trace goes by in the run column: its file name without .trace.json (or .json)."""
    name = Path(source).name
    for suffix in (".trace.json", ".json"):
        if name.endswith(suffix) and name != suffix:
            return name.removesuffix(suffix)
    return name


def _unique_run_names(sources: Sequence[str]) -> list[str]:
    """Run names, numbered name#1, name#2 where files of the same name are given more than once."""
    names = [run_name(source) for source in sources]
    repeated = {name for name, times in Counter(names).items() if times > 1}
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(f"{name}#{seen[name]}" if name in repeated else name)
    return unique


def _label(name: str | None, number: int | None) -> str | None:
    if name is not None:
        return name
    return None if number is None else f"#{number}"


def _rows(table: Table, run: str, trace: Trace, source: str) -> list[tuple[Any, ...]]:
    info = trace.run
    component = info.component

    def origin(process: int, image: int) -> tuple[Any, ...]:
        return (run, component, process, trace.process(process).pid, image, trace.program(process, image))

    match table:
        case Table.RUNS:
            return [
                (
                    run,
                    source,
                    component,
                    shlex.join(info.command),
                    info.mode.value,
                    info.target,
                    info.user,
                    info.uid,
                    info.hostname,
                    info.kernel_release,
                    info.abi,
                    info.started_at,
                    info.duration_s,
                    info.end_reason.value,
                    info.exit_status,
                    info.capability_source.value,
                    info.dropped.total,
                    trace.file_accesses is not None,
                )
            ]
        case Table.PROCESSES:
            return [
                (
                    run,
                    component,
                    process.id,
                    process.pid,
                    process.parent,
                    process.parent_pid,
                    process.images[-1].path,
                    " → ".join(image.path for image in process.images),
                    process.start_s,
                    process.exit_s,
                    process.exit_code,
                    process.exit_signal,
                    process.attached,
                )
                for process in trace.processes
            ]
        case Table.IMAGES:
            return [
                (*origin(process.id, index), image.argv0, image.exec_s, image.abi)
                for process in trace.processes
                for index, image in enumerate(process.images)
            ]
        case Table.SYSCALLS:
            return [
                (
                    *origin(use.process, use.image),
                    trace.image(use.process, use.image).abi,
                    _label(use.name, use.nr),
                    use.nr,
                    use.unresolved,
                    use.count,
                    use.first_s,
                )
                for use in trace.syscalls
            ]
        case Table.CAPABILITY_CHECKS:
            rows = []
            for check in trace.capability_checks:
                stack = trace.stack(check.stack)
                rows.append(
                    (
                        *origin(check.process, check.image),
                        _label(check.capability, check.cap),
                        check.cap,
                        check.granted,
                        check.classification.value,
                        _label(check.syscall, check.syscall_nr),
                        check.syscall_nr,
                        check.initial_user_ns,
                        asking_function(stack.frames) if stack else None,
                        ";".join(reversed(stack.frames)) if stack else None,
                        check.stack_error,
                        check.count,
                    )
                )
            return rows
        case Table.SOCKETS:
            return [
                (
                    *origin(use.process, use.image),
                    use.syscall,
                    _label(use.family, use.family_nr),
                    use.family_nr,
                    "|".join(use.type),
                    use.type_nr,
                    use.protocol,
                    use.count,
                )
                for use in trace.sockets
            ]
        case Table.NAMESPACES:
            return [
                (*origin(use.process, use.image), use.syscall, "|".join(use.flags) or None, use.flags_nr, use.count)
                for use in trace.namespaces
            ]
        case Table.FILE_ACCESSES:
            return [
                (
                    *origin(access.process, access.image),
                    access.path,
                    access.op.value,
                    access.error,
                    *(access.device or (None, None)),
                    access.count,
                    access.first_s,
                )
                for access in trace.file_accesses or ()
            ]
        case Table.KERNEL_USES:
            return [
                (*origin(use.process, use.image), use.use.value, use.detail, use.count)
                for use in trace.kernel_uses or ()
            ]


def _frame(table: Table, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    import pandas as pd

    spec = COLUMNS[table]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in spec]
    return pd.DataFrame(
        {name: pd.Series(list(values), dtype=dtype) for (name, dtype), values in zip(spec, columns, strict=True)}
    )


def tables(traces: Iterable[tuple[str, Trace]]) -> TraceTables:
    """The tables of traces already loaded, each given with the path (or name) it came from."""
    loaded = list(traces)
    runs = _unique_run_names([source for source, _ in loaded])
    frames = {}
    for table in Table:
        rows = [
            row for run, (source, trace) in zip(runs, loaded, strict=True) for row in _rows(table, run, trace, source)
        ]
        frames[table.value] = _frame(table, rows)
    return TraceTables(**frames)


def load(paths: Iterable[Path | str]) -> TraceTables:
    """Read trace files into tables; a bad file is one TraceFormatError naming it."""
    return tables((str(path), trace_model.load(path)) for path in paths)


def _native_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Each column as Python values, a missing value as None: what JSON and networkx attributes want."""
    return {str(name): frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in frame.columns}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a table as dictionaries of plain Python values, None where a value is missing."""
    columns = _native_columns(frame)
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def to_csv(tables: TraceTables, table: Table) -> str:
    """One table as CSV with a header line; a missing value is an empty field.

    CSV is for tools but gets printed on terminals and opened in spreadsheets: its text is escaped as `profiler
    show` prints it, so that no control character reaches a terminal and each row is one line, and a text that
    begins as a formula does (=, +, -, @) is led by a single quote, so that no spreadsheet runs it
    (profiler.escaping.spreadsheet_cell); to_json keeps the exact values.
    """
    frame = tables.table(table).copy()
    for name, dtype in COLUMNS[table]:
        if dtype == "str":
            frame[name] = frame[name].map(spreadsheet_cell, na_action="ignore")
    text: str = frame.to_csv(index=False, lineterminator="\n")
    return text


def to_json(tables: TraceTables, which: Iterable[Table] = tuple(Table)) -> str:
    """Tables as one JSON object: each table's name maps to its rows, a missing value is null; strings exact,
    with JSON's escapes for every control character (profiler.escaping.json_dumps)."""
    document = {table.value: records(tables.table(table)) for table in which}
    return json_dumps(document, indent=2) + "\n"


def process_tree(processes: pd.DataFrame) -> Any:
    """The process tree as a networkx DiGraph: an edge from each parent to each child.

    Nodes are (run, process) pairs carrying every column of the processes table, plus `depth` (0 for a root)
    for layered drawings; a process whose parent is not in the table is a root.
    """
    import networkx as nx

    graph = nx.DiGraph()
    rows = records(processes)
    for row in rows:
        graph.add_node((row["run"], row["process"]), **row)
    for row in rows:
        parent = (row["run"], row["parent"])
        if row["parent"] is not None and graph.has_node(parent):
            graph.add_edge(parent, (row["run"], row["process"]))
    for root in [node for node, degree in graph.in_degree() if degree == 0]:
        for node, depth in nx.single_source_shortest_path_length(graph, root).items():
            graph.nodes[node]["depth"] = depth
    return graph


def learning_curve(tables: TraceTables) -> pd.DataFrame:
    """Distinct syscalls against the number of runs, per component, adding runs in the order they were recorded.

    One row per (component, runs): the run added, the distinct syscalls seen so far and how many it added.
    """
    import pandas as pd

    order = tables.runs.sort_values(["started_at", "run"], kind="stable")
    by_run = tables.syscalls.groupby("run", sort=False)["syscall"].agg(frozenset).to_dict()
    rows = []
    for component, runs in order.groupby("component", sort=True)["run"]:
        seen: set[str] = set()
        for number, run in enumerate(runs, start=1):
            used = by_run.get(run, frozenset())
            rows.append((component, number, run, len(seen | used), len(used - seen)))
            seen |= used
    return pd.DataFrame(rows, columns=["component", "runs", "run", "distinct", "new"]).astype(
        {"component": "str", "runs": "int64", "run": "str", "distinct": "int64", "new": "int64"}
    )


def expected_new_in_next_run(runs: int, seen_in_one: int, seen_in_two: int) -> float:
    """How many syscalls a next run is expected to add, from how many were seen in exactly one and two runs.

    Chao's incidence-based extrapolation by one sampling unit (Chao et al. 2014, Ecological Monographs 84:45):
    Q0 = (T-1)/T · Q1²/(2·Q2) unseen syscalls (Q1(Q1-1)/2 in place of Q1²/(2·Q2) when Q2 is 0), of which the
    next run finds Q0 · Q1/(T·Q0 + Q1). NaN for a single run, which cannot tell.
    """
    if runs < 2:
        return math.nan
    factor = (runs - 1) / runs
    if seen_in_two > 0:
        unseen = factor * seen_in_one**2 / (2 * seen_in_two)
    else:
        unseen = factor * seen_in_one * (seen_in_one - 1) / 2
    if unseen == 0:
        return 0.0
    return unseen * seen_in_one / (runs * unseen + seen_in_one)


def saturation(tables: TraceTables) -> pd.DataFrame:
    """Per component: runs, distinct syscalls, those seen in one run only and in two, and the expected gain
    of one more run (expected_new_in_next_run)."""
    import pandas as pd

    per_run = tables.syscalls[["component", "run", "syscall"]].drop_duplicates()
    rows = []
    for component, runs in tables.runs.groupby("component", sort=True)["run"]:
        incidence = Counter(per_run.loc[per_run["component"] == component, "syscall"])
        in_one = sum(1 for times in incidence.values() if times == 1)
        in_two = sum(1 for times in incidence.values() if times == 2)
        expected = expected_new_in_next_run(len(runs), in_one, in_two)
        rows.append((component, len(runs), len(incidence), in_one, in_two, expected))
    columns = ["component", "runs", "distinct", "in_one_run", "in_two_runs", "expected_new_next_run"]
    return pd.DataFrame(rows, columns=columns).astype(
        {"component": "str", "runs": "int64", "distinct": "int64", "in_one_run": "int64", "in_two_runs": "int64"}
    )
