"""Recording a run: start or attach to the workload, follow it with the tracer, and build its Trace."""

import ctypes
import datetime
import errno
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import FrameType

from profiler import __version__, abi, syscalls
from profiler.capability_paths import asks_about_initial_namespace, classify, clean_frames
from profiler.errors import WorkloadError
from profiler.recording.kernel_features import CapabilityProbe, KernelFeatures, probe
from profiler.recording.terminal_relay import TerminalRelay
from profiler.recording.tracer import (
    NO_ROW,
    NO_SYSCALL,
    NOAUDIT_UNKNOWN,
    EventKind,
    FirstUse,
    Observation,
    ObservationKind,
    ProcessEvent,
    RowCounts,
    TableSizes,
    Tracer,
)
from profiler.recording.workload_cgroup import WorkloadCgroup, cgroup2_mounts
from profiler.trace import (
    NAMESPACE_SYSCALLS,
    SOCKET_SYSCALLS,
    CapabilityCheck,
    DropCounters,
    EndReason,
    Image,
    KernelStack,
    NamespaceUse,
    Process,
    RecordingMode,
    RunInfo,
    SocketUse,
    SyscallUse,
    Trace,
)

# How long the recording goes on after Ctrl-C (to see the workload's own shutdown), and after --duration
# has sent SIGTERM to the command, before the command's whole tree is killed.
INTERRUPT_GRACE_S = 1.0
DURATION_GRACE_S = 5.0
KILL_WAIT_S = 5.0  # after SIGKILL, for the tree to be gone
POLL_MS = 100
LIVENESS_CHECK_S = 1.0
# Observations of an exited process are taken out of the kernel's table this long after its exit event (looked
# for at each liveness check): its last handlers on other CPUs ran microseconds after the event.
RECLAIM_AFTER_S = 0.5
STATUS_EVERY_S = 0.25


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def lookup(cls, spec: str) -> "User":
        """A user by name or numeric uid, as in /etc/passwd."""
        if not spec:
            # What an unset variable gives (--user "$SERVICE_USER"): running as root instead would be silent.
            raise WorkloadError("--user is empty (an unset variable?): give a user name or a numeric uid")
        try:
            entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
        except (KeyError, OverflowError):
            raise WorkloadError(f"unknown user {spec!r}: give a name from /etc/passwd or a numeric uid") from None
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)

    @classmethod
    def of_uid(cls, uid: int) -> "User":
        try:
            return cls.lookup(str(uid))
        except WorkloadError:
            return cls(str(uid), uid, uid, (), "/")


@dataclass(frozen=True, slots=True)
class CommandTarget:
    argv: tuple[str, ...]
    user: User | None = None
    program: str | None = None  # argv[0] resolved to a path; argv itself is passed on as given


@dataclass(frozen=True, slots=True)
class PidTarget:
    pid: int


@dataclass(frozen=True, slots=True)
class CgroupTarget:
    path: Path


Target = CommandTarget | PidTarget | CgroupTarget


@dataclass(frozen=True, slots=True)
class RecordOptions:
    component: str | None = None
    duration_s: float | None = None
    capability_probe: CapabilityProbe = CapabilityProbe.AUTO
    sizes: TableSizes = field(default_factory=TableSizes)


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows while recording."""

    elapsed_s: float
    processes: int
    running: int
    distinct_syscalls: int


@dataclass(frozen=True, slots=True)
class Recording:
    trace: Trace
    exit_status: int  # what profiler exits with: the command's status, or 128+signal when interrupted
    startup_s: float  # compiling and attaching the eBPF program


def resolve_program(argv: tuple[str, ...]) -> str:
    """The absolute path of the command's program, or a WorkloadError."""
    if not argv:
        raise WorkloadError("no command given: write it after --, as in: profiler record -- ls /")
    program = argv[0]
    found = program if "/" in program else shutil.which(program)
    if found is None or not os.path.isfile(found):
        raise WorkloadError(f"command not found: {program}; check the name or give its path")
    if not os.access(found, os.X_OK):
        raise WorkloadError(f"{found}: not executable; check its permissions")
    return os.path.abspath(found)


