"""Outputs: written whole or not at all, with the mode they should have, and never in place of a special file."""

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from profiler import files
from profiler.cli import main
from profiler.errors import OutputError
from profiler.files import PRIVATE, write_text_atomically
from profiler.trace import load

REPOSITORY = Path(__file__).resolve().parents[2]
TRACE = REPOSITORY / "traces" / "git-clone.trace.json"


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_a_policy_follows_the_umask(tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int) -> None:
    umask(mask)
    write_text_atomically(tmp_path / "unit.conf", "[Service]\n", overwrite=False)
    assert mode(tmp_path / "unit.conf") == expected


@pytest.mark.parametrize("mask", [0o077, 0o022, 0o000])
def test_a_trace_is_for_its_owner_only(tmp_path: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    load(TRACE).save(tmp_path / "a.trace.json")
    load(TRACE).save(tmp_path / "a.trace.json", overwrite=True)
    assert mode(tmp_path / "a.trace.json") == PRIVATE


def special_files(directory: Path) -> dict[str, Path]:
    os.mkfifo(directory / "fifo")
    (directory / "link").symlink_to(directory / "elsewhere")
    (directory / "directory").mkdir()
    made = {"FIFO": directory / "fifo", "symbolic link": directory / "link", "directory": directory / "directory"}
    if os.geteuid() == 0:  # a device node of our own, never the host's /dev/null
        os.mknod(directory / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made["character device"] = directory / "null"
    return made


@pytest.mark.parametrize("overwrite", [False, True])
def test_anything_but_a_regular_file_is_refused_and_left_alone(tmp_path: Path, overwrite: bool) -> None:
    for kind, path in special_files(tmp_path).items():
        before = os.lstat(path)
        with pytest.raises(OutputError, match=f"{path}: is a {kind}.*, not a regular file; give a file name"):
            write_text_atomically(path, "text\n", overwrite=overwrite)
        after = os.lstat(path)
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert not [entry for entry in os.listdir(tmp_path) if entry.endswith(".tmp")]


def test_a_file_that_turns_special_after_the_check_is_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.json"
    path.write_text("old\n")
    real_check = files.check_output

    def check_then_swap(checked: Path, *, overwrite: bool) -> None:
        real_check(checked, overwrite=overwrite)
        if checked.is_file():
            checked.unlink()
            os.mkfifo(checked)  # what a second writer could do between the check and the replace

    monkeypatch.setattr(files, "check_output", check_then_swap)
    with pytest.raises(OutputError, match="is a FIFO"):
        write_text_atomically(path, "new\n", overwrite=True)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_force_replaces_a_regular_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("old\n")
    write_text_atomically(path, "new\n", overwrite=True)
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["out.json"]


def test_generate_onto_a_fifo_is_one_line_and_exit_2(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    result = CliRunner().invoke(main, ["generate", "--format", "systemd", str(TRACE), "-o", str(tmp_path / "fifo")])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "fifo: is a FIFO (a named pipe), not a regular file" in result.stderr


def test_record_refuses_a_special_output_before_recording(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    result = CliRunner().invoke(main, ["record", "-o", str(tmp_path / "fifo"), "--force", "--", "true"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "is a FIFO (a named pipe), not a regular file" in result.stderr
