"""profiler show over the file and kernel tables: what was done to each path by each program, bounded, escaped,
and "not recorded" where the run did not record them."""

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from profiler import show, trace
from profiler.cli import main
from profiler.trace import FileAccess, FileOp, KernelUse, Trace
from tests.generators.sandbox_builders import recorded

REPOSITORY = Path(__file__).resolve().parents[2]
# curl-fetch as committed before the recorder recorded paths (trace schema 1); recorded() adds tables to it.
CURL = trace.load(REPOSITORY / "tests" / "fixtures" / "traces" / "curl-fetch-v1.trace.json")


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(title))
    end = next((index for index in range(start + 1, len(lines)) if not lines[index]), len(lines))
    return lines[start:end]


def test_files_and_kernel_interfaces_are_shown_per_program() -> None:
    curl = recorded(
        CURL,
        [("/etc/ssl/certs/ca-certificates.crt", FileOp.READ), ("/root/.curlrc", FileOp.READ, "ENOENT")],
        [(KernelUse.NETWORK, "connect 151.101.0.223:443")],
        dropped_paths=4,
    )
    assert curl.file_accesses is not None
    device = FileAccess(1, 0, "/dev/null", FileOp.WRITE, None, (1, 3), 2, None)
    curl = dataclasses.replace(curl, file_accesses=(*curl.file_accesses, device))
    text = show.render_summary(curl, "curl")
    assert _section(text, "files per program") == [
        "files per program (3 paths)",
        "  /usr/bin/curl (3)",
        "    write    /dev/null  (device 1:3)  2×",
        "    read     /etc/ssl/certs/ca-certificates.crt  1×",
        "    read     /root/.curlrc  ENOENT  1×",
    ]
    assert _section(text, "kernel interfaces") == [
        "kernel interfaces",
        "  network        connect 151.101.0.223:443 by /usr/bin/curl  1×",
    ]
    assert "  WARNING: dropped 4 paths: the trace is incomplete" in text.splitlines()
    assert show.short_summary(curl).splitlines()[0].endswith("socket families: AF_INET, AF_UNIX, files: 3 paths")


def test_a_run_without_the_tables_says_not_recorded_and_one_with_them_empty_says_none() -> None:
    text = show.render_summary(CURL, "curl")
    assert _section(text, "files per program")[1] == show.NOT_RECORDED
    assert _section(text, "kernel interfaces")[1] == show.NOT_RECORDED
    assert "paths" not in show.short_summary(CURL)
    empty = show.render_summary(recorded(CURL, []), "curl")
    assert _section(empty, "files per program") == ["files per program (0 paths)", "  none"]
    assert _section(empty, "kernel interfaces") == ["kernel interfaces", "  none"]


def test_a_program_of_many_paths_or_many_addresses_is_shown_in_part_and_says_where_the_rest_are() -> None:
    many = recorded(
        CURL,
        [(f"/usr/share/doc/{number:05}", FileOp.READ) for number in range(1000)],
        [(KernelUse.NETWORK, f"connect 10.0.{number // 256}.{number % 256}:443") for number in range(300)]
        + [(KernelUse.LOOPBACK, "connect 127.0.0.1:8080")],
    )
    text = show.render_summary(many, "curl")
    files = _section(text, "files per program")
    assert len(files) == 2 + show.LINES_PER_GROUP + 1
    assert files[-1] == (
        f"    ... and {1000 - show.LINES_PER_GROUP} more: profiler show --format csv --table file_accesses"
    )
    kernel = _section(text, "kernel interfaces")
    assert len(kernel) == 1 + 1 + show.LINES_PER_GROUP + 1
    assert kernel[1].startswith("  loopback ")
    assert kernel[-1] == f"  ... and {300 - show.LINES_PER_GROUP} more: profiler show --format csv --table kernel_uses"


def test_a_hostile_path_or_detail_cannot_act_on_the_terminal(tmp_path: Path) -> None:
    hostile: Trace = recorded(
        CURL,
        [("/tmp/\x1b]0;owned\x07\nfiles per program (0 paths)", FileOp.CREATE), ("/tmp/\udce9", FileOp.READ)],
        [(KernelUse.LOOPBACK, "connect 127.0.0.1:1\u202e")],
    )
    path = tmp_path / "hostile.trace.json"
    hostile.save(path)
    result = CliRunner().invoke(main, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert all(line.isprintable() for line in result.stdout.splitlines())
    assert sum(line.startswith("files per program") for line in result.stdout.splitlines()) == 1
    assert "    create   /tmp/\\x1b]0;owned\\x07\\nfiles per program (0 paths)  1×" in result.stdout.splitlines()
