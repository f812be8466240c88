"""Starts a command under a Confinement and supervises it: every refusal the seccomp filter sends is answered
and recorded; the command's streams and exit status pass through.

    profiler (the supervisor)          answers seccomp notifications; signals go on to the holder
      └─ holder                        new mount, PID, IPC (and network) namespaces; the mounts; loopback
           └─ init (PID 1)             a fresh /proc; reaps, forwards signals; its exit ends the namespace
                └─ the command         session, terminal; bounding set, groups, user, capabilities,
                                       no_new_privs, seccomp; then exec

The order in the command is one it cannot undo: the bounding set is cut while still root (it needs
CAP_SETPCAP), the user is changed keeping only the ambient capabilities granted, and the seccomp filter comes
last, so that nothing after it but the exec runs. Every step is checked; the first that fails writes one line to
a close-on-exec pipe and exits, the supervisor kills the tree and raises EnforcementError: the command never
runs unconfined. The pipe closing without a line is the exec.
"""

import dataclasses
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from profiler import abi
from profiler.enforcement import mounts, seccomp_filter
from profiler.enforcement.confinement import Account, Confinement
from profiler.enforcement.kernel_calls import (
    PR_CAP_AMBIENT,
    PR_CAP_AMBIENT_CLEAR_ALL,
    PR_CAP_AMBIENT_RAISE,
    PR_CAPBSET_DROP,
    PR_SET_DUMPABLE,
    PR_SET_KEEPCAPS,
    PR_SET_NO_NEW_PRIVS,
    PR_SET_PDEATHSIG,
    capset,
    mount,
    permitted_capabilities,
    prctl,
    unshare,
)
from profiler.enforcement.refusals import (
    CapabilityRefusal,
    ConnectRefusal,
    PathRefusal,
    capability_refusals,
    connect_refusals,
    path_refusals,
)
from profiler.enforcement.supervisor import Refusal, Supervision, shell_status
from profiler.errors import EnforcementError, TracingError
from profiler.recording import kernel_features
from profiler.recording.refusal_watch import RefusalWatch
from profiler.recording.terminal_relay import ChildTerminal, TerminalRelay

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_SET_UP_FAILED = 125


@dataclass(frozen=True, slots=True)
class Enforced:
    exit_status: int  # the command's, as a shell reports it (128+N when signal N ended it)
    refusals: tuple[Refusal, ...]  # by the seccomp filter
    startup_s: float  # from the call to the exec of the command
    capability_refusals: tuple[CapabilityRefusal, ...] = ()
    path_refusals: tuple[PathRefusal, ...] = ()
    connect_refusals: tuple[ConnectRefusal, ...] = ()
    unwatched: str | None = None  # why capability and path refusals were not watched
    uncounted: int = 0  # refusals the watch saw and could not keep: its table was full


@dataclass(frozen=True, slots=True)
class Command:
    argv: tuple[str, ...]
    program: str  # argv[0] resolved to a path
    environment: dict[str, str]
    working_directory: str


class _SetUpFailed(Exception):
    pass


@contextmanager
def _step(name: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, RuntimeError, EnforcementError) as error:
        raise _SetUpFailed(f"{name}: {error}") from None


def _report_and_exit(status: int, message: str) -> NoReturn:
    try:
        os.write(status, message.encode(errors="replace")[:4000] + b"\n")
    finally:
        os._exit(_SET_UP_FAILED)


def _in_child(status: int, body: Callable[[], object]) -> NoReturn:
    """Run a child's part; whatever happens, the child ends here, never back in the caller's code."""
    try:
        body()
        message = "ended before exec"
    except _SetUpFailed as error:
        message = str(error)
    except BaseException as error:
        message = f"{type(error).__name__}: {error}"
    _report_and_exit(status, message)


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies; parent is its pid as this process sees it (0 for PID 1 of a namespace)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="PR_SET_PDEATHSIG")
    if os.getppid() != parent:  # the parent died before the prctl
        raise _SetUpFailed("the launcher's parent is gone")


