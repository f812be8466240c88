"""A component's needs, merged from the traces of its runs: what a policy must allow, and the evidence for each."""

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Generic, TypeVar

from profiler.capability_paths import asking_function
from profiler.errors import ComponentError, MixedAbiError, NoTraceError
from profiler.trace import CapabilitySource, CheckClass, DropCounters, FileOp, KernelUse, Trace

# RestrictNamespaces= names of the CLONE_NEW* flags; "any" stands for setns on a namespace of any type.
NAMESPACE_TYPES: dict[str, str] = {
    "CLONE_NEWCGROUP": "cgroup",
    "CLONE_NEWIPC": "ipc",
    "CLONE_NEWNET": "net",
    "CLONE_NEWNS": "mnt",
    "CLONE_NEWPID": "pid",
    "CLONE_NEWUSER": "user",
    "CLONE_NEWUTS": "uts",
    "CLONE_NEWTIME": "time",
}
# Every namespace type by its name, sorted: what "any" stands for.
ALL_NAMESPACE_TYPES: tuple[str, ...] = tuple(sorted(NAMESPACE_TYPES.values()))
ANY_NAMESPACE = "any"

# create_user_ns notes whether the creator holds CAP_SETFCAP by testing the bit, not through a capability check
# a tracer could see; a root process that later maps root into the namespace (unshare -r, rootful container
# runtimes) is refused without it (kernel/user_namespace.c, verify_root_map).
SETFCAP_FOR_USER_NAMESPACE = (
    "inferred: root created a user namespace, and mapping root into it needs CAP_SETFCAP, which the kernel "
    "tests at create_user_ns without a check a tracer can see"
)

# A file need's key while traces are merged: path, operation, errno name or "", device numbers or ().
_FileKey = tuple[str, FileOp, str, tuple[int, ...]]
K = TypeVar(
    "K",
    str,
    tuple[int, str],
    tuple[str, int],
    tuple[str, CheckClass, bool, str, str, tuple[str, ...], str],
    _FileKey,
    tuple[KernelUse, str],
)


@dataclass(frozen=True, slots=True)
class RunRef:
    """One trace that went into a profile."""

    source: str
    started_at: str
    hostname: str
    user: str
    uid: int
    command: tuple[str, ...]
    capability_source: CapabilitySource

    @property
    def program(self) -> str:
        """The program the run started (argv[0]): what an output names by default, since arguments can hold
        secrets (--password=...)."""
        return self.command[0] if self.command else ""


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where an item was seen: in which runs (indexes into Profile.runs), how often, by which programs."""

    runs: tuple[int, ...]
    count: int
    programs: tuple[str, ...]
    first_s: float | None  # the earliest first use, in seconds since the start of its run

    @property
    def support(self) -> int:
        return len(self.runs)


@dataclass(frozen=True, slots=True)
class SyscallNeed:
    name: str
    abis: tuple[str, ...]  # the ABIs it was called in: the native one, and a compat one for 32-bit programs
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class UnresolvedSyscall:
    """A number that names no syscall in libseccomp's table: never emitted as a name."""

    nr: int
    abi: str
    reason: str
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class CapabilityPath:
    """One way a capability was checked: by which program, in which syscall, through which kernel path."""

    classification: CheckClass
    initial_user_ns: bool
    program: str
    syscall: str | None
    via: str | None  # the kernel function that asked (setattr_prepare for a chown)
    frames: tuple[str, ...]  # the kernel call path, innermost first; empty where it was not captured
    evidence: Evidence
    inferred: str | None = None  # why a need no check showed was inferred from what the workload did


