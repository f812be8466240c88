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

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

from profiler import abi, syscalls
from profiler.enforcement import mounts, seccomp_filter
from profiler.enforcement.confinement import Account, Answer, Confinement
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
    pidfd_getfd,
    prctl,
    unshare,
)
from profiler.errors import EnforcementError
from profiler.terminal_relay import ChildTerminal, TerminalRelay

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
# include/uapi/linux/seccomp.h: struct seccomp_notif (80 bytes) and seccomp_notif_resp (24), their ioctls
_NOTIF = struct.Struct("=QIIiIQ6Q")
_NOTIF_RESP = struct.Struct("=QqiI")
_IOCTL_NOTIF_RECV = 0xC0502100
_IOCTL_NOTIF_SEND = 0xC0182101
_USER_NOTIF_FLAG_CONTINUE = 1
_LISTENER_LINK = "anon_inode:seccomp notify"
LISTENER_WAIT_S = 5.0
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_SET_UP_FAILED = 125


@dataclass(frozen=True, slots=True)
class Refusal:
    """Calls the seccomp filter refused, of one syscall by one program, answered alike."""

    syscall: str
    program: str
    answer: Answer
    count: int
    abi: str


@dataclass(frozen=True, slots=True)
class Enforced:
    exit_status: int  # the command's, as a shell reports it (128+N when signal N ended it)
    refusals: tuple[Refusal, ...]
    startup_s: float  # from the call to the exec of the command


@dataclass(frozen=True, slots=True)
class Command:
    argv: tuple[str, ...]
    program: str  # argv[0] resolved to a path
    environment: dict[str, str]
    working_directory: str


class _SetUpFailed(Exception):
    pass


class _Ended(Exception):
    """The command's process ended while its filter was loading: its status line says why."""


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


def _shell_status(wait_status: int) -> int:
    return os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 128 + os.WTERMSIG(wait_status)


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
        flags = _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | (_CLONE_NEWNET if confinement.private_network else 0)
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
        os._exit(_shell_status(wait_status))

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
                os._exit(_shell_status(wait_status))

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

    def run(self, relay: TerminalRelay | None) -> Enforced:
        started = time.perf_counter()
        holder = os.fork()
        if holder == 0:
            _in_child(self.status_write, self.holder)
        os.close(self.status_write)
        self.command_socket.close()
        supervision = _Supervision(self.confinement, holder)
        try:
            failure = supervision.until_exec(self.status_read, self.supervisor_socket)
            if failure is not None:
                supervision.kill()
                raise EnforcementError(f"cannot confine {self.command.argv[0]}: {failure}; it was not started")
            startup_s = time.perf_counter() - started
            if relay is not None:
                relay.start()
            with _passing_signals_to(holder, relay):
                exit_status = supervision.until_exit()
            return Enforced(exit_status, supervision.refusals(), startup_s)
        finally:
            supervision.close()
            os.close(self.status_read)
            self.supervisor_socket.close()


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


