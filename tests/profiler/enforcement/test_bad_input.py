"""What `run` cannot do is one line and exit 2, and the command does not run: bad input, or a set-up step that fails."""

from pathlib import Path

import pytest

from tests.profiler.enforcement.conftest import RunProfiler, write_unit


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("profiler: error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("unit", "said"),
    [
        ("[Service]\nProtectSystem=sometimes\n", "ProtectSystem=sometimes: not a value systemd knows"),
        ("[Service]\nReadWritePaths=relative/path\n", "ReadWritePaths=relative/path: relative/path is not"),
        ("[Service]\nUser=no-such-user-here\n", "unknown user 'no-such-user-here'"),
        ("[Service]\nStateDirectory=../../etc\n", "StateDirectory=../../etc: ../../etc is not a normalised relative"),
    ],
)
def test_a_policy_run_cannot_apply_is_one_line(profiler_run: RunProfiler, tmp_path: Path, unit: str, said: str) -> None:
    marker = tmp_path / "ran"
    done = profiler_run("--policy", str(write_unit(tmp_path, unit)), "--", "/usr/bin/touch", str(marker))
    assert done.returncode == 2
    assert said in _one_line(done.stderr)
    assert not marker.exists()


def test_usage_errors_are_one_line(profiler_run: RunProfiler, tmp_path: Path) -> None:
    unit = write_unit(tmp_path, "[Service]\nPrivateTmp=yes\n")
    for arguments in (["--policy", str(unit)], ["--policy", str(tmp_path / "missing.service"), "--", "true"]):
        done = profiler_run(*arguments)
        assert done.returncode == 2
        _one_line(done.stderr)


def test_a_step_that_fails_in_the_child_stops_the_command_before_exec(
    profiler_run: RunProfiler, shared_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """The working directory is entered again as the user, through the new mounts: here nobody may not."""
    writable, _ = shared_dirs
    closed = writable / "closed"
    closed.mkdir(mode=0o700)
    marker = writable / "ran"
    unit = write_unit(tmp_path, "[Service]\nUser=nobody\nNoNewPrivileges=yes\n")
    done = profiler_run("--policy", str(unit), "--", "/usr/bin/touch", str(marker), cwd=closed)
    line = _one_line(done.stderr)
    assert done.returncode == 2
    assert "working directory" in line and "Permission denied" in line and "it was not started" in line
    assert not marker.exists()