@dataclass(frozen=True, slots=True)
class CapabilityUse:
    name: str
    paths: tuple[CapabilityPath, ...]

    @property
    def needed(self) -> bool:
        """Needed in the bounding set: an audited, granted check against the initial user namespace."""
        return any(p.classification is CheckClass.NEEDED and p.initial_user_ns for p in self.paths)

    @property
    def needed_in_user_namespace_only(self) -> bool:
        """Needed only inside a user namespace the workload created, where the bounding set does not apply."""
        return not self.needed and any(p.classification is CheckClass.NEEDED for p in self.paths)

    @property
    def denied(self) -> bool:
        """Attempted and refused: granting it would change what the workload does."""
        return any(p.classification is CheckClass.DENIED for p in self.paths)

    @property
    def evidence(self) -> Evidence:
        """The evidence of its most telling paths: needed ones, else denied ones, else probes."""
        for wanted in (CheckClass.NEEDED, CheckClass.DENIED, CheckClass.PROBE):
            chosen = [p.evidence for p in self.paths if p.classification is wanted]
            if chosen:
                return merge_evidence(chosen)
        return Evidence((), 0, (), None)


@dataclass(frozen=True, slots=True)
class FamilyUse:
    name: str  # AF_* name, or AF_<number> for a family profiler's table does not know
    number: int
    types: tuple[str, ...]  # socket types seen, such as SOCK_STREAM
    evidence: Evidence
    # socket, socketpair, or both; empty where unknown. Family restrictions (RestrictAddressFamilies=, socket()
    # argument filters) act on socket() only: a family made by socketpair() alone needs no permission.
    syscalls: tuple[str, ...] = ()

    @property
    def restricted_by_socket_filters(self) -> bool:
        """Whether a policy that limits socket() families must allow it (unknown counts as yes)."""
        return not self.syscalls or "socket" in self.syscalls


@dataclass(frozen=True, slots=True)
class NamespaceNeed:
    name: str  # a RestrictNamespaces= type (user, net, mnt, ...), or "any" for setns of an unknown type
    syscalls: tuple[str, ...]
    evidence: Evidence


# Operations that change a directory's entries: that directory is what must be writable, since the names a
# program creates (a temporary file, a rotated log) differ from run to run.
ENTRY_OPS = frozenset({FileOp.CREATE, FileOp.DELETE, FileOp.RENAME, FileOp.LINK})
# Operations that change an existing file itself: that file is what must be writable.
INODE_OPS = frozenset({FileOp.WRITE, FileOp.CHMOD, FileOp.SETID})
WRITE_OPS = ENTRY_OPS | INODE_OPS


@dataclass(frozen=True, slots=True)
class FileNeed:
    """One thing done to one path, by the programs of the evidence, with one result."""

    path: str  # absolute, as the kernel resolved it
    op: FileOp
    error: str | None  # the errno name where it failed: a probe the run survived, not a need
    evidence: Evidence
    device: tuple[int, int] | None = None  # major, minor of a device node opened


@dataclass(frozen=True, slots=True)
class KernelNeed:
    use: KernelUse
    detail: str  # such as "connect 151.101.0.223:443", "personality(0x0008)"
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class SandboxObservations:
    """What the runs did to files, devices and kernel interfaces, merged: the sandboxing settings a profile
    allows rest on it (generators/sandbox.py)."""

    files: tuple[FileNeed, ...]
    kernel: tuple[KernelNeed, ...]
    dropped_paths: int = 0  # file accesses not recorded: their table was full
    unresolved_paths: int = 0  # relative paths the recorder could not resolve (the process was gone): not here