def _forward_signals_to(pid: int) -> None:
    def forward(number: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.kill(pid, number)

    for number in _FORWARDED:
        signal.signal(number, forward)


class _Launch:
    def __init__(self, confinement: Confinement, command: Command, terminal: ChildTerminal | None, filter_: Any):
        self.confinement, self.command, self.terminal, self.filter = confinement, command, terminal, filter_
        self.status_read, self.status_write = os.pipe2(os.O_CLOEXEC)
        self.supervisor_socket, self.command_socket = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.supervisor_socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.supervisor = os.getpid()

    # --- the holder: namespaces and mounts -----------------------------------------------------------------------

    def holder(self) -> None:
        confinement = self.confinement
        with _step("parent-death signal"):
            _die_with_parent(self.supervisor)
        with _step("new session"):
            os.setsid()  # the operator's terminal signals reach profiler only, which passes them on
        names = (
            "CLONE_NEWNS",
            "CLONE_NEWPID",
            "CLONE_NEWIPC",
            *(("CLONE_NEWNET",) if confinement.private_network else ()),
        )
        flags = sum(bit for bit, name in abi.NAMESPACE_FLAGS.items() if name in names)
        with _step("unshare mount, PID, IPC" + (", network" if confinement.private_network else "") + " namespaces"):
            unshare(flags)
        if confinement.private_network:
            from profiler.enforcement.network import bring_up_loopback

            with _step("loopback in the private network"):
                bring_up_loopback()
        with _step("file-system settings"):
            mounts.apply(confinement.file_system)
        init = self.fork_into("the namespace's init", self.init)
        _, wait_status = os.waitpid(init, 0)
        os._exit(shell_status(wait_status))

    def fork_into(self, what: str, body: Callable[[], object]) -> int:
        """Fork a child that runs body; this process keeps no end of the pipes the command's exec must close,
        and passes its signals on to the child."""
        with _step(f"fork {what}"):
            child = os.fork()
        if child == 0:
            _in_child(self.status_write, body)
        os.close(self.status_write)
        self.command_socket.close()
        self.supervisor_socket.close()
        _forward_signals_to(child)
        return child

    # --- init: PID 1 of the new PID namespace --------------------------------------------------------------------

    def init(self) -> None:
        with _step("parent-death signal"):
            _die_with_parent(0)  # the holder is outside this PID namespace
        with _step("not dumpable"):
            # Root, with every capability, beside a confined command: nothing may read its memory or trace it.
            prctl(PR_SET_DUMPABLE, 0, what="PR_SET_DUMPABLE")
        with _step("mount /proc of the new PID namespace"):
            mount("proc", "/proc", "proc", 0x2 | 0x4 | 0x8)  # nosuid, nodev, noexec
        command = self.fork_into("the command", self.confine_and_exec)
        while True:  # PID 1 reaps every orphan of the namespace; the command's exit ends it
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                os._exit(0)
            if pid == command:
                os._exit(shell_status(wait_status))

    # --- the command ---------------------------------------------------------------------------------------------

    def confine_and_exec(self) -> None:
        confinement, command = self.confinement, self.command
        with _step("parent-death signal"):
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="PR_SET_PDEATHSIG")
        with _step("signals"):
            for number in _FORWARDED:
                signal.signal(number, signal.SIG_DFL)
        with _step("new session and terminal"):
            os.setsid()
            self.take_terminal()
        with _step("close inherited files"):
            keep = sorted({self.status_write, self.command_socket.fileno()})
            os.closerange(3, keep[0])
            for low, high in zip(keep, [*keep[1:], 65536], strict=True):
                os.closerange(low + 1, high)
        with _step("capability bounding set"):
            self.cut_bounding_set()
        account = confinement.account
        with _step("groups and user"):
            if account is not None:
                self.become(account)
        with _step("capabilities"):
            self.set_capabilities(account)
        with _step("working directory"):
            # Again, through the new mounts and as the user: the old one could reach past a read-only or
            # hidden mount.
            os.chdir(command.working_directory)
        if confinement.no_new_privileges:
            with _step("no_new_privs"):
                prctl(PR_SET_NO_NEW_PRIVS, 1, what="PR_SET_NO_NEW_PRIVS")
        if self.filter is not None:
            with _step("seccomp filter"):
                self.command_socket.sendmsg([b"loading"], [self.credentials()])
                self.filter.load()
                # Held until the supervisor has the listener: a refused call before then would wait forever.
                if os.read(self.command_socket.fileno(), 1) != b"g":
                    raise RuntimeError("the supervisor did not take the seccomp listener")
        else:
            with _step("say who the command is"):
                self.command_socket.sendmsg([b"unfiltered"], [self.credentials()])
        with _step(f"exec {command.program}"):
            os.execve(command.program, list(command.argv), command.environment)

    def credentials(self) -> tuple[int, int, bytes]:
        return (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("=iII", os.getpid(), os.getuid(), os.getgid()))

    def take_terminal(self) -> None:
        terminal = self.terminal
        if terminal is None:
            return
        for target, fd in enumerate((terminal.stdin, terminal.stdout, terminal.stderr)):
            if fd is not None:
                os.dup2(fd, target)
        terminal.take()

    def cut_bounding_set(self) -> None:
        kept = self.confinement.capabilities.bounding
        with open("/proc/sys/kernel/cap_last_cap") as file:
            last = int(file.read())
        for number in range(last + 1):
            name = abi.capability_name(number)
            if name is None or name not in kept:
                prctl(PR_CAPBSET_DROP, number, what=f"drop {name or number} from the bounding set")

    def become(self, account: Account) -> None:
        os.setgroups([])
        os.setresgid(account.gid, account.gid, account.gid)
        # Permitted capabilities survive the change of uid only with keepcaps; they are cut to the ambient
        # ones right after, and keepcaps ends with the exec.
        prctl(PR_SET_KEEPCAPS, 1, what="PR_SET_KEEPCAPS")
        os.setresuid(account.uid, account.uid, account.uid)
        if os.getresuid() != (account.uid,) * 3 or os.getresgid() != (account.gid,) * 3 or os.getgroups():
            raise RuntimeError("the user, group or groups did not change")

    def set_capabilities(self, account: Account | None) -> None:
        capabilities = self.confinement.capabilities
        ambient = _mask(capabilities.ambient & capabilities.bounding)
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, what="clear the ambient set")
        if account is not None and account.uid != 0:
            # A user holds what is ambient, and nothing else, from here to after the exec.
            capset(permitted=ambient, effective=ambient, inheritable=ambient)
        elif ambient:
            # Root keeps what it holds until the exec (the filter still needs CAP_SYS_ADMIN to load without
            # no_new_privs), which leaves it the bounding set.
            held = permitted_capabilities()
            capset(permitted=held, effective=held, inheritable=ambient)
        for number in _numbers(capabilities.ambient & capabilities.bounding):
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number, what=f"raise {abi.capability_name(number)}")

    # --- the supervisor ------------------------------------------------------------------------------------------

    @contextmanager
    def _until_exec(self, watch: RefusalWatch | None) -> Iterator[Supervision]:
        """Fork the holder and serve the set-up until the command's exec; EnforcementError when a step failed
        (nothing runs). On the way out the supervision is closed: what is left of the tree is killed, unless
        it was left running."""
        with watch.arming() if watch is not None else nullcontext():
            holder = os.fork()
            if holder == 0:
                _in_child(self.status_write, self.holder)
        os.close(self.status_write)
        self.command_socket.close()
        supervision = Supervision(self.confinement, holder)
        try:
            failure = supervision.until_exec(self.status_read, self.supervisor_socket)
            if failure is not None:
                raise EnforcementError(f"cannot confine {self.command.argv[0]}: {failure}; it was not started")
            yield supervision
        finally:
            supervision.close()
            os.close(self.status_read)
            self.supervisor_socket.close()

    def run(self, relay: TerminalRelay | None, watch: RefusalWatch | None, started: float) -> Enforced:
        with self._until_exec(watch) as supervision:
            startup_s = time.perf_counter() - started
            if relay is not None:
                relay.start()
            with _passing_signals_to(supervision.holder, relay):
                exit_status = supervision.until_exit(_JobControl(relay).check if relay is not None else None)
            refusals = supervision.refusals()
        if watch is None:
            return Enforced(exit_status, refusals, startup_s)
        return Enforced(
            exit_status,
            refusals,
            startup_s,
            capability_refusals(self.confinement, watch.denied_capabilities()),
            path_refusals(self.confinement, watch.failed_path_calls(), refusals),
            connect_refusals(self.confinement, watch.unreachable_connects()),
            None if watch.watches_capabilities else "capability checks: this kernel has no cap_capable tracepoint",
            watch.dropped(),
        )

    def start_unfiltered(self, watch: RefusalWatch | None) -> "Unfiltered":
        """Start the command with nothing to supervise (no seccomp filter), for a caller that follows it."""
        assert self.filter is None
        with self._until_exec(watch) as supervision:
            assert supervision.command_pid is not None
            supervision.leave_running()
            return Unfiltered(supervision.holder, supervision.command_pid)


