"""The supervisor's side of a launch: the seccomp listener taken from the command, each refused call received,
recorded and answered (with the policy's errno, or by killing the caller), and the holder's exit."""

import errno
import fcntl
import os
import select
import signal
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from profiler import syscalls
from profiler.enforcement import seccomp_filter
from profiler.enforcement.confinement import Answer, Confinement
from profiler.enforcement.kernel_calls import pidfd_getfd
from profiler.errors import EnforcementError

# include/uapi/linux/seccomp.h: struct seccomp_notif (80 bytes) and seccomp_notif_resp (24), their ioctls
_NOTIF = struct.Struct("=QIIiIQ6Q")
_NOTIF_RESP = struct.Struct("=QqiI")
_IOCTL_NOTIF_RECV = 0xC0502100
_IOCTL_NOTIF_SEND = 0xC0182101
_USER_NOTIF_FLAG_CONTINUE = 1
_LISTENER_LINK = "anon_inode:seccomp notify"
LISTENER_WAIT_S = 5.0
TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class Refusal:
    """Calls the seccomp filter refused, of one syscall by one program, answered alike."""

    syscall: str
    program: str
    answer: Answer
    count: int
    abi: str


class CommandEnded(Exception):
    """The command's process ended while its filter was loading: its status line says why."""


def shell_status(wait_status: int) -> int:
    return os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 128 + os.WTERMSIG(wait_status)


class Supervision:
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
                except CommandEnded:
                    while not self.exec_seen:  # its last line, or the pipe closing as it exits
                        self.read_status()
                    if not self.message:
                        self.message = b"the command's process ended while its seccomp filter was loading"
            elif self.listener is not None and self.listener in ready:
                self.answer()
        if self.command_pid is None and select.select([sock.fileno()], [], [], 0)[0]:
            self.take_listener(sock)  # said before an exec without a filter, read after it
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
        if data not in (b"loading", b"unfiltered"):
            return
        pid = next(
            (struct.unpack("=iII", payload)[0] for level, kind, payload in ancillary if kind == socket.SCM_CREDENTIALS),
            None,
        )
        if pid is None:
            raise EnforcementError("the command's process did not say who it is")
        self.command_pid = pid
        if data == b"unfiltered":
            return  # no filter, no listener to take
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

    def until_exit(self, tick: Callable[[], None] | None = None) -> int:
        """Answer refusals until the holder exits; tick: called every TICK_S meanwhile (job control)."""
        while self.exit_status is None:
            watched = [self.holder_fd] + ([self.listener] if self.listener is not None else [])
            ready, _, _ = select.select(watched, [], [], TICK_S if tick is not None else None)
            if tick is not None:
                tick()
            if self.listener is not None and self.listener in ready:
                self.answer()
            if self.holder_fd in ready:
                _, wait_status = os.waitpid(self.holder, 0)
                self.exit_status = shell_status(wait_status)
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
            self.exit_status = shell_status(wait_status)

    def leave_running(self) -> None:
        """Leave the holder, whose command has exec'd, running for its caller to wait for (an audit's recording):
        close() then kills nothing."""
        self.exit_status = -1

    def close(self) -> None:
        self.kill()  # only on an error: the holder has been reaped otherwise
        os.close(self.holder_fd)
        if self.listener is not None:
            os.close(self.listener)


def _listener_number(pid: int) -> int | None:
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        raise CommandEnded from None
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