class _Supervision:
    """The supervisor's side: the holder's exit, the seccomp listener, the refusals answered."""

    def __init__(self, confinement: Confinement, holder: int):
        self.confinement, self.holder = confinement, holder
        self.holder_fd = os.pidfd_open(holder)
        self.listener: int | None = None
        self.counts: Counter[tuple[str, str, Answer, str]] = Counter()
        self.exit_status: int | None = None
        self.killed: set[int | None] = set()  # processes killed for a call, by pid
        self.command_pid: int | None = None  # the command's, once it has said so
        self.status = -1  # the status pipe, while the set-up runs
        self.message = b""
        self.exec_seen = False

    def until_exec(self, status: int, sock: socket.socket) -> str | None:
        """Serve the set-up until the command's exec (the status pipe closes); a step's failure, or None."""
        self.status = status
        while not self.exec_seen:
            watched = [status, sock.fileno()] + ([self.listener] if self.listener is not None else [])
            ready, _, _ = select.select(watched, [], [])
            if status in ready:
                self.read_status()
            elif sock.fileno() in ready:
                try:
                    self.take_listener(sock)
                except _Ended:
                    while not self.exec_seen:  # its last line, or the pipe closing as it exits
                        self.read_status()
                    if not self.message:
                        self.message = b"the command's process ended while its seccomp filter was loading"
            elif self.listener is not None and self.listener in ready:
                self.answer()
        text = self.message.decode(errors="replace").strip()
        return text or None

    def read_status(self) -> None:
        chunk = os.read(self.status, 4096)
        self.message += chunk
        self.exec_seen = self.exec_seen or not chunk

    def before_exec(self) -> bool:
        """Whether a notification just received came from the launcher: the exec closes the status pipe before
        the command's first call, so a pipe still open after the receipt means the call was made before it."""
        while not self.exec_seen and select.select([self.status], [], [], 0)[0]:
            self.read_status()
        return not self.exec_seen

    def take_listener(self, sock: socket.socket) -> None:
        data, ancillary, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(12))
        if data != b"loading":
            return
        pid = next(
            (struct.unpack("=iII", payload)[0] for level, kind, payload in ancillary if kind == socket.SCM_CREDENTIALS),
            None,
        )
        if pid is None:
            raise EnforcementError("the command's process did not say who it is")
        self.command_pid = pid
        target = os.pidfd_open(pid)
        try:
            deadline = time.monotonic() + LISTENER_WAIT_S
            while self.listener is None:
                number = _listener_number(pid)
                if number is not None:
                    self.listener = pidfd_getfd(target, number)
                elif time.monotonic() > deadline:
                    raise EnforcementError("the seccomp filter's listener did not appear")
                else:
                    time.sleep(0.0005)
        finally:
            os.close(target)
        sock.send(b"g")

    def answer(self) -> None:
        assert self.listener is not None
        buffer = bytearray(_NOTIF.size)
        try:
            fcntl.ioctl(self.listener, _IOCTL_NOTIF_RECV, buffer, True)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.EINTR):
                return  # the caller died, or was interrupted by a signal, before it was received
            raise
        notification_id, pid, _, number, audit_arch, _, *arguments = _NOTIF.unpack(buffer)
        if self.before_exec():
            response = _NOTIF_RESP.pack(notification_id, 0, 0, _USER_NOTIF_FLAG_CONTINUE)
        else:
            abi_name, name, refusal = self.refusal_of(audit_arch, number, arguments)
            self.counts[(name, _program(pid), refusal, abi_name)] += 1
            if refusal.errno is None:
                self.kill_caller(pid)
                return
            response = _NOTIF_RESP.pack(notification_id, 0, -getattr(errno, refusal.errno, errno.EPERM), 0)
        try:
            fcntl.ioctl(self.listener, _IOCTL_NOTIF_SEND, bytearray(response), True)
        except OSError as error:
            if error.errno != errno.ENOENT:  # the caller died meanwhile
                raise

    def refusal_of(self, audit_arch: int, number: int, arguments: Sequence[int]) -> tuple[str, str, Answer]:
        """The ABI and name of a refused call, and what refuses it."""
        rules = self.confinement.seccomp
        abi_name = seccomp_filter.abi_of_audit_arch(audit_arch)
        if abi_name is None or (rules.abis is not None and abi_name not in rules.abis):
            name = syscalls.image_syscall_name(abi_name, number)[0] if abi_name else None
            return abi_name or f"arch 0x{audit_arch:x}", name or f"syscall {number}", rules.abi_answer
        name = syscalls.image_syscall_name(abi_name, number)[0] or f"syscall {number}"
        multiplexed = syscalls.syscall_number(abi_name, "socketcall") is not None
        # The filter and the rules are made from one model; should they ever disagree, the call is refused.
        answer = rules.answer(name, arguments, multiplexed) or Answer("EPERM", "the seccomp filter")
        return abi_name, name, answer

    def kill_caller(self, tid: int) -> None:
        """What seccomp's KILL_PROCESS does: the caller's whole process dies before its call returns. Its pid
        cannot be reused meanwhile: the caller waits in the kernel for this answer."""
        self.killed.add(_thread_group(tid))
        with suppress(ProcessLookupError):
            os.kill(tid, signal.SIGKILL)  # a thread's id names its whole thread group to kill(2)

    def until_exit(self) -> int:
        while self.exit_status is None:
            watched = [self.holder_fd] + ([self.listener] if self.listener is not None else [])
            ready, _, _ = select.select(watched, [], [])
            if self.listener is not None and self.listener in ready:
                self.answer()
            if self.holder_fd in ready:
                _, wait_status = os.waitpid(self.holder, 0)
                self.exit_status = _shell_status(wait_status)
                if self.exit_status == 128 + signal.SIGKILL and self.command_pid in self.killed:
                    self.exit_status = 128 + signal.SIGSYS  # as the kernel's kill would have ended it
        return self.exit_status

    def refusals(self) -> tuple[Refusal, ...]:
        return tuple(
            Refusal(name, program, answer, count, abi_name)
            for (name, program, answer, abi_name), count in sorted(
                self.counts.items(), key=lambda item: (-item[1], item[0][0], item[0][1])
            )
        )

    def kill(self) -> None:
        if self.exit_status is None:
            signal.pidfd_send_signal(self.holder_fd, signal.SIGKILL)
            _, wait_status = os.waitpid(self.holder, 0)
            self.exit_status = _shell_status(wait_status)

    def close(self) -> None:
        self.kill()  # only on an error: the holder has been reaped otherwise
        os.close(self.holder_fd)
        if self.listener is not None:
            os.close(self.listener)


def _listener_number(pid: int) -> int | None:
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        raise _Ended from None
    for entry in entries:
        try:
            if os.readlink(f"/proc/{pid}/fd/{entry}") == _LISTENER_LINK:
                return int(entry)
        except OSError:
            continue
    return None


def _thread_group(tid: int) -> int | None:
    try:
        with open(f"/proc/{tid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("Tgid:")), None)
    except OSError:
        return None


def _program(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return f"pid {pid}"


def launch(confinement: Confinement, command: Command, relay: TerminalRelay | None = None) -> Enforced:
    """Run the command confined; EnforcementError (nothing started, or all of it killed) when a step fails."""
    filter_ = (
        seccomp_filter.build_filter(confinement.seccomp, confinement.no_new_privileges)
        if confinement.seccomp.filters
        else None
    )
    if confinement.private_network:
        import pyroute2  # noqa: F401 - imported before the fork, not in the namespace's holder

    account = confinement.account
    terminal = relay.child_terminal(account.uid if account else None) if relay is not None else None
    return _Launch(confinement, command, terminal, filter_).run(relay)


def refusal_lines(refusals: Sequence[Refusal]) -> list[str]:
    """refused: openat by /usr/bin/tar, 1x, EPERM from SystemCallFilter="""
    return [
        f"refused: {each.syscall} by {each.program}, {each.count}x, "
        f"{each.answer.errno or 'killed'} from {each.answer.setting}"
        + (f" ({each.abi} ABI)" if each.abi != syscalls.native_abi() else "")
        + (" (ENOSYS: a program takes it for an older kernel and falls back)" if each.answer.errno == "ENOSYS" else "")
        for each in refusals
    ]