@dataclass(frozen=True, slots=True)
class Profile:
    component: str
    runs: tuple[RunRef, ...]
    native_abi: str
    syscalls: tuple[SyscallNeed, ...]
    unresolved: tuple[UnresolvedSyscall, ...]
    capabilities: tuple[CapabilityUse, ...]
    families: tuple[FamilyUse, ...]
    namespaces: tuple[NamespaceNeed, ...]
    dropped: DropCounters = field(default_factory=DropCounters)
    # None where a run did not record files, devices and kernel interfaces: "not recorded" is not "nothing
    # touched", so no setting is inferred from it.
    sandbox: SandboxObservations | None = None

    def syscall_names(self) -> frozenset[str]:
        return frozenset(need.name for need in self.syscalls)

    def abis(self) -> tuple[str, ...]:
        """The syscall ABIs the workload used, native first."""
        others = sorted({abi for need in self.syscalls for abi in need.abis} - {self.native_abi})
        return (self.native_abi, *others)

    def bounding_set(self) -> tuple[str, ...]:
        """Capabilities the workload needs in its bounding set."""
        return tuple(use.name for use in self.capabilities if use.needed)

    def denied_capabilities(self) -> tuple[str, ...]:
        return tuple(use.name for use in self.capabilities if use.denied and not use.needed)

    def family_names(self) -> tuple[str, ...]:
        return tuple(use.name for use in self.families)

    def namespace_types(self) -> tuple[str, ...]:
        return tuple(need.name for need in self.namespaces)

    @property
    def capabilities_known(self) -> bool:
        """Whether every run recorded capability checks (a kernel without the probes cannot)."""
        return all(run.capability_source is not CapabilitySource.NONE for run in self.runs)

    @property
    def recorded_unprivileged(self) -> bool:
        """Whether the runs ran as a non-root user, so needed capabilities must be granted as ambient ones."""
        return all(run.uid != 0 for run in self.runs)

    @property
    def uses_io_uring(self) -> bool:
        """io_uring submits work that seccomp never sees: a policy cannot confine it."""
        return "io_uring_setup" in self.syscall_names()

    def is_uncertain(self, evidence: Evidence, min_runs: int) -> bool:
        return evidence.support < min(min_runs, len(self.runs))


def merge_evidence(items: Iterable[Evidence]) -> Evidence:
    """The evidence of several items taken together: their runs, counts and programs, the earliest first use."""
    items = list(items)
    firsts = [e.first_s for e in items if e.first_s is not None]
    return Evidence(
        runs=tuple(sorted({run for e in items for run in e.runs})),
        count=sum(e.count for e in items),
        programs=tuple(sorted({program for e in items for program in e.programs})),
        first_s=min(firsts) if firsts else None,
    )


class _Tally(Generic[K]):
    """Evidence accumulated per key while traces are read."""

    def __init__(self) -> None:
        self.runs: dict[K, set[int]] = defaultdict(set)
        self.count: dict[K, int] = defaultdict(int)
        self.programs: dict[K, set[str]] = defaultdict(set)
        self.first: dict[K, float] = {}

    def add(self, key: K, run: int, count: int, program: str, first_s: float | None = None) -> None:
        self.runs[key].add(run)
        self.count[key] += count
        self.programs[key].add(program)
        if first_s is not None:
            self.first[key] = min(self.first.get(key, first_s), first_s)

    def evidence(self, key: K) -> Evidence:
        return Evidence(
            tuple(sorted(self.runs[key])), self.count[key], tuple(sorted(self.programs[key])), self.first.get(key)
        )

    def sorted_keys(self) -> list[K]:
        return sorted(self.runs)


def _select_component(traces: Sequence[tuple[str, Trace]], component: str | None) -> str:
    components = sorted({trace.run.component for _, trace in traces})
    if component is None:
        if len(components) > 1:
            raise ComponentError(
                f"the traces hold several components ({', '.join(components)}): choose one with --component"
            )
        return components[0]
    if component not in components:
        raise ComponentError(f"no trace of component {component!r}; the traces hold {', '.join(components)}")
    return component


def _in_run_order(traces: list[tuple[str, Trace]]) -> list[tuple[str, Trace]]:
    """Traces in the order their runs are numbered: by start, host and source, and traces alike in those by
    content (compared only where needed: writing a large trace out takes a while)."""

    def when(item: tuple[str, Trace]) -> tuple[str, str, str]:
        return item[1].run.started_at, item[1].run.hostname, item[0]

    ordered: list[tuple[str, Trace]] = []
    for _, alike in itertools.groupby(sorted(traces, key=when), key=when):
        group = list(alike)
        ordered += sorted(group, key=lambda item: item[1].to_json()) if len(group) > 1 else group
    return ordered


