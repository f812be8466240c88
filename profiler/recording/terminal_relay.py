"""A pseudo-terminal of the recorded command's own, relayed to the operator's terminal, as sudo's use_pty does.

A command on the operator's terminal could type into it (TIOCSTI, where dev.tty.legacy_tiocsti=1) or take it
over with terminal ioctls, and run what it typed as the operator. Given a terminal of its own, in a session of
its own, it can only type into itself: profiler copies the operator's keys in and the command's output out.
The operator's terminal is in raw mode meanwhile, so that every key (Ctrl-C, Ctrl-D) reaches the command's
terminal, which acts on it with the settings the command chose; its settings and window size start as the
operator's, and a resize of the operator's window is passed on. The interrupt and suspend keys are counted as
they pass, for profiler to end the recording (Ctrl-C) or suspend the job (Ctrl-Z), as it would on its own.
"""

import contextlib
import fcntl
import os
import select
import signal
import struct
import termios
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# How long the relay waits for the last output once the command's processes have all closed the terminal.
DRAIN_S = 0.5
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class ChildTerminal:
    """What the command is started with: the terminal's other end in place of the standard streams that
    were terminals (None: the stream passes through as it is)."""

    stdin: int | None
    stdout: int | None
    stderr: int | None
    controlling: int  # the child's fd number (0, 1 or 2) to make its controlling terminal

    def take(self) -> None:
        """In the child, after setsid: make the terminal its controlling terminal, in the foreground."""
        fcntl.ioctl(self.controlling, termios.TIOCSCTTY, 0)


class TerminalRelay:
    """Use open(); start() once the command runs; close() when it has ended."""

    def __init__(self, operator: int, streams: tuple[bool, bool, bool]):
        self.operator = operator  # an fd on the operator's terminal
        self.streams = streams  # which of stdin, stdout, stderr were the operator's terminal
        # The interrupt (Ctrl-C) and suspend (Ctrl-Z) keys typed while the command's terminal makes them signals.
        self.interrupts = 0
        self.suspends = 0
        self._master, self._slave = os.openpty()
        os.set_blocking(self._master, False)
        self._saved: list[Any] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        with contextlib.suppress(termios.error):  # a terminal whose settings cannot be read: the pty's defaults
            termios.tcsetattr(self._slave, termios.TCSANOW, termios.tcgetattr(operator))
        self.resize()

    @classmethod
    def open(cls) -> "TerminalRelay | None":
        """A relay for profiler's standard streams, or None when none of them is a terminal."""
        streams = (os.isatty(0), os.isatty(1), os.isatty(2))
        if not any(streams):
            return None
        return cls(streams.index(True), streams)

    def child_terminal(self, owner: int | None) -> ChildTerminal:
        """The slave end for the command; owner (a uid) is given the terminal, as login programs do."""
        if owner is not None:
            os.fchown(self._slave, owner, -1)
        stdin, stdout, stderr = (self._slave if is_terminal else None for is_terminal in self.streams)
        return ChildTerminal(stdin, stdout, stderr, self.streams.index(True))

    def foreground_group(self) -> int | None:
        """The process group the command's terminal sends its signals to."""
        try:
            return os.tcgetpgrp(self._master)
        except OSError:
            return None

    def start(self) -> None:
        """Relay from now on; the command holds the slave end, profiler must not (its close ends the relay)."""
        os.close(self._slave)
        if self.streams[0] and _in_foreground(0):
            self._saved = termios.tcgetattr(0)
            self._raw()
        self._thread = threading.Thread(target=self._relay, name="terminal relay", daemon=True)
        self._thread.start()

    @property
    def relays_keys(self) -> bool:
        """Whether the operator's keys reach the command (profiler started in the foreground of its terminal)."""
        return self._saved is not None

    def suspend(self) -> None:
        """Stop profiler, as its shell's job, with the operator's terminal as it was; return once the shell
        continues it (fg)."""
        self._restore()
        os.kill(os.getpid(), signal.SIGTSTP)
        if self.relays_keys and _in_foreground(0):
            self._raw()
        self.resize()

    def resize(self) -> None:
        """Give the command's terminal the operator's window size (on SIGWINCH, and at the start)."""
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(self.operator, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)

    def close(self) -> None:
        """Relay the last output, then give the operator's terminal its settings back."""
        if self._thread is None:
            os.close(self._slave)  # never started: the command did not run
        else:
            self._stopping.set()
            self._thread.join()
        os.close(self._master)
        self._restore()

    def _raw(self) -> None:
        tty.setraw(0, termios.TCSADRAIN)

    def _restore(self) -> None:
        if self._saved is not None:
            with _ignoring(signal.SIGTTOU):  # restoring from the background, if profiler was put there
                termios.tcsetattr(0, termios.TCSADRAIN, self._saved)

    def _relay(self) -> None:
        output = 1 if self.streams[1] else 2 if self.streams[2] else self.operator
        relay_input = self.relays_keys
        pending = b""  # keys the command's terminal has not taken yet
        idle_since: float | None = None
        while True:
            readers = [self._master] + ([0] if relay_input else [])
            writers = [self._master] if pending else []
            timeout = 0.05 if self._stopping.is_set() else 0.2
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self._master in readable:
                try:
                    data = os.read(self._master, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every process of the command has closed the terminal
                    data = b""
                if not data:
                    return
                _write_all(output, data)
                idle_since = None
            elif self._stopping.is_set():
                # The command's processes have ended, and closing the terminal ends the reads (EIO) once their
                # output is relayed; a process that escaped the tree may still hold it, so not forever.
                now = time.monotonic()
                idle_since = idle_since or now
                if now - idle_since >= DRAIN_S:
                    return
            if 0 in readable:
                try:
                    keys = os.read(0, _CHUNK)
                except OSError:
                    keys = b""
                if not keys:
                    relay_input = False  # the operator's terminal hung up
                self._count_signal_keys(keys)
                pending += keys
            if self._master in writable and pending:
                try:
                    pending = pending[os.write(self._master, pending) :]
                except BlockingIOError:
                    pass
                except OSError:
                    pending = b""

    def _count_signal_keys(self, keys: bytes) -> None:
        try:
            settings = termios.tcgetattr(self._master)
        except termios.error:
            return
        if not settings[3] & termios.ISIG:
            return
        interrupt, suspend = settings[6][termios.VINTR], settings[6][termios.VSUSP]
        if isinstance(interrupt, bytes) and interrupt != b"\0":
            self.interrupts += keys.count(interrupt)
        if isinstance(suspend, bytes) and suspend != b"\0":
            self.suspends += keys.count(suspend)


def _in_foreground(fd: int) -> bool:
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data) :]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError:
            return  # the operator's terminal or pipe went away: the command's output has nowhere to go


@contextlib.contextmanager
def _ignoring(number: int) -> Iterator[None]:
    previous = signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(number, previous)