def resolve_cgroup(path: Path) -> Path:
    """A cgroup v2 directory, given absolute or relative to the cgroup2 mount."""
    mounts = [mount for _, mount in cgroup2_mounts()]
    candidates = [path] if path.is_absolute() else [mount / path for mount in mounts]
    for candidate in candidates:
        if (candidate / "cgroup.procs").is_file() and any(candidate.is_relative_to(m) for m in mounts):
            return candidate
    where = ", ".join(str(m) for m in mounts) or "nowhere (no cgroup2 mount)"
    raise WorkloadError(f"{path}: not a cgroup v2 directory; cgroup2 is mounted at {where}")


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, command name) of a running process, from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    return int(stat[stat.rindex(")") + 2 :].split()[1]), name


def _proc_command(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0")[:-1])


def _proc_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _proc_uid(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return os.getuid()


def _descendants(root: int) -> list[int]:
    """The running processes below root, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def _running_image(pid: int, native_abi: str) -> tuple[int | None, Image]:
    """(parent pid, image) of a running process, read from /proc."""
    stat = _proc_stat(pid)
    command = _proc_command(pid)
    path = _proc_exe(pid) or (command[0] if command else f"[{stat[1] if stat else 'exited'}]")
    return (stat[0] if stat else None), Image(path, command[0] if command else None, None, _elf_abi(path, native_abi))


def _elf_abi(path: str, native: str) -> str:
    """The syscall ABI of an executable: the compat ABI for a 32-bit ELF, else the native one."""
    try:
        with open(path, "rb") as program:
            header = program.read(5)
    except OSError:
        return native
    if header[:4] == b"\x7fELF" and header[4] == 1:
        return syscalls.COMPAT_ABIS.get(native, native)
    return native


def _wall_clock(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _ProcessState:
    serial: int
    pid: int
    parent_serial: int | None
    parent_pid: int | None
    start_ns: int | None
    attached: bool
    images: list[Image]
    row: int = NO_ROW
    exit_ns: int | None = None
    exit_code: int | None = None
    exit_signal: str | None = None


@dataclass
class _Collector:
    """Turns the tracer's events and tables into trace rows."""

    tracer: Tracer
    start_ns: int
    native_abi: str
    initial_user_ns: int | None  # the address of init_user_ns, where /proc/kallsyms shows data symbols
    processes: dict[int, _ProcessState] = field(default_factory=dict)
    # (serial, image): what its dense rows counted, kept compact (a 10,000-process run has 240,000 syscall rows).
    row_counts: dict[tuple[int, int], list[RowCounts]] = field(default_factory=dict)
    # (serial, image, nr): first use of a syscall counted in the observations table, outside the rows.
    overflow_first_ns: dict[tuple[int, int, int], int] = field(default_factory=dict)
    distinct_syscalls: set[int] = field(default_factory=set)
    live: dict[int, int] = field(default_factory=dict)  # serial: pid of processes not yet exited
    exited: deque[tuple[float, int]] = field(default_factory=deque)  # (when seen, serial), for reclaim_observations
    reclaimed: list[Observation] = field(default_factory=list)  # observations of exited processes, taken out
    peeked: set[int] = field(default_factory=set)  # syscalls counting in the rows of running processes
    peeked_at: float = -LIVENESS_CHECK_S
    # Processes marked for adoption, read from /proc when marked: by their first event they may be gone.
    adopted: dict[int, tuple[int | None, Image]] = field(default_factory=dict)

    def seconds(self, time_ns: int | None) -> float | None:
        return None if time_ns is None else round(max(time_ns - self.start_ns, 0) / 1e9, 6)

    def apply(self, event: ProcessEvent | FirstUse) -> None:
        if isinstance(event, FirstUse):
            key = (event.serial, event.image, event.nr)
            self.overflow_first_ns[key] = min(self.overflow_first_ns.get(key, event.time_ns), event.time_ns)
            self.distinct_syscalls.add(event.nr)
            return
        handler = {
            EventKind.FORK: self._fork,
            EventKind.EXEC: self._exec,
            EventKind.EXIT: self._exit,
            EventKind.ATTACH: self._attach,
        }[event.kind]
        handler(event)

    def _harvest(self, serial: int, image: int, row: int) -> None:
        if row == NO_ROW:
            return
        counts = self.tracer.harvest(row)
        self.row_counts.setdefault((serial, image), []).append(counts)
        self.distinct_syscalls.update(counts.nrs)

    def _fork(self, event: ProcessEvent) -> None:
        parent = self.processes.get(event.parent_serial)
        inherited = (
            Image(
                parent.images[event.parent_image].path,
                parent.images[event.parent_image].argv0,
                None,
                parent.images[event.parent_image].abi,
            )
            if parent and event.parent_image < len(parent.images)
            else self._lost_image()
        )
        self.processes[event.serial] = _ProcessState(
            event.serial,
            event.pid,
            event.parent_serial,
            parent.pid if parent else None,
            event.time_ns,
            False,
            [inherited],
            event.row,
        )
        self.live[event.serial] = event.pid

    def _exec(self, event: ProcessEvent) -> None:
        image = Image(event.path, event.argv0 or None, self.seconds(event.time_ns), self._event_abi(event))
        if event.first_exec:
            self.processes[event.serial] = _ProcessState(
                event.serial, event.pid, None, os.getpid(), event.time_ns, False, [image], event.row
            )
            self.live[event.serial] = event.pid
            return
        self._harvest(event.serial, event.image - 1, event.released_row)
        process = self.processes.get(event.serial)
        if process is None:
            return
        while len(process.images) < event.image:
            process.images.append(self._lost_image())
        process.images.append(image)
        process.row = event.row

    def _exit(self, event: ProcessEvent) -> None:
        self._harvest(event.serial, event.image, event.released_row)
        self.live.pop(event.serial, None)
        self.exited.append((time.monotonic(), event.serial))
        process = self.processes.get(event.serial)
        if process is None:
            return
        process.row = NO_ROW
        process.exit_ns = event.time_ns
        if event.exit_signal:
            process.exit_signal = abi.signal_name(event.exit_signal)
        elif event.exit_code >= 0:
            process.exit_code = event.exit_code

    def _event_abi(self, event: ProcessEvent) -> str:
        if event.compat is None:  # no BTF: the ELF class of the program tells, while it can still be read
            return _elf_abi(f"/proc/{event.pid}/exe", self.native_abi)
        return syscalls.COMPAT_ABIS.get(self.native_abi, self.native_abi) if event.compat else self.native_abi

    def _attach(self, event: ProcessEvent) -> None:
        parent_pid, image = self.adopted.get(event.pid) or _running_image(event.pid, self.native_abi)
        image = image._replace(abi=self._event_abi(event))
        self.processes[event.serial] = _ProcessState(
            event.serial, event.pid, None, parent_pid, None, True, [image], event.row
        )
        self.live[event.serial] = event.pid

    def _lost_image(self) -> Image:
        return Image("[unknown: its event was lost]", None, None, self.native_abi)

    def forget_vanished(self) -> None:
        """Drop from the live set the processes that are gone though their exit event was lost."""
        for serial, pid in list(self.live.items()):
            if not os.path.exists(f"/proc/{pid}"):
                self.live.pop(serial)

    def status(self, elapsed_s: float) -> Status:
        """The status line's figures; the rows of running processes are peeked at once a second."""
        if elapsed_s >= self.peeked_at + LIVENESS_CHECK_S:
            self.peeked_at, self.peeked = elapsed_s, set()
            for serial in self.live:
                if process := self.processes.get(serial):
                    self.peeked.update(self.tracer.row_counts(process.row).nrs)
        return Status(elapsed_s, len(self.processes), len(self.live), len(self.distinct_syscalls | self.peeked))

    def reclaim(self, now: float) -> None:
        """Take the observations of processes that exited a while ago out of the kernel's table, so that a long
        recording of many short processes does not fill it; reclaim_observations says why a while."""
        ready = set()
        while self.exited and self.exited[0][0] <= now - RECLAIM_AFTER_S:
            ready.add(self.exited.popleft()[1])
        if ready:
            self.reclaimed += self.tracer.reclaim_observations(ready)

    def build(self, run: RunInfo, observations: list[Observation]) -> Trace:
        for process in self.processes.values():
            self._harvest(process.serial, len(process.images) - 1, process.row)
        self._add_silent_adopted()
        known = [o for o in self.reclaimed + observations if o.serial in self.processes]
        for observation in known:
            process = self.processes[observation.serial]
            while len(process.images) <= observation.image:
                process.images.append(self._lost_image())
        ids = {serial: index for index, serial in enumerate(sorted(self.processes), start=1)}
        # An attached process may have been adopted before its parent was: link them by pid now.
        attached = {p.pid: p.serial for p in self.processes.values() if p.attached}
        for process in self.processes.values():
            if process.attached and process.parent_serial is None and process.parent_pid in attached:
                process.parent_serial = attached[process.parent_pid]
        checks, stacks = self._checks(ids, known)
        return Trace(
            run=run,
            processes=tuple(self._process(ids, process) for _, process in sorted(self.processes.items())),
            syscalls=self._syscalls(ids, known),
            capability_checks=checks,
            kernel_stacks=stacks,
            sockets=self._sockets(ids, known),
            namespaces=self._namespaces(ids, known),
        )

    def _add_silent_adopted(self) -> None:
        """Processes found running at the attach that made no syscall while recorded (a child asleep all along):
        the kernel side never saw them, but they are part of the tree. Their serials follow the kernel's."""
        seen = {process.pid for process in self.processes.values() if process.attached}
        serial = max(self.processes, default=0)
        for pid, (parent_pid, image) in sorted(self.adopted.items()):
            if pid not in seen:
                serial += 1
                self.processes[serial] = _ProcessState(serial, pid, None, parent_pid, None, True, [image])

    def _process(self, ids: dict[int, int], p: _ProcessState) -> Process:
        return Process(
            id=ids[p.serial],
            pid=p.pid,
            parent=ids.get(p.parent_serial) if p.parent_serial is not None else None,
            parent_pid=p.parent_pid,
            start_s=self.seconds(p.start_ns),
            exit_s=self.seconds(p.exit_ns),
            exit_code=p.exit_code,
            exit_signal=p.exit_signal,
            attached=p.attached,
            images=tuple(p.images),
        )

    def _abi(self, serial: int, image: int) -> str:
        return self.processes[serial].images[image].abi

    def _syscall_name(self, serial: int, image: int, nr: int) -> tuple[str | None, str | None]:
        return syscalls.image_syscall_name(self._abi(serial, image), nr)

    def _syscalls(self, ids: dict[int, int], observations: list[Observation]) -> tuple[SyscallUse, ...]:
        """The rows in trace order, image by image: a 10,000-process run has 240,000 of them, so no sorting."""
        overflow: dict[tuple[int, int], dict[int, int]] = {}  # (serial, image): nr: count outside the rows
        for o in observations:
            if o.kind is ObservationKind.SYSCALL:
                counted = overflow.setdefault((o.serial, o.image), {})
                counted[o.syscall_nr] = counted.get(o.syscall_nr, 0) + o.count
        rows = []
        # Ids follow serials, so (serial, image) order is the trace's (process, image) order.
        for serial, image in sorted(self.row_counts.keys() | overflow.keys()):
            if serial not in ids:
                continue
            uses: dict[int, tuple[int, int | None]] = {}  # nr: (count, first use)
            for harvest in self.row_counts.get((serial, image), ()):
                for nr, count, row_first in zip(harvest.nrs, harvest.counts, harvest.first_ns, strict=True):
                    earlier = uses.get(nr)
                    uses[nr] = (
                        (count, row_first)
                        if earlier is None
                        else (earlier[0] + count, min(earlier[1] or row_first, row_first))
                    )
            for nr, count in overflow.get((serial, image), {}).items():
                earlier = uses.get(nr)
                overflow_first = self.overflow_first_ns.get((serial, image, nr))
                uses[nr] = (count, overflow_first) if earlier is None else (earlier[0] + count, earlier[1])
            for nr in sorted(uses):
                count, first_use = uses[nr]
                name, unresolved = self._syscall_name(serial, image, nr)
                rows.append(SyscallUse(ids[serial], image, nr, name, unresolved, count, self.seconds(first_use)))
        return tuple(rows)

    def _checks(
        self, ids: dict[int, int], observations: list[Observation]
    ) -> tuple[tuple[CapabilityCheck, ...], tuple[KernelStack, ...]]:
        checks = [o for o in observations if o.kind is ObservationKind.CAPABILITY]
        # Kernel stack ids that differ only in offsets share their cleaned frames, and merge.
        frames_of = {
            stack: clean_frames(self.tracer.stack_symbols(stack)) for stack in {o.c for o in checks if o.c >= 0}
        }
        numbers = {frames: number for number, frames in enumerate(sorted(set(frames_of.values())), start=1)}
        initial_ns = self.initial_user_ns or next(
            (o.d for o in checks if o.c >= 0 and asks_about_initial_namespace(frames_of[o.c])), None
        )
        merged: dict[tuple[int, int, int, bool, int, tuple[str, ...] | None, int, bool, int], int] = {}
        for o in checks:
            key = (
                o.serial,
                o.image,
                o.a,
                o.b == 0,
                o.syscall_nr,
                frames_of.get(o.c),
                min(o.c, 0),
                # Where the address of init_user_ns is unknown, a check counts as against it: the safe side.
                initial_ns is None or o.d == initial_ns,
                o.e,
            )
            merged[key] = merged.get(key, 0) + o.count
        rows = []
        for (serial, image, cap, granted, nr, frames, error, initial, noaudit), count in merged.items():
            in_syscall = nr != NO_SYSCALL
            rows.append(
                CapabilityCheck(
                    process=ids[serial],
                    image=image,
                    capability=abi.capability_name(cap),
                    cap=cap,
                    granted=granted,
                    classification=classify(granted, frames, None if noaudit == NOAUDIT_UNKNOWN else bool(noaudit)),
                    syscall=self._syscall_name(serial, image, nr)[0] if in_syscall else None,
                    syscall_nr=nr if in_syscall else None,
                    initial_user_ns=initial,
                    stack=numbers[frames] if frames is not None else None,
                    stack_error=None if frames is not None else _stack_error(error),
                    count=count,
                )
            )
        rows.sort(key=lambda r: (r.process, r.image, r.cap, not r.granted, r.syscall_nr or -1, r.stack or 0))
        return tuple(rows), tuple(KernelStack(number, frames) for frames, number in numbers.items())

    def _sockets(self, ids: dict[int, int], observations: list[Observation]) -> tuple[SocketUse, ...]:
        rows = []
        for o in observations:
            if o.kind is not ObservationKind.SOCKET:
                continue
            name = self._syscall_name(o.serial, o.image, o.syscall_nr)[0]
            syscall = next((known for known in SOCKET_SYSCALLS if known == name), SOCKET_SYSCALLS[0])
            rows.append(
                SocketUse(
                    ids[o.serial],
                    o.image,
                    syscall,
                    abi.address_family_name(o.a),
                    o.a,
                    abi.socket_type_names(o.b),
                    o.b,
                    o.c,
                    o.count,
                )
            )
        return tuple(sorted(rows, key=lambda r: (r.process, r.image, r.syscall, r.family_nr, r.type_nr, r.protocol)))

    def _namespaces(self, ids: dict[int, int], observations: list[Observation]) -> tuple[NamespaceUse, ...]:
        rows = []
        for o in observations:
            if o.kind is not ObservationKind.NAMESPACE:
                continue
            name = self._syscall_name(o.serial, o.image, o.syscall_nr)[0] if o.syscall_nr != NO_SYSCALL else None
            # Clone flags come from task_newtask, which fires for fork and vfork too: call those clone.
            syscall = next((known for known in NAMESPACE_SYSCALLS if known == name), NAMESPACE_SYSCALLS[0])
            rows.append(NamespaceUse(ids[o.serial], o.image, syscall, abi.namespace_flag_names(o.a), o.a, o.count))
        return tuple(sorted(rows, key=lambda r: (r.process, r.image, r.syscall, r.flags_nr)))


def _stack_error(error: int) -> str:
    """Why bpf_get_stackid gave no stack, from its negative errno."""
    reasons = {
        errno.EFAULT: "the kernel could not walk this stack",
        errno.ENOMEM: "the kernel stack table was full",
        errno.EEXIST: "another stack took its slot in the kernel stack table",
    }
    return f"{reasons.get(-error, os.strerror(-error))} ({errno.errorcode.get(-error, str(error))})"


class Delivery(Enum):
    """Where a signal that ends the recording is passed on in the command's tree."""

    NONE = "none"  # the command's terminal delivered it already (Ctrl-C typed into the relay)
    FOREGROUND = "foreground"  # to the foreground process group, as a terminal sends Ctrl-C
    TREE = "tree"  # to every process of the tree, as systemd stops a service


class _Stop:
    """Why and when the recording ends, set from signal handlers and the loop, which acts on it."""

    def __init__(self) -> None:
        self.reason: EndReason | None = None
        self.signal: int | None = None  # the signal that ended it, in attach modes profiler's exit status
        self.deadline: float | None = None  # the grace period's end: the command's tree is killed, recording ends
        self.pending: tuple[int, Delivery] | None = None  # a signal the loop has still to pass on

    def request(
        self,
        reason: EndReason,
        grace_s: float,
        signal_number: int | None = None,
        deliver: tuple[int, Delivery] | None = None,
    ) -> None:
        now = time.monotonic()
        if self.reason is not None:
            if signal_number is not None:
                self.deadline = now  # a second Ctrl-C, or any signal while stopping: stop at once
            return
        self.reason, self.signal, self.pending = reason, signal_number, deliver
        self.deadline = now + grace_s


@contextmanager
def _signals_stop(stop: _Stop, on_resize: Callable[[], None] | None) -> Iterator[None]:
    def handler(number: int, _frame: FrameType | None) -> None:
        # Ctrl-C on profiler's terminal (or kill -INT) is passed on as the terminal would; a termination
        # request goes to every process, which it is meant to end.
        delivery = Delivery.FOREGROUND if number == signal.SIGINT else Delivery.TREE
        stop.request(EndReason.INTERRUPTED, INTERRUPT_GRACE_S, number, (number, delivery))

    handlers: dict[int, Callable[[int, FrameType | None], None]] = {
        number: handler for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    if on_resize is not None:
        handlers[signal.SIGWINCH] = lambda _number, _frame: on_resize()
    previous = {number: signal.signal(number, action) for number, action in handlers.items()}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _default_component(target: Target) -> str:
    if isinstance(target, CommandTarget):
        return Path(target.argv[0]).name
    if isinstance(target, PidTarget):
        stat = _proc_stat(target.pid)
        return stat[1] if stat else str(target.pid)
    return target.path.name


def record(
    target: Target,
    options: RecordOptions = RecordOptions(),
    on_status: Callable[[Status], None] | None = None,
) -> Recording:
    """Record a run of the target until it ends, --duration passes, or the user interrupts."""
    if isinstance(target, CommandTarget):
        target = CommandTarget(target.argv, target.user, resolve_program(target.argv))
    elif isinstance(target, PidTarget) and not Path(f"/proc/{target.pid}").is_dir():
        raise WorkloadError(f"no process with pid {target.pid}; check it with ps")
    elif isinstance(target, PidTarget) and target.pid == os.getpid():
        raise WorkloadError("profiler cannot record itself; give the pid of another process")
    elif isinstance(target, CgroupTarget):
        target = CgroupTarget(resolve_cgroup(target.path))
    features = probe(options.capability_probe)
    # The command's cgroup and its watchdog come first, so that the watchdog holds none of the tracer's files.
    contained = WorkloadCgroup.create() if isinstance(target, CommandTarget) else None
    try:
        cgroup = target.path if isinstance(target, CgroupTarget) else None
        with Tracer(features, cgroup=cgroup, sizes=options.sizes) as tracer:
            command = _Command(target, tracer, contained) if isinstance(target, CommandTarget) else None
            return _Session(tracer, features, target, options, on_status, command).run()
    finally:
        if contained is not None:
            contained.close()


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class _Command:
    """The launched command: in a session of its own, on a terminal of its own where profiler's streams are
    terminals, in a cgroup of its own where there is cgroup2. Its whole tree is signalled through the tracer,
    which knows every process of it; killed through the cgroup where there is one."""

    def __init__(self, target: CommandTarget, tracer: Tracer, cgroup: WorkloadCgroup | None):
        self.target, self.tracer, self.cgroup = target, tracer, cgroup
        self.relay = TerminalRelay.open()
        self.child: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        target, user = self.target, self.target.user
        environment = dict(os.environ)
        if user is not None:
            environment.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
        terminal = self.relay.child_terminal(user.uid if user else None) if self.relay else None

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


class _Session:
    def __init__(
        self,
        tracer: Tracer,
        features: KernelFeatures,
        target: Target,
        options: RecordOptions,
        on_status: Callable[[Status], None] | None,
        command: _Command | None,
    ):
        self.tracer, self.features, self.target, self.options = tracer, features, target, options
        self.on_status = on_status
        self.command = command
        self.stop = _Stop()
        self.killed_at: float | None = None  # when the command's tree was sent SIGKILL
        self.interrupts_seen = 0
        self.suspends_seen = 0
        self.collector = _Collector(tracer, time.monotonic_ns(), syscalls.native_abi(), features.init_user_ns)

    def run(self) -> Recording:
        started_wall, started = time.time(), time.monotonic()
        command = self.command
        with _signals_stop(self.stop, command.resize if command else None):
            try:
                self._start()
                next_liveness = started + LIVENESS_CHECK_S
                next_status = started
                while True:
                    self._apply(self.tracer.poll(POLL_MS))
                    now = time.monotonic()
                    if self.on_status and now >= next_status:
                        self.on_status(self.collector.status(now - started))
                        next_status = now + STATUS_EVERY_S
                    if now >= next_liveness:
                        self.collector.forget_vanished()
                        self.collector.reclaim(now)
                        next_liveness = now + LIVENESS_CHECK_S
                    if self._finished(now, started):
                        break
                # Attached processes go on running. Read the tables first, then drain: every image they name
                # has its exec event in the ring buffer by then, so none is left unnamed.
                observations = self.tracer.observations()
                self._apply(self._drain())
            finally:
                if command is not None:
                    command.close()
        ended_wall = time.time()
        exit_status = self._exit_status()
        run = self._run_info(started_wall, ended_wall, exit_status)
        trace = self.collector.build(run, observations)
        return Recording(trace, exit_status, self.tracer.startup_s)

    def _apply(self, events: Iterable[ProcessEvent | FirstUse]) -> None:
        for event in events:
            self.collector.apply(event)

    def _drain(self) -> Iterator[ProcessEvent | FirstUse]:
        while events := self.tracer.poll(0):
            yield from events

    def _start(self) -> None:
        target = self.target
        if self.command is not None:
            self.command.start()
        elif isinstance(target, CgroupTarget):
            # Processes joining later are adopted by the kernel at their first event; these are read now,
            # while they still run, so that a process that only exits is still named.
            for procs in sorted(target.path.rglob("cgroup.procs")):
                for pid in procs.read_text().split():
                    if int(pid) != os.getpid():
                        self._adopt(int(pid))
        elif isinstance(target, PidTarget):
            # Marking a process before listing its children means a child forked meanwhile is followed
            # by the kernel, or found by the next listing: none escapes.
            self._adopt(target.pid)
            pending = [target.pid]
            while pending:
                parent = pending.pop()
                for child in _descendants(parent):
                    if child != os.getpid() and self._adopt(child):
                        pending.append(child)

    def _adopt(self, pid: int) -> bool:
        if self.tracer.adopt(pid):
            self.collector.adopted[pid] = _running_image(pid, self.collector.native_abi)
            return True
        return False

    def _finished(self, now: float, started: float) -> bool:
        stop, command = self.stop, self.command
        duration = self.options.duration_s
        if command is not None and command.typed_interrupts() > self.interrupts_seen:
            self.interrupts_seen = command.typed_interrupts()
            stop.request(EndReason.INTERRUPTED, INTERRUPT_GRACE_S, signal.SIGINT, (signal.SIGINT, Delivery.NONE))
        if stop.reason is None and duration is not None and now - started >= duration:
            # A command is asked to stop and recorded while it shuts down; an attached one is left running.
            grace = DURATION_GRACE_S if command is not None else 0
            stop.request(EndReason.DURATION, grace, deliver=(signal.SIGTERM, Delivery.TREE))
        if command is None:
            if stop.deadline is not None and now >= stop.deadline:
                return True
            if isinstance(self.target, PidTarget):
                adopted = self.collector.adopted
                return not self.collector.live and not any(os.path.exists(f"/proc/{pid}") for pid in adopted)
            return False  # a cgroup is recorded until --duration or Ctrl-C
        if command.typed_suspends() > self.suspends_seen:
            self.suspends_seen = command.typed_suspends()
            self._suspend()
        if stop.pending is not None:
            self._pass_on(*stop.pending)
            stop.pending = None
        if stop.deadline is not None and now >= stop.deadline:
            self._kill_tree(now)
        if not command.running():
            # The command was reaped, so its events are all in the ring buffer: drain, then look.
            self._apply(self._drain())
            if not self.collector.live:
                return True
        # A process stuck in the kernel may not die even of SIGKILL: the recording ends without it.
        return self.killed_at is not None and now >= self.killed_at + KILL_WAIT_S

    def _suspend(self) -> None:
        """Ctrl-Z typed: the command's terminal cannot stop it (its process group has no parent in its session,
        so the kernel discards SIGTSTP), so profiler stops it (SIGSTOP, which no process can refuse) and itself,
        and continues both when the operator's shell does (fg), as job control would."""
        assert self.command is not None
        self._pass_on(signal.SIGSTOP, Delivery.FOREGROUND)
        self.command.suspend()
        self._pass_on(signal.SIGCONT, Delivery.FOREGROUND)

    def _pass_on(self, number: int, delivery: Delivery) -> None:
        """Send a signal to the command's processes that the tracer knows to be running."""
        assert self.command is not None
        if delivery is Delivery.NONE:
            return
        self._apply(self._drain())  # processes forked since the last poll are known
        group = self.command.foreground_group() if delivery is Delivery.FOREGROUND else None
        for serial, pid in list(self.collector.live.items()):
            with suppress(OSError):
                if group is None or os.getpgid(pid) == group:
                    self.tracer.signal_process(pid, serial, number)
        if number in (signal.SIGTERM, signal.SIGHUP):
            # As systemd does after its SIGTERM: a stopped process would not act on it until continued.
            self._pass_on(signal.SIGCONT, Delivery.TREE)

    def _kill_tree(self, now: float) -> None:
        """SIGKILL to the whole tree: at once through the cgroup, else to each process the tracer knows, again on
        every turn of the loop, until none is left (a fork between two rounds is caught by the next)."""
        assert self.command is not None
        if self.killed_at is None:
            self.killed_at = now
            if self.command.kill():
                return
        if self.command.cgroup is None:
            self._pass_on(signal.SIGKILL, Delivery.TREE)

    def _exit_status(self) -> int:
        if self.command is not None:
            status = self.command.exit_status()
            if status is not None:
                return status
        if self.stop.signal is not None:
            return 128 + self.stop.signal
        return 128 + signal.SIGKILL if self.killed_at is not None else 0

    def _run_info(self, started_wall: float, ended_wall: float, exit_status: int) -> RunInfo:
        target = self.target
        if isinstance(target, CommandTarget):
            user = target.user or User.of_uid(os.getuid())
            command, target_text = target.argv, None
        elif isinstance(target, PidTarget):
            user = User.of_uid(_proc_uid(target.pid))
            command, target_text = _proc_command(target.pid), str(target.pid)
        else:
            first = next(iter(self.collector.processes.values()), None)
            user = User.of_uid(_proc_uid(first.pid) if first else os.getuid())
            command, target_text = (), str(target.path)
        reason = self.stop.reason or EndReason.EXITED
        drops = self.tracer.drops()
        return RunInfo(
            tool_version=__version__,
            component=self.options.component or _default_component(target),
            hostname=socket.gethostname(),
            kernel_release=os.uname().release,
            architecture=self.features.architecture,
            abi=syscalls.native_abi(),
            libseccomp_version=syscalls.libseccomp_version(),
            mode={
                CommandTarget: RecordingMode.COMMAND,
                PidTarget: RecordingMode.PID,
                CgroupTarget: RecordingMode.CGROUP,
            }[type(target)],
            command=command,
            target=target_text,
            user=user.name,
            uid=user.uid,
            gid=user.gid,
            started_at=_wall_clock(started_wall),
            ended_at=_wall_clock(ended_wall),
            duration_s=round(ended_wall - started_wall, 3),
            end_reason=reason,
            exit_status=self.command.exit_status() if self.command else None,
            capability_source=self.features.capability_source,
            dropped=DropCounters(**drops),
        )


def default_trace_name(component: str, when: float | None = None) -> str:
    """component-YYYYmmdd-HHMMSS.trace.json, in local time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in component) or "trace"
    return f"{safe}-{stamp}.trace.json"


def print_status(status: Status) -> None:
    """The status line, rewritten in place on a terminal."""
    sys.stderr.write(
        f"\r\033[K[profiler] {status.elapsed_s:6.1f}s  processes {status.processes} "
        f"({status.running} running)  distinct syscalls {status.distinct_syscalls}"
    )
    sys.stderr.flush()