def build_profile(traces: Sequence[tuple[str, Trace]], component: str | None = None) -> Profile:
    """Merge the traces (source name, trace) of one component into its profile.

    The result does not depend on the order the traces come in.
    """
    if not traces:
        raise NoTraceError("no trace given: pass at least one trace file")
    name = _select_component(traces, component)
    chosen = _in_run_order([(source, trace) for source, trace in traces if trace.run.component == name])
    abis = {trace.run.abi for _, trace in chosen}
    if len(abis) > 1:
        raise MixedAbiError(f"the traces of {name} come from machines of different ABIs ({', '.join(sorted(abis))})")
    syscalls: _Tally[str] = _Tally()
    unresolved: _Tally[tuple[int, str]] = _Tally()
    families: _Tally[tuple[str, int]] = _Tally()
    namespaces: _Tally[str] = _Tally()
    checks: _Tally[tuple[str, CheckClass, bool, str, str, tuple[str, ...], str]] = _Tally()
    syscall_abis: dict[str, set[str]] = defaultdict(set)
    reasons: dict[tuple[int, str], str] = {}
    family_types: dict[tuple[str, int], set[str]] = defaultdict(set)
    family_syscalls: dict[tuple[str, int], set[str]] = defaultdict(set)
    namespace_syscalls: dict[str, set[str]] = defaultdict(set)
    for run, (_, trace) in enumerate(chosen):
        images = {
            (p.id, index): (image.path, image.abi) for p in trace.processes for index, image in enumerate(p.images)
        }
        # Rows are summed per program first: a trace of many processes has many rows and few programs.
        totals: dict[tuple[str | None, int, str, str], int] = defaultdict(int)
        firsts: dict[tuple[str | None, int, str, str], float] = {}
        for process, image_index, nr, syscall, reason, count, first_s in trace.syscalls:
            used = (syscall, nr, *images[process, image_index])
            totals[used] += count
            if first_s is not None and first_s < firsts.get(used, math.inf):
                firsts[used] = first_s
            if syscall is None:
                reasons[(nr, used[3])] = reason or "unresolved"
        for used, count in totals.items():
            syscall, nr, path, image_abi = used
            if syscall is None:
                unresolved.add((nr, image_abi), run, count, path, firsts.get(used))
            else:
                syscalls.add(syscall, run, count, path, firsts.get(used))
                syscall_abis[syscall].add(image_abi)
        for socket in trace.sockets:
            family = (socket.family or f"AF_{socket.family_nr}", socket.family_nr)
            families.add(family, run, socket.count, trace.program(socket.process, socket.image))
            family_types[family].add(socket.type[0])
            family_syscalls[family].add(socket.syscall)
        for operation in trace.namespaces:
            program = trace.program(operation.process, operation.image)
            for namespace_type in [NAMESPACE_TYPES[flag] for flag in operation.flags] or [ANY_NAMESPACE]:
                namespaces.add(namespace_type, run, operation.count, program)
                namespace_syscalls[namespace_type].add(operation.syscall)
            if trace.run.uid == 0 and "CLONE_NEWUSER" in operation.flags and operation.syscall != "setns":
                setfcap = (
                    "CAP_SETFCAP",
                    CheckClass.NEEDED,
                    True,
                    program,
                    operation.syscall,
                    (),
                    SETFCAP_FOR_USER_NAMESPACE,
                )
                checks.add(setfcap, run, operation.count, program)
        check_totals: dict[tuple[str, CheckClass, bool, str, str, int | None], int] = defaultdict(int)
        for check in trace.capability_checks:
            program = images[check.process, check.image][0]
            capability = check.capability or f"CAP_{check.cap}"
            kind = (capability, check.classification, check.initial_user_ns, program, check.syscall or "", check.stack)
            check_totals[kind] += check.count
        for (capability, check_class, initial, program, syscall, stack_id), count in check_totals.items():
            stack = trace.stack(stack_id)
            way = (capability, check_class, initial, program, syscall, stack.frames if stack else (), "")
            checks.add(way, run, count, program)
    paths_by_capability: dict[str, list[CapabilityPath]] = defaultdict(list)
    for key in checks.sorted_keys():
        capability, classification, initial, program, syscall, frames, inferred = key
        paths_by_capability[capability].append(
            CapabilityPath(
                classification,
                initial,
                program,
                syscall or None,
                asking_function(frames) if frames else ("create_user_ns" if inferred else None),
                frames,
                checks.evidence(key),
                inferred or None,
            )
        )
    drops = [trace.run.dropped for _, trace in chosen]
    return Profile(
        sandbox=_sandbox(chosen),
        component=name,
        runs=tuple(
            RunRef(
                source, t.run.started_at, t.run.hostname, t.run.user, t.run.uid, t.run.command, t.run.capability_source
            )
            for source, t in chosen
        ),
        native_abi=abis.pop(),
        syscalls=tuple(
            SyscallNeed(key, tuple(sorted(syscall_abis[key])), syscalls.evidence(key)) for key in syscalls.sorted_keys()
        ),
        unresolved=tuple(
            UnresolvedSyscall(nr, abi, reasons[(nr, abi)], unresolved.evidence((nr, abi)))
            for nr, abi in unresolved.sorted_keys()
        ),
        capabilities=tuple(
            CapabilityUse(capability, tuple(sorted(paths, key=_path_order)))
            for capability, paths in sorted(paths_by_capability.items())
        ),
        families=tuple(
            FamilyUse(
                name,
                number,
                tuple(sorted(family_types[(name, number)])),
                families.evidence((name, number)),
                tuple(sorted(family_syscalls[(name, number)])),
            )
            for name, number in sorted(families.sorted_keys(), key=lambda family: family[1])
        ),
        namespaces=tuple(
            NamespaceNeed(key, tuple(sorted(namespace_syscalls[key])), namespaces.evidence(key))
            for key in namespaces.sorted_keys()
        ),
        dropped=DropCounters(**{f.name: sum(getattr(d, f.name) for d in drops) for f in fields(DropCounters)}),
    )