class Unfiltered:
    """A command started without a filter, as subprocess.Popen gives one (recording.command.Child): the holder's
    status is the command's; pid is the command's own (its process group, a session of its own)."""

    def __init__(self, holder: int, command: int):
        self.holder, self.pid = holder, command
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, wait_status = os.waitpid(self.holder, os.WNOHANG)
            if pid:
                self.returncode = shell_status(wait_status)
        return self.returncode

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.holder, signal.SIGKILL)  # and so init, PID 1, and with it the whole namespace

    def wait(self) -> int:
        code = self.poll()
        if code is None:
            _, wait_status = os.waitpid(self.holder, 0)
            code = self.returncode = shell_status(wait_status)
        return code


class _JobControl:
    """Ctrl-Z on the command's terminal, acted on as a shell's job control would. The command's terminal cannot
    stop it: its process group has no parent in its session (init is outside it), so the kernel discards the
    terminal's SIGTSTP (an orphaned process group). As `record` does: the command's foreground group is stopped
    (SIGSTOP, which no process refuses), then profiler itself, giving the operator's shell its terminal back; when
    the shell continues profiler (fg), the group is continued."""

    def __init__(self, relay: TerminalRelay):
        self.relay, self.seen = relay, relay.suspends

    def check(self) -> None:
        if self.relay.suspends == self.seen:
            return
        self.seen = self.relay.suspends
        group = self.relay.foreground_group()  # in profiler's PID namespace, as tcgetpgrp(3) gives it
        if group is not None:
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGSTOP)
        self.relay.suspend()
        if group is not None:
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGCONT)


