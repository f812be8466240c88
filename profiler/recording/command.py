"""The launched command: its own session, its own terminal where profiler has one, its own cgroup where there is one."""

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from profiler.errors import WorkloadError
from profiler.recording.targets import CommandTarget
from profiler.recording.terminal_relay import ChildTerminal, TerminalRelay
from profiler.recording.tracer_interface import SessionTracer
from profiler.recording.workload_cgroup import WorkloadCgroup

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class Child(Protocol):
    """The process profiler started, as subprocess.Popen gives it: its status once it has ended (negative: the
    signal that ended it), killed, waited for."""

    pid: int  # the process group the command's signals go to, where it has no terminal

    def poll(self) -> int | None: ...
    def kill(self) -> None: ...
    def wait(self) -> int: ...


# Starts the command's first process in its own session, on the terminal given, with the environment given,
# in place of the plain fork and exec: `run --audit` starts it in its namespaces, under its user. The tracer
# follows its tree from the first exec in it (the processes it forks before are not the workload).
Spawn = Callable[[ChildTerminal | None, dict[str, str]], Child]


class Command:
    """The launched command: in a session of its own, on a terminal of its own where profiler's streams are
    terminals, in a cgroup of its own where there is cgroup2. Its whole tree is signalled through the tracer,
    which knows every process of it; killed through the cgroup where there is one."""

    def __init__(
        self, target: CommandTarget, tracer: SessionTracer, cgroup: WorkloadCgroup | None, spawn: Spawn | None = None
    ):
        self.target, self.tracer, self.cgroup, self.spawn = target, tracer, cgroup, spawn
        self.relay = TerminalRelay.open()
        self.child: Child | None = None

    def start(self) -> None:
        target, user = self.target, self.target.user
        environment = dict(os.environ)
        if user is not None:
            environment.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
        terminal = self.relay.child_terminal(user.uid if user else None) if self.relay else None
        if self.spawn is not None:
            with self.tracer.spawning(), self._in_cgroup():
                self.child = self.spawn(terminal, environment)
            if self.relay is not None:
                self.relay.start()
            return

        def in_child() -> None:  # after setsid and the change of user, before exec
            if terminal is not None:
                terminal.take()
            # Without a cgroup, this is what ends the command (though not what it started) if profiler dies.
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        with self.tracer.spawning(), self._in_cgroup():
            try:
                self.child = subprocess.Popen(
                    target.argv,
                    executable=target.program,
                    env=environment,
                    user=user.uid if user else None,
                    group=user.gid if user else None,
                    extra_groups=list(user.groups) if user else None,
                    start_new_session=True,
                    stdin=terminal.stdin if terminal else None,
                    stdout=terminal.stdout if terminal else None,
                    stderr=terminal.stderr if terminal else None,
                    preexec_fn=in_child,
                )
            except OSError as error:
                raise WorkloadError(f"{target.argv[0]}: cannot run: {error.strerror}") from None
        if self.relay is not None:
            self.relay.start()

    @contextmanager
    def _in_cgroup(self) -> Iterator[None]:
        if self.cgroup is None:
            yield
            return
        with self.cgroup.joined() as joined:
            yield
        if not joined:
            self.cgroup = None  # the command is not in it: its tree is killed process by process

    def running(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def exit_status(self) -> int | None:
        """The command's status as a shell reports it, or None while it runs."""
        code = self.child.poll() if self.child is not None else None
        return None if code is None else code if code >= 0 else 128 - code

    def foreground_group(self) -> int | None:
        """The process group a Ctrl-C goes to: the foreground one of its terminal, else its own."""
        group = self.relay.foreground_group() if self.relay else None
        return group or (self.child.pid if self.child else None)

    def typed_suspends(self) -> int:
        return self.relay.suspends if self.relay else 0

    def suspend(self) -> None:
        assert self.relay is not None
        self.relay.suspend()

    def typed_interrupts(self) -> int:
        return self.relay.interrupts if self.relay else 0

    def resize(self) -> None:
        if self.relay is not None:
            self.relay.resize()

    def kill(self) -> bool:
        """SIGKILL to the whole tree at once, where a cgroup holds it; False where there is none."""
        if self.cgroup is None:
            return False
        self.cgroup.kill()
        return True

    def close(self) -> None:
        """Once the tree has ended (or on the way out of an error): reap, relay the last output, restore."""
        if self.child is not None and self.child.poll() is None:
            self.child.kill()  # only on an error: the session ends the tree first
            self.child.wait()
        if self.relay is not None:
            self.relay.close()
