"""The recorded command on a terminal: a terminal of its own, relayed, so that it cannot type into the operator's."""

import os
import shlex
import signal
import sys
import termios
import time
from pathlib import Path

import pytest

from profiler import trace as trace_module
from profiler.trace import EndReason
from tests.profiler.recording.conftest import PROFILER, Terminal, profiler_cli

# Pushes "id" and a newline into the input of every terminal it can reach, as the operator's shell would read it.
INJECT = """
import fcntl, os, termios
targets = [0, 1, 2]
try:
    targets.append(os.open("/dev/tty", os.O_RDWR))
except OSError:
    pass
for fd in targets:
    for key in b"id\\n":
        try:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([key]))
        except OSError as error:
            print("refused:", error.strerror)
            break
print("injector done")
"""


def test_a_user_workload_cannot_type_into_the_operators_terminal(terminal: Terminal, tmp_path: Path) -> None:
    if Path("/proc/sys/dev/tty/legacy_tiocsti").read_text().strip() != "1":
        pytest.skip("this kernel refuses TIOCSTI to unprivileged processes (dev.tty.legacy_tiocsti=0)")
    # The injector on the operator's terminal, as a workload ran before: what it types waits for the shell.
    # (This is what shows the test can fail.)
    control = terminal.start(["/usr/bin/python3", "-c", INJECT], user=65534, group=65534, extra_groups=[])
    assert terminal.wait(control) == 0
    assert terminal.pending_input() == b"id\n" * 4

    operator = Terminal()
    try:
        output = tmp_path / "inject.trace.json"
        profiler = operator.profiler(
            "record", "-o", str(output), "--user", "nobody", "--", "/usr/bin/python3", "-c", INJECT
        )
        assert operator.wait(profiler) == 0, operator.screen
        assert b"injector done" in operator.screen
        assert operator.pending_input() == b""
    finally:
        operator.close()
    assert trace_module.load(output).run.user == "nobody"


def test_keys_output_window_size_and_exit_status_pass_through(terminal: Terminal, tmp_path: Path) -> None:
    before = termios.tcgetattr(terminal.slave)
    terminal.resize(33, 101)
    script = (
        'stty size; [ -t 0 ] && echo "stdin is a terminal: $(tty)"; '
        "echo session $(cut -d' ' -f6 /proc/$$/stat) of $$; "
        'echo ready; read line; echo "got $line"; exit 3'
    )
    output = tmp_path / "interactive.trace.json"
    profiler = terminal.profiler("record", "-o", str(output), "--user", "nobody", "--", "sh", "-c", script)
    screen = terminal.read_until(b"ready")
    assert b"33 101" in screen
    own_terminal = os.ttyname(terminal.slave).encode()
    assert b"stdin is a terminal: /dev/pts/" in screen and b"stdin is a terminal: " + own_terminal not in screen
    session = screen.split(b"session ")[1].split(b"\r\n")[0].split(b" of ")
    assert session[0] == session[1], "the command leads a session of its own"
    terminal.type(b"hello\r")  # Enter sends a carriage return, which the command's terminal makes a newline
    assert terminal.wait(profiler) == 3
    assert b"hello\r\n" in terminal.screen, "typed keys are echoed by the command's terminal"
    assert b"got hello\r\n" in terminal.screen
    assert termios.tcgetattr(terminal.slave) == before, "the operator's terminal has its settings back"
    assert trace_module.load(output).run.exit_status == 3


def test_a_resize_reaches_the_command_and_ctrl_c_ends_it(terminal: Terminal, tmp_path: Path) -> None:
    output = tmp_path / "resized.trace.json"
    script = "trap 'stty size' WINCH; echo ready; while :; do sleep 0.1; done"
    profiler = terminal.profiler("record", "-o", str(output), "--", "sh", "-c", script)
    terminal.read_until(b"ready")
    terminal.resize(40, 120)  # the operator's terminal sends profiler SIGWINCH; profiler resizes the command's
    terminal.read_until(b"40 120")
    terminal.type(b"\x03")
    assert terminal.wait(profiler) == 128 + signal.SIGINT
    trace = trace_module.load(output)
    assert trace.run.end_reason is EndReason.INTERRUPTED
    assert trace.run.exit_status == 128 + signal.SIGINT
    assert trace.processes[0].exit_signal == "SIGINT"


def test_ctrl_c_to_a_command_that_ignores_it_ends_the_recording_within_the_grace_period(
    terminal: Terminal, tmp_path: Path
) -> None:
    output = tmp_path / "ignores.trace.json"
    profiler = terminal.profiler("record", "-o", str(output), "--", "sh", "-c", "trap '' INT; echo ready; sleep 60")
    terminal.read_until(b"ready")
    terminal.type(b"\x03")
    # The command goes on; a second later its tree is killed, as the README says.
    assert terminal.wait(profiler, timeout_s=20) == 128 + signal.SIGKILL
    trace = trace_module.load(output)
    assert trace.run.end_reason is EndReason.INTERRUPTED and trace.run.duration_s < 10
    assert [p.exit_signal for p in trace.processes] == ["SIGKILL", "SIGKILL"]


def test_without_a_terminal_the_command_still_has_a_session_of_its_own(tmp_path: Path) -> None:
    script = "import os; print(os.getsid(0) == os.getpid(), os.isatty(0))"
    result = profiler_cli("record", "-o", str(tmp_path / "t.json"), "--", sys.executable, "-c", script)
    assert result.stdout == "True False\n", result.stderr


def test_ctrl_z_suspends_profiler_with_the_command_and_fg_resumes_both(terminal: Terminal, tmp_path: Path) -> None:
    """As sudo does: the operator's shell gets its terminal back while the command is stopped."""
    # Each prompt says the last status and how many prompts came before it: the fourth follows the fg. Keys
    # typed before it would go to the command's terminal, which profiler still relays until it has finished.
    prompt = {"PS1": "$ ", "PROMPT_COMMAND": 'echo "prompt $? $((++prompts))"'}
    shell = terminal.start(["bash", "--norc", "--noprofile", "-i"], env={**os.environ, **prompt})
    output = tmp_path / "suspended.trace.json"
    script = "echo $((6 * 7)) ready; read line; echo got $line"  # not what the shell echoes of the command line
    command = shlex.join([*PROFILER, "record", "-o", str(output), "--", "sh", "-c", script])
    terminal.type(command.encode() + b"\r")
    terminal.read_until(b"42 ready")
    terminal.type(b"\x1a")
    terminal.read_until(b"Stopped")
    terminal.type(b"echo the shell runs\r")
    terminal.read_until(b"the shell runs\r\n")
    terminal.type(b"fg\r")
    time.sleep(0.5)  # the command's terminal takes keys again once profiler is continued
    terminal.type(b"hello\r")
    terminal.read_until(b"got hello")
    terminal.read_until(b"prompt 0 4")  # the job ended with status 0, and the shell has its terminal back
    terminal.type(b"exit\r")
    assert terminal.wait(shell) == 0
    assert trace_module.load(output).run.end_reason is EndReason.EXITED