def _sandbox(chosen: Sequence[tuple[str, Trace]]) -> SandboxObservations | None:
    """What the runs did to files and kernel interfaces, merged; None unless every run recorded it ("not
    recorded" is not "nothing touched")."""
    files: _Tally[_FileKey] = _Tally()
    kernel: _Tally[tuple[KernelUse, str]] = _Tally()
    for run, (_, trace) in enumerate(chosen):
        if trace.file_accesses is None or trace.kernel_uses is None:
            return None
        # Summed per program first, as syscalls are: each of 10,000 processes opens the same few libraries.
        programs = {(p.id, index): image.path for p in trace.processes for index, image in enumerate(p.images)}
        totals: dict[tuple[_FileKey, str], int] = defaultdict(int)
        firsts: dict[tuple[_FileKey, str], float] = {}
        for process, image, path, op, error, device, count, first_s in trace.file_accesses:
            seen = ((path, op, error or "", device or ()), programs[process, image])
            totals[seen] += count
            if first_s is not None and first_s < firsts.get(seen, math.inf):
                firsts[seen] = first_s
        for (key, program), count in totals.items():
            files.add(key, run, count, program, firsts.get((key, program)))
        for use in trace.kernel_uses:
            kernel.add((use.use, use.detail), run, use.count, trace.program(use.process, use.image))
    return SandboxObservations(
        files=tuple(
            FileNeed(
                path,
                op,
                error or None,
                files.evidence((path, op, error, device)),
                (device[0], device[1]) if device else None,
            )
            for path, op, error, device in files.sorted_keys()
        ),
        kernel=tuple(KernelNeed(use, detail, kernel.evidence((use, detail))) for use, detail in kernel.sorted_keys()),
        dropped_paths=sum(trace.run.dropped.paths for _, trace in chosen),
        unresolved_paths=sum(trace.run.dropped.unresolved_paths for _, trace in chosen),
    )


def _path_order(path: CapabilityPath) -> tuple[object, ...]:
    order = {CheckClass.NEEDED: 0, CheckClass.DENIED: 1, CheckClass.PROBE: 2}
    return (order[path.classification], not path.initial_user_ns, path.program, path.syscall or "", path.frames)
