"""A recording session: start or attach to the workload, follow it with the tracer until it ends, build its Trace."""

import datetime
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from types import FrameType

from profiler import __version__, syscalls
from profiler.errors import WorkloadError
from profiler.recording.collector import LIVENESS_CHECK_S, RECLAIM_EVERY_S, Collector, Status
from profiler.recording.command import Command, Spawn
from profiler.recording.kernel_features import CapabilityProbe, KernelFeatures, probe
from profiler.recording.targets import (
    CgroupTarget,
    CommandTarget,
    PidTarget,
    Target,
    User,
    default_component,
    descendants,
    proc_command,
    proc_uid,
    resolve_cgroup,
    resolve_program,
    running_image,
)
from profiler.recording.tracer import Event, TableSizes, Tracer
from profiler.recording.tracer_interface import SessionTracer
from profiler.recording.workload_cgroup import WorkloadCgroup
from profiler.trace import (
    DropCounters,
    EndReason,
    RecordingMode,
    RunInfo,
    Trace,
)

# How long the recording goes on after Ctrl-C (to see the workload's own shutdown), and after --duration
# has sent SIGTERM to the command, before the command's whole tree is killed.
INTERRUPT_GRACE_S = 1.0
DURATION_GRACE_S = 5.0
KILL_WAIT_S = 5.0  # after SIGKILL, for the tree to be gone
POLL_MS = 100
STATUS_EVERY_S = 0.25


@dataclass(frozen=True, slots=True)
class RecordOptions:
    component: str | None = None
    duration_s: float | None = None
    capability_probe: CapabilityProbe = CapabilityProbe.AUTO
    sizes: TableSizes = field(default_factory=TableSizes)
    paths: bool = True  # record file accesses and kernel uses (`record --no-paths`: not, at no cost)


@dataclass(frozen=True, slots=True)
class Recording:
    trace: Trace
    exit_status: int  # what profiler exits with: the command's status, or 128+signal when interrupted
    startup_s: float  # compiling and attaching the eBPF program
    # The process that goes on removing the tracepoints from the kernel after record returned (Tracer.close):
    # until it exits, every syscall of the host still takes the slow path. None where nothing is left to remove.
    detaching: int | None = None


def _wall_clock(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def record(
    target: Target,
    options: RecordOptions = RecordOptions(),
    on_status: Callable[[Status], None] | None = None,
    tracer: SessionTracer | None = None,
    spawn: Spawn | None = None,
) -> Recording:
    """Record a run of the target until it ends, --duration passes, or the user interrupts. tracer: one to record
    with instead of loading the recorder into the kernel (FakeTracer in tests), whose features stand for the
    kernel's. spawn: how a command target is started, where not by a plain fork and exec (command.Spawn)."""
    if isinstance(target, CommandTarget):
        target = CommandTarget(target.argv, target.user, resolve_program(target.argv))
    elif isinstance(target, PidTarget) and not Path(f"/proc/{target.pid}").is_dir():
        raise WorkloadError(f"no process with pid {target.pid}; check it with ps")
    elif isinstance(target, PidTarget) and target.pid == os.getpid():
        raise WorkloadError("profiler cannot record itself; give the pid of another process")
    elif isinstance(target, CgroupTarget):
        target = CgroupTarget(resolve_cgroup(target.path))
    features = probe(options.capability_probe) if tracer is None else tracer.features
    # The command's cgroup and its watchdog come first, so that the watchdog holds none of the tracer's files.
    contained = WorkloadCgroup.create() if isinstance(target, CommandTarget) else None
    try:
        cgroup = target.path if isinstance(target, CgroupTarget) else None
        loaded = tracer or Tracer(features, cgroup=cgroup, sizes=options.sizes, paths=options.paths)
        with loaded as opened:
            command = Command(target, opened, contained, spawn) if isinstance(target, CommandTarget) else None
            recording = _Session(opened, features, target, options, on_status, command).run()
        return replace(recording, detaching=loaded.detaching)
    finally:
        if contained is not None:
            contained.close()


class _Session:
    def __init__(
        self,
        tracer: SessionTracer,
        features: KernelFeatures,
        target: Target,
        options: RecordOptions,
        on_status: Callable[[Status], None] | None,
        command: Command | None,
    ):
        self.tracer, self.features, self.target, self.options = tracer, features, target, options
        self.on_status = on_status
        self.command = command
        self.stop = _Stop()
        self.killed_at: float | None = None  # when the command's tree was sent SIGKILL
        self.interrupts_seen = 0
        self.suspends_seen = 0
        self.collector = Collector(
            tracer, time.monotonic_ns(), syscalls.native_abi(), features.init_user_ns, tracer.paths
        )

    def run(self) -> Recording:
        started_wall, started = time.time(), time.monotonic()
        command = self.command
        with _signals_stop(self.stop, command.resize if command else None):
            try:
                self._start()
                next_liveness = started + LIVENESS_CHECK_S
                next_reclaim = started + RECLAIM_EVERY_S
                next_status = started
                while True:
                    self._apply(self.tracer.poll(POLL_MS))
                    now = time.monotonic()
                    if self.on_status and now >= next_status:
                        self.on_status(self.collector.status(now - started))
                        next_status = now + STATUS_EVERY_S
                    if now >= next_liveness:
                        self.collector.forget_vanished()
                        next_liveness = now + LIVENESS_CHECK_S
                    if now >= next_reclaim:
                        if self.collector.reclaim_due(now):
                            # The sights held back so far, so that they are summed per program too, not kept as
                            # bytes.
                            self._apply(self.tracer.held_back())
                            self.collector.reclaim(now)
                        next_reclaim = now + RECLAIM_EVERY_S
                    if self._finished(now, started):
                        break
                # Attached processes go on running. Read the tables first, then drain: every image they name
                # has its exec event in the ring buffer by then, so none is left unnamed.
                observations = self.tracer.observations()
                self._apply(self._drain())
                self._apply(self.tracer.held_back())
            finally:
                if command is not None:
                    command.close()
        ended_wall = time.time()
        exit_status = self._exit_status()
        run = self._run_info(started_wall, ended_wall, exit_status)
        trace = self.collector.build(run, observations)
        return Recording(trace, exit_status, self.tracer.startup_s)

    def _apply(self, events: Iterable[Event]) -> None:
        for event in events:
            self.collector.apply(event)

    def _drain(self) -> Iterator[Event]:
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
                for child in descendants(parent):
                    if child != os.getpid() and self._adopt(child):
                        pending.append(child)

    def _adopt(self, pid: int) -> bool:
        if self.tracer.adopt(pid):
            self.collector.adopted[pid] = running_image(pid, self.collector.native_abi)
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
            user = User.of_uid(proc_uid(target.pid))
            command, target_text = proc_command(target.pid), str(target.pid)
        else:
            first = next(iter(self.collector.processes.values()), None)
            user = User.of_uid(proc_uid(first.pid) if first else os.getuid())
            command, target_text = (), str(target.path)
        reason = self.stop.reason or EndReason.EXITED
        drops = self.tracer.drops()
        return RunInfo(
            tool_version=__version__,
            component=self.options.component or default_component(target),
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
