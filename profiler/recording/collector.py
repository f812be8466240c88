"""The collector: the tracer's events and tables, in raw kernel terms, turned into the rows of a Trace."""

import dataclasses
import errno
import os
import time
from collections import deque
from dataclasses import dataclass, field

from profiler import abi, syscalls
from profiler.capability_paths import asks_about_initial_namespace, classify, clean_frames
from profiler.recording.file_accesses import PathNames, ProgramUses, file_rows, kernel_rows
from profiler.recording.targets import elf_abi, running_image
from profiler.recording.tracer import (
    NO_ROW,
    NO_SYSCALL,
    NOAUDIT_UNKNOWN,
    Event,
    EventKind,
    FirstUse,
    Observation,
    ObservationKind,
    PathSight,
    ProcessEvent,
    RowCounts,
)
from profiler.recording.tracer_interface import TracerTables
from profiler.trace import (
    NAMESPACE_SYSCALLS,
    SOCKET_SYSCALLS,
    CapabilityCheck,
    Image,
    KernelStack,
    NamespaceUse,
    Process,
    RunInfo,
    SocketUse,
    SyscallUse,
    Trace,
)

LIVENESS_CHECK_S = 1.0
# Observations of an exited process are taken out of the kernel's tables this long after its exit event: its last
# handlers on other CPUs ran microseconds after the event.
RECLAIM_AFTER_S = 0.25
# How often they are looked for: 10,000 /bin/true run 8 at a time add some 24,000 entries a second to the files
# table (65,536), and a table read a second late under load filled it. Each reclaim reads the tables whole, which
# takes a CPU from the workload (tar of /usr/share/doc 1.21x elapsed against 1.09x without it): it waits for
# RECLAIM_BATCH exited processes, or RECLAIM_IDLE_S since the last one.
RECLAIM_EVERY_S = 0.25
RECLAIM_BATCH = 256
RECLAIM_IDLE_S = 1.0


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows while recording."""

    elapsed_s: float
    processes: int
    running: int
    distinct_syscalls: int


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
class Collector:
    """Turns the tracer's events and tables into trace rows."""

    tracer: TracerTables
    start_ns: int
    native_abi: str
    initial_user_ns: int | None  # the address of init_user_ns, where /proc/kallsyms shows data symbols
    paths: bool = False  # file accesses and kernel uses were recorded
    processes: dict[int, _ProcessState] = field(default_factory=dict)
    # (serial, image): what its dense rows counted, kept compact (a 10,000-process run has 240,000 syscall rows).
    row_counts: dict[tuple[int, int], list[RowCounts]] = field(default_factory=dict)
    # (serial, image, nr): first use of a syscall counted in the observations table, outside the rows.
    overflow_first_ns: dict[tuple[int, int, int], int] = field(default_factory=dict)
    distinct_syscalls: set[int] = field(default_factory=set)
    live: dict[int, int] = field(default_factory=dict)  # serial: pid of processes not yet exited
    exited: deque[tuple[float, int]] = field(default_factory=deque)  # (when seen, serial), for reclaim_observations
    reclaimed_at: float = field(default_factory=time.monotonic)  # when reclaim last ran (reclaim_due)
    # Observations of exited processes, taken out: those of files and kernel interfaces summed per program in
    # uses, the others kept as the kernel had them.
    reclaimed: list[Observation] = field(default_factory=list)
    uses: ProgramUses = field(default_factory=ProgramUses)
    peeked: set[int] = field(default_factory=set)  # syscalls counting in the rows of running processes
    peeked_at: float = -LIVENESS_CHECK_S
    # Processes marked for adoption, read from /proc when marked: by their first event they may be gone.
    adopted: dict[int, tuple[int | None, Image]] = field(default_factory=dict)
    path_names: PathNames = field(default_factory=PathNames)

    def __post_init__(self) -> None:
        if self.paths:
            self.path_names.start_directory(0, None)  # the launched command's, which it inherits

    def seconds(self, time_ns: int | None) -> float | None:
        return None if time_ns is None else round(max(time_ns - self.start_ns, 0) / 1e9, 6)

    def apply(self, event: Event) -> None:
        if isinstance(event, PathSight):
            process = self.processes.get(event.serial)
            # An image whose exec event was lost has no program yet: its accesses count, its first sight does not.
            known = process is not None and event.image < len(process.images)
            self.path_names.sight(
                event,
                process.pid if process and process.exit_ns is None else None,
                process.images[event.image].path if process and known else None,
            )
            return
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
        else:
            self._harvest(event.serial, event.image - 1, event.released_row)
            process = self.processes.get(event.serial)
            if process is None:
                return
            while len(process.images) < event.image:
                process.images.append(self._lost_image())
            process.images.append(image)
            process.row = event.row
        if self.paths:
            self.path_names.executed(
                event.serial, event.image, event.path, event.pid, event.time_ns, first_exec=event.first_exec
            )

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
            return elf_abi(f"/proc/{event.pid}/exe", self.native_abi)
        return syscalls.COMPAT_ABIS.get(self.native_abi, self.native_abi) if event.compat else self.native_abi

    def _attach(self, event: ProcessEvent) -> None:
        parent_pid, image = self.adopted.get(event.pid) or running_image(event.pid, self.native_abi)
        image = image._replace(abi=self._event_abi(event))
        self.processes[event.serial] = _ProcessState(
            event.serial, event.pid, None, parent_pid, None, True, [image], event.row
        )
        self.live[event.serial] = event.pid
        if self.paths:
            self.path_names.start_directory(event.serial, event.pid)

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

    def reclaim_due(self, now: float) -> bool:
        """Whether enough processes exited a while ago (RECLAIM_BATCH), or any did and the last reclaim was long
        ago, for reclaim to be worth a read of the tables."""
        ready = 0
        for exited_at, _ in self.exited:
            if exited_at > now - RECLAIM_AFTER_S or ready >= RECLAIM_BATCH:
                break
            ready += 1
        return ready >= RECLAIM_BATCH or (ready > 0 and now >= self.reclaimed_at + RECLAIM_IDLE_S)

    def reclaim(self, now: float) -> None:
        """Take the observations of processes that exited a while ago out of the kernel's tables, so that a long
        recording of many short processes does not fill them; reclaim_observations says why a while."""
        self.reclaimed_at = now
        ready = set()
        while self.exited and self.exited[0][0] <= now - RECLAIM_AFTER_S:
            ready.add(self.exited.popleft()[1])
        if ready:
            self.reclaimed += self._summed(self.tracer.reclaim_observations(ready))

    def _summed(self, observations: list[Observation]) -> list[Observation]:
        """The observations but those of files and kernel interfaces, which are summed per program into uses."""
        kept = []
        for o in observations:
            if o.serial not in self.processes:
                continue
            process = self.processes[o.serial]
            while len(process.images) <= o.image:
                process.images.append(self._lost_image())
            if o.kind is ObservationKind.FILE:
                self.uses.add(o, process.images[o.image].path, None)
            elif o.kind is ObservationKind.KERNEL:
                syscall = self._syscall_name(o.serial, o.image, o.syscall_nr)[0]
                self.uses.add(o, process.images[o.image].path, syscall)
            else:
                kept.append(o)
        return kept

    def build(self, run: RunInfo, observations: list[Observation]) -> Trace:
        for process in self.processes.values():
            self._harvest(process.serial, len(process.images) - 1, process.row)
        self._add_silent_adopted()
        known = self.reclaimed + self._summed(observations)
        ids = {serial: index for index, serial in enumerate(sorted(self.processes), start=1)}
        # An attached process may have been adopted before its parent was: link them by pid now.
        attached = {p.pid: p.serial for p in self.processes.values() if p.attached}
        for process in self.processes.values():
            if process.attached and process.parent_serial is None and process.parent_pid in attached:
                process.parent_serial = attached[process.parent_pid]
        checks, stacks = self._checks(ids, known)
        files, kernel = None, None
        if self.paths:
            started_ns = time.time_ns() - (time.monotonic_ns() - self.start_ns)  # the start, by the wall clock
            files, unresolved = file_rows(self.uses, self.path_names, ids, self.seconds, started_ns)
            images = {ids[serial]: process.images for serial, process in self.processes.items()}
            program = lambda process, image: images[process][image].path  # noqa: E731
            pids = {process.pid for process in self.processes.values()}
            kernel = kernel_rows(self.uses, files, ids, program, pids)
            run = dataclasses.replace(run, dropped=dataclasses.replace(run.dropped, unresolved_paths=unresolved))
        return Trace(
            run=run,
            processes=tuple(self._process(ids, process) for _, process in sorted(self.processes.items())),
            syscalls=self._syscalls(ids, known),
            capability_checks=checks,
            kernel_stacks=stacks,
            sockets=self._sockets(ids, known),
            namespaces=self._namespaces(ids, known),
            file_accesses=files,
            kernel_uses=kernel,
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
