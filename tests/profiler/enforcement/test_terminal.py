"""A confined command on a terminal: Ctrl-Z suspends it with profiler, and the shell's fg resumes both, as job
control does for a command the shell ran itself (and as `record` does)."""

import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.profiler.enforcement.conftest import PROFILER, write_unit
from tests.profiler.recording.conftest import Terminal


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    made = Terminal()
    yield made
    made.close()


@pytest.mark.parametrize("mode", [(), ("--audit",)])
def test_ctrl_z_suspends_the_confined_command_and_fg_resumes_it(
    terminal: Terminal, tmp_path: Path, mode: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    if mode:
        request.getfixturevalue("tracing_available")  # an audit records
    policy = write_unit(tmp_path, "[Service]\nPrivateTmp=yes\nSystemCallFilter=@system-service\n")
    # Each prompt says the last status and how many prompts came before it: the fourth follows the fg.
    prompt = {"PS1": "$ ", "PROMPT_COMMAND": 'echo "prompt $? $((++prompts))"'}
    shell = terminal.start(["bash", "--norc", "--noprofile", "-i"], env={**os.environ, **prompt}, cwd="/")
    script = "echo $((6 * 7)) ready; read line; echo got $line"
    command = shlex.join([PROFILER, "run", *mode, "--no-watch", "--policy", str(policy), "--", "sh", "-c", script])
    terminal.type(command.encode() + b"\r")
    terminal.read_until(b"42 ready")
    terminal.type(b"\x1a")
    terminal.read_until(b"Stopped")
    # profiler sends SIGSTOP before it stops itself, and the command stops once it is scheduled: on a loaded
    # machine that can come after the shell printed "Stopped".
    deadline = time.monotonic() + 10
    while not (stopped := [pid for pid in _children_named("sh") if _state(pid) == "T"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stopped, "the confined command is not stopped"
    terminal.type(b"echo the shell runs\r")
    terminal.read_until(b"the shell runs\r\n")
    terminal.type(b"fg\r")
    time.sleep(0.5)  # the command's terminal takes keys again once profiler is continued
    assert all(_state(pid) != "T" for pid in stopped)
    terminal.type(b"hello\r")
    terminal.read_until(b"got hello")
    terminal.read_until(b"prompt 0 4")  # the job ended, with status 0; the shell has its terminal back
    terminal.type(b"exit\r")
    assert terminal.wait(shell) == 0


def _children_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name and "ready; read line" in (
                    entry / "cmdline"
                ).read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
