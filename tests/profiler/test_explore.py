"""profiler.explore: tables that say what the trace file says, a graph whose edges are the parent links, exports
that read back to the same tables, and the learning-curve arithmetic."""

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from profiler import explore, trace
from profiler.cli import main
from profiler.errors import TraceFormatError
from profiler.explore import Table, TraceTables
from profiler.trace import FileAccess, FileOp, KernelUse
from tests.generators.sandbox_builders import recorded

REPOSITORY = Path(__file__).resolve().parents[2]
# Recorded as root, in a directory holding an empty file `owned`, by
#   profiler record -o explore-tree.trace.json --component explore-fixture -- /bin/sh -c 'chown nobody owned;
#   /bin/sh -c "exec /usr/bin/python3 -c \"import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()\"";
#   unshare --user --net true'
TREE = REPOSITORY / "tests" / "fixtures" / "traces" / "explore-tree.trace.json"
COMMITTED = sorted((REPOSITORY / "traces").glob("*.trace.json"))


@pytest.fixture(scope="module")
def tree() -> TraceTables:
    return explore.load([TREE])


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The fixture as json.load reads it: what the tables are checked against, without the trace model."""
    document: dict[str, Any] = json.loads(TREE.read_text())
    return document


@pytest.fixture(scope="module")
def every_run() -> TraceTables:
    return explore.load([*COMMITTED, TREE])


def _program(raw: dict[str, Any], process: int, image: int) -> str:
    owner = next(row for row in raw["processes"] if row["id"] == process)
    path: str = owner["images"][image]["path"]
    return path


def test_syscalls_are_the_rows_of_the_file(tree: TraceTables, raw: dict[str, Any]) -> None:
    expected = [
        (
            "explore-tree",
            "explore-fixture",
            row["process"],
            row["image"],
            _program(raw, row["process"], row["image"]),
            row["name"],
            row["nr"],
            row["count"],
            row["first_s"],
        )
        for row in raw["syscalls"]
    ]
    columns = ["run", "component", "process", "image", "program", "syscall", "nr", "count", "first_s"]
    assert list(tree.syscalls[columns].itertuples(index=False, name=None)) == expected
    pids = {row["id"]: row["pid"] for row in raw["processes"]}
    assert tree.syscalls["pid"].tolist() == [pids[row["process"]] for row in raw["syscalls"]]
    assert tree.syscalls["abi"].unique().tolist() == ["x86_64"]
    assert tree.syscalls["unresolved"].isna().all()


def test_the_recorded_workload_is_in_the_tables(tree: TraceTables) -> None:
    assert tree.runs[["run", "component", "user", "exit_status", "dropped"]].values.tolist() == [
        ["explore-tree", "explore-fixture", "root", 0, 0]
    ]
    assert tree.processes["exec_chain"].tolist() == [
        "/bin/sh",
        "/bin/sh → /usr/bin/chown",
        "/bin/sh → /bin/sh → /usr/bin/python3",
        "/bin/sh → /usr/bin/unshare → /usr/bin/true",
    ]
    assert tree.processes["program"].tolist() == ["/bin/sh", "/usr/bin/chown", "/usr/bin/python3", "/usr/bin/true"]
    assert tree.processes["parent"].tolist() == [pd.NA, 1, 1, 1]
    python = tree.images[tree.images["process"] == 3]
    assert python[["image", "program", "argv0"]].values.tolist() == [
        [0, "/bin/sh", "/bin/sh"],
        [1, "/bin/sh", "/bin/sh"],
        [2, "/usr/bin/python3", "/usr/bin/python3"],
    ]
    assert python["exec_s"].isna().tolist() == [True, False, False]  # image 0 is inherited at fork
    assert python["exec_s"].iloc[1] < python["exec_s"].iloc[2]

    needed = tree.capability_checks[tree.capability_checks["classification"] == "needed"]
    columns = ["capability", "program", "syscall", "via", "initial_user_ns", "granted", "count"]
    assert sorted(needed[columns].itertuples(index=False, name=None)) == [
        ("CAP_CHOWN", "/usr/bin/chown", "fchownat", "setattr_prepare", True, True, 1),
        ("CAP_SYS_ADMIN", "/usr/bin/unshare", "unshare", "unshare_nsproxy_namespaces", False, True, 1),
    ]
    chown_path = needed.loc[needed["capability"] == "CAP_CHOWN", "kernel_path"].item().split(";")
    assert chown_path[0].startswith("__x64_sys_") and chown_path[-1] == "cap_capable"
    assert "setattr_prepare" in chown_path
    assert set(tree.capability_checks.loc[tree.capability_checks["classification"] == "probe", "via"]) == {
        "security_vm_enough_memory_mm"
    }

    sockets = tree.sockets[["program", "syscall", "family", "type", "count"]]
    assert sorted(sockets.itertuples(index=False, name=None)) == [
        ("/usr/bin/chown", "socket", "AF_UNIX", "SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC", 2),
        ("/usr/bin/python3", "socket", "AF_INET6", "SOCK_DGRAM|SOCK_CLOEXEC", 1),
    ]
    assert tree.namespaces[["program", "syscall", "flags"]].values.tolist() == [
        ["/usr/bin/unshare", "unshare", "CLONE_NEWUSER|CLONE_NEWNET"]
    ]


def test_every_table_has_its_columns_and_dtypes_even_when_empty(every_run: TraceTables, tree: TraceTables) -> None:
    for table in Table:
        for tables in (every_run, tree, explore.tables([])):
            frame = tables.table(table)
            assert [(name, str(dtype)) for name, dtype in frame.dtypes.items()] == [
                (name, str(pd.Series([], dtype=dtype).dtype)) for name, dtype in explore.COLUMNS[table]
            ]
    assert explore.tables([]).syscalls.empty


def test_runs_stack_with_a_run_column(every_run: TraceTables) -> None:
    names = [path.name.removesuffix(".trace.json") for path in [*COMMITTED, TREE]]
    assert every_run.runs["run"].tolist() == names
    for table in Table:
        assert set(every_run.table(table)["run"]) <= set(names)
    singles = [explore.load([path]) for path in [*COMMITTED, TREE]]
    for table in Table:
        assert len(every_run.table(table)) == sum(len(single.table(table)) for single in singles)


def test_a_file_given_twice_is_two_numbered_runs() -> None:
    twice = explore.load([TREE, TREE])
    assert twice.runs["run"].tolist() == ["explore-tree#1", "explore-tree#2"]
    assert twice.syscalls["run"].value_counts().to_dict() == {
        "explore-tree#1": len(twice.syscalls) // 2,
        "explore-tree#2": len(twice.syscalls) // 2,
    }
    assert explore.run_name("dir/build.json") == "build"
    assert explore.run_name("trace-without-suffix") == "trace-without-suffix"


def test_numbers_without_names_are_labelled_not_dropped(raw: dict[str, Any]) -> None:
    # Numbers that profiler's tables and libseccomp's do not name: the loader keeps names only where they do.
    raw = json.loads(json.dumps(raw))
    raw["syscalls"][0].update(nr=999, name=None, unresolved="libseccomp 2.5.4 knows no syscall 999 on x86_64")
    raw["capability_checks"][0].update(cap=60, capability=None, syscall=None, syscall_nr=None)
    raw["sockets"][0].update(family_nr=60, family=None)
    tables = explore.tables([("edited", trace.parse(json.dumps(raw), "edited"))])
    first = tables.syscalls.iloc[0]
    assert (first["syscall"], first["unresolved"]) == (f"#{raw['syscalls'][0]['nr']}", raw["syscalls"][0]["unresolved"])
    check = tables.capability_checks.iloc[0]
    assert check["capability"] == f"#{raw['capability_checks'][0]['cap']}"
    assert pd.isna(check["syscall"]) and pd.isna(check["syscall_nr"])
    assert tables.sockets.iloc[0]["family"] == f"#{raw['sockets'][0]['family_nr']}"
    assert tables.syscalls.groupby("syscall")["count"].sum().sum() == tables.syscalls["count"].sum()


def test_a_bad_file_is_one_trace_format_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "cut.trace.json"
    bad.write_text(TREE.read_text()[:500])
    with pytest.raises(TraceFormatError, match=r"cut\.trace\.json: not valid JSON"):
        explore.load([TREE, bad])


def test_process_tree_edges_are_the_parent_links(every_run: TraceTables) -> None:
    graph = explore.process_tree(every_run.processes)
    links = set()
    for path in [*COMMITTED, TREE]:
        run = path.name.removesuffix(".trace.json")
        data = json.loads(path.read_text())
        if "tables" in data:  # schema 2: each table as columns and rows
            table = data["tables"]["processes"]
            data = {"processes": [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]}
        processes = data["processes"]
        links |= {((run, row["parent"]), (run, row["id"])) for row in processes if row["parent"] is not None}
    assert set(graph.edges) == links
    assert graph.number_of_nodes() == len(every_run.processes)
    node = graph.nodes[("explore-tree", 3)]
    assert (node["pid"], node["program"], node["parent"], node["exit_signal"], node["depth"]) == (
        every_run.processes.loc[every_run.processes["run"] == "explore-tree", "pid"].tolist()[2],
        "/usr/bin/python3",
        1,
        None,
        1,
    )
    assert {graph.nodes[root]["depth"] for root, degree in graph.in_degree() if degree == 0} == {0}


def test_a_process_whose_parent_is_left_out_is_a_root(tree: TraceTables) -> None:
    children = tree.processes[tree.processes["process"] != 1]
    graph = explore.process_tree(children)
    assert graph.number_of_edges() == 0
    assert {data["depth"] for _, data in graph.nodes(data=True)} == {0}


@pytest.mark.parametrize("table", list(Table))
def test_csv_reads_back_to_the_same_table(every_run: TraceTables, table: Table) -> None:
    frame = every_run.table(table)
    back = pd.read_csv(io.StringIO(explore.to_csv(every_run, table)), dtype=frame.dtypes.to_dict())
    pd.testing.assert_frame_equal(back, frame)


def test_json_reads_back_to_the_same_tables(every_run: TraceTables) -> None:
    document = json.loads(explore.to_json(every_run))
    assert list(document) == [table.value for table in Table]
    for table in Table:
        frame = every_run.table(table)
        back = pd.DataFrame(document[table.value], columns=list(frame.columns)).astype(frame.dtypes.to_dict())
        pd.testing.assert_frame_equal(back, frame)
    # Missing values are null, not NaN (which is not JSON), and integers stay integers.
    assert {type(row["syscall_nr"]) for row in document["capability_checks"]} == {int, type(None)}
    assert {type(row["first_s"]) for row in document["syscalls"]} == {float}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_show_exports_the_tables(every_run: TraceTables) -> None:
    paths = [str(path) for path in [*COMMITTED, TREE]]
    csv = invoke("show", "--format", "csv", "--table", "capability_checks", *paths)
    assert csv.exit_code == 0, csv.output
    assert csv.stdout == explore.to_csv(every_run, Table.CAPABILITY_CHECKS)
    everything = invoke("show", "--format", "json", *paths)
    assert everything.exit_code == 0, everything.output
    assert json.loads(everything.stdout) == json.loads(explore.to_json(every_run))
    one = invoke("show", "--format", "json", "--table", "sockets", *paths)
    assert json.loads(one.stdout) == {"sockets": explore.records(every_run.sockets)}
    assert invoke("show", str(TREE)).stdout.startswith(f"{TREE}: component explore-fixture")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "--format csv writes one table: give --table NAME"),
        (["--table", "runs"], "--table applies to --format csv and json"),
        (["--format", "csv", "--table", "stacks"], "'stacks' is not one of"),
    ],
)
def test_show_refuses_options_that_do_not_fit(args: list[str], message: str) -> None:
    result = invoke("show", *args, str(TREE))
    assert result.exit_code == 2
    assert message in result.output


def test_show_names_a_bad_trace_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.trace.json"
    result = invoke("show", "--format", "json", str(missing))
    assert (result.exit_code, result.output) == (
        2,
        f"profiler: error: {missing}: cannot read: No such file or directory\n",
    )


def test_learning_curve_adds_runs_in_recording_order(every_run: TraceTables) -> None:
    curve = explore.learning_curve(every_run)
    git = curve[curve["component"] == "git-clone"]
    started = every_run.runs[every_run.runs["component"] == "git-clone"].sort_values("started_at")["run"]
    assert git["run"].tolist() == started.tolist()
    assert git["runs"].tolist() == [1, 2, 3]
    per_run = every_run.syscalls.groupby("run")["syscall"].agg(set)
    seen: set[str] = set()
    for run, distinct, new in git[["run", "distinct", "new"]].itertuples(index=False, name=None):
        assert new == len(per_run[run] - seen)
        seen |= per_run[run]
        assert distinct == len(seen)


def test_a_repeated_run_adds_nothing_and_saturates() -> None:
    twice = explore.load([TREE, TREE])
    assert explore.learning_curve(twice)["new"].tolist() == [43, 0]
    row = explore.saturation(twice).iloc[0]
    assert (row["runs"], row["distinct"], row["in_one_run"], row["in_two_runs"]) == (2, 43, 0, 43)
    assert row["expected_new_next_run"] == 0


def test_saturation_of_the_committed_runs(every_run: TraceTables) -> None:
    table = explore.saturation(every_run).set_index("component")
    assert pd.isna(table.loc["curl", "expected_new_next_run"])  # one run cannot tell
    git = table.loc["git-clone"]
    incidence = every_run.syscalls[every_run.syscalls["component"] == "git-clone"].groupby("syscall")["run"].nunique()
    assert (git["in_one_run"], git["in_two_runs"]) == ((incidence == 1).sum(), (incidence == 2).sum())
    assert git["expected_new_next_run"] == explore.expected_new_in_next_run(3, git["in_one_run"], git["in_two_runs"])


def test_expected_new_in_next_run_worked_examples() -> None:
    # Q0 = 2/3 · 6²/(2·3) = 4 unseen; the next run finds 4 · 6/(3·4 + 6) = 4/3 of them.
    assert explore.expected_new_in_next_run(3, 6, 3) == pytest.approx(4 / 3)
    # No doubletons: Q0 = 1/2 · 3·2/2 = 1.5; 1.5 · 3/(2·1.5 + 3) = 0.75.
    assert explore.expected_new_in_next_run(2, 3, 0) == pytest.approx(0.75)
    assert explore.expected_new_in_next_run(2, 0, 70) == 0
    assert pd.isna(explore.expected_new_in_next_run(1, 40, 0))


@given(st.integers(2, 1000), st.integers(0, 500), st.integers(0, 500))
def test_the_next_run_adds_at_most_singletons_per_run(runs: int, in_one: int, in_two: int) -> None:
    expected = explore.expected_new_in_next_run(runs, in_one, in_two)
    assert 0 <= expected <= in_one / runs + 1e-9


@pytest.fixture(scope="module")
def with_paths() -> tuple[trace.Trace, TraceTables]:
    """A run recorded with paths (by hand: the curl trace with file and kernel rows added), beside one without."""
    curl = recorded(
        trace.load(REPOSITORY / "traces" / "curl-fetch.trace.json"),
        [
            ("/etc/ssl/certs/ca-certificates.crt", FileOp.READ),
            ("/root/.curlrc", FileOp.READ, "ENOENT"),
            ('/tmp/a,b\n"c"', FileOp.CREATE),
        ],
        [(KernelUse.NETWORK, "connect 151.101.0.223:443")],
    )
    assert curl.file_accesses is not None
    device = FileAccess(1, 0, "/dev/null", FileOp.WRITE, None, (1, 3), 2, 0.5)
    curl = dataclasses.replace(curl, file_accesses=(*curl.file_accesses, device))
    return curl, explore.tables([("curl-paths.trace.json", curl), (str(TREE), trace.load(TREE))])


def test_file_accesses_and_kernel_uses_are_the_rows_of_the_trace(with_paths: tuple[trace.Trace, TraceTables]) -> None:
    curl, tables = with_paths
    assert tables.runs[["run", "paths_recorded"]].values.tolist() == [["curl-paths", True], ["explore-tree", False]]
    columns = ["run", "program", "path", "op", "error", "device_major", "device_minor", "count", "first_s"]
    rows = [tuple(None if pd.isna(value) else value for value in row) for row in tables.file_accesses[columns].values]
    assert rows == [
        ("curl-paths", "/usr/bin/curl", a.path, a.op.value, a.error, *(a.device or (None, None)), a.count, a.first_s)
        for a in curl.file_accesses or ()
    ]
    assert tables.kernel_uses[["program", "use", "detail", "count"]].values.tolist() == [
        ["/usr/bin/curl", "network", "connect 151.101.0.223:443", 1]
    ]


@pytest.mark.parametrize("table", [Table.FILE_ACCESSES, Table.KERNEL_USES])
def test_the_path_tables_export_and_read_back(with_paths: tuple[trace.Trace, TraceTables], table: Table) -> None:
    _, tables = with_paths
    frame = tables.table(table)
    assert len(frame)
    document = json.loads(explore.to_json(tables, [table]))
    back = pd.DataFrame(document[table.value], columns=list(frame.columns)).astype(frame.dtypes.to_dict())
    pd.testing.assert_frame_equal(back, frame)
    lines = explore.to_csv(tables, table).splitlines()
    assert len(lines) == 1 + len(frame), "a path that holds a line break is escaped onto its row's line"