def _mask(names: frozenset[str]) -> int:
    return sum(1 << number for number in _numbers(names))


def _numbers(names: frozenset[str]) -> list[int]:
    return sorted(number for name in names if (number := abi.capability_number(name)) is not None)


@contextmanager
def _passing_signals_to(holder: int, relay: TerminalRelay | None) -> Iterator[None]:
    def forward(number: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.kill(holder, number)

    def resize(_number: int, _frame: FrameType | None) -> None:
        if relay is not None:
            relay.resize()

    saved = {number: signal.signal(number, forward) for number in _FORWARDED}
    saved[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def launch(
    confinement: Confinement, command: Command, relay: TerminalRelay | None = None, *, watch_refusals: bool = True
) -> Enforced:
    """Run the command confined; EnforcementError (nothing started, or all of it killed) when a step fails.
    watch_refusals: watch the capability checks and path calls the confinement refuses, through eBPF (where it
    cannot load, the run goes on without, and Enforced.unwatched says why)."""
    started = time.perf_counter()
    filter_ = (
        seccomp_filter.build_filter(confinement.seccomp, confinement.no_new_privileges)
        if confinement.seccomp.filters
        else None
    )
    if confinement.private_network:
        import pyroute2  # noqa: F401 - imported before the fork, not in the namespace's holder

    account = confinement.account
    terminal = relay.child_terminal(account.uid if account else None) if relay is not None else None
    watch, unwatched = load_watch() if watch_refusals else (None, None)
    try:
        enforced = _Launch(confinement, command, terminal, filter_).run(relay, watch, started)
    finally:
        if watch is not None:
            watch.close()
    return dataclasses.replace(enforced, unwatched=unwatched) if unwatched else enforced


def load_watch() -> tuple[RefusalWatch | None, str | None]:
    """The refusal watch, or why it cannot load here (no BCC, BPF not allowed): a run goes on without it."""
    try:
        return RefusalWatch(kernel_features.probe()), None
    except TracingError as error:
        return None, str(error)


def start_unfiltered(
    confinement: Confinement, command: Command, terminal: ChildTerminal | None, watch: RefusalWatch | None
) -> Unfiltered:
    """Start the command under a confinement without a seccomp filter, and return once it has exec'd: for a
    caller that follows it itself (run --audit records it). EnforcementError when a step fails."""
    if confinement.seccomp.filters:
        raise ValueError("a confinement with a seccomp filter needs its supervisor: launch() it")
    return _Launch(confinement, command, terminal, None).start_unfiltered(watch)
