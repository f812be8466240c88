"""Readable summaries of traces: the process tree, syscalls per program, capabilities, families, files, kernel
interfaces, drops.

Each line is escaped whole (profiler.escaping.visible) as it is joined: a recorded path, argv or host name
that holds ESC, CR or a newline shows as an escape, and cannot act on the terminal or forge a line.
"""

from collections import defaultdict
from collections.abc import Iterable

from profiler.capability_paths import asking_function
from profiler.escaping import visible
from profiler.trace import CapabilityCheck, CheckClass, Process, Trace


def _command_line(trace: Trace) -> str:
    return " ".join(trace.run.command) or (trace.run.target or "")


def _outcome(process: Process) -> str:
    if process.exit_signal:
        return f"killed by {process.exit_signal}"
    if process.exit_code is not None:
        return f"exit {process.exit_code}"
    return "running at the end" if process.exit_s is None else "exited"


def _tree_lines(trace: Trace) -> list[str]:
    children: dict[int | None, list[Process]] = defaultdict(list)
    for process in trace.processes:
        children[process.parent].append(process)
    lines: list[str] = []
    # Depth first with a stack of our own, not recursion: a chain of processes can be thousands deep.
    pending: list[tuple[Process, str, str]] = [(root, "", "") for root in reversed(children.get(None, []))]
    while pending:
        process, prefix, branch = pending.pop()
        chain = " → ".join(image.path for image in process.images)
        start = "attached" if process.start_s is None else f"{process.start_s:.3f}s"
        lines.append(f"  {prefix}{branch}{process.id} {chain}  [pid {process.pid}, {start}, {_outcome(process)}]")
        kids = children.get(process.id, [])
        below = prefix + ("   " if branch in ("└─ ", "") else "│  ")
        for index in reversed(range(len(kids))):
            pending.append((kids[index], below, "└─ " if index == len(kids) - 1 else "├─ "))
    return lines


def _programs(trace: Trace) -> dict[tuple[int, int], str]:
    """The program path of each (process, image)."""
    return {
        (process.id, index): image.path for process in trace.processes for index, image in enumerate(process.images)
    }


def syscalls_by_program(trace: Trace) -> dict[str, set[str]]:
    """Syscall names (numbers where unresolved) used by each program path."""
    programs: dict[str, set[str]] = defaultdict(set)
    for use in trace.syscalls:
        programs[trace.program(use.process, use.image)].add(use.name or f"#{use.nr}")
    return programs


def describe_check(trace: Trace, check: CapabilityCheck) -> str:
    """One check as a sentence: "fchownat by /usr/bin/chown via setattr_prepare"."""
    stack = trace.stack(check.stack)
    via = asking_function(stack.frames) if stack else None
    parts = [check.syscall or "outside a syscall", f"by {trace.program(check.process, check.image)}"]
    parts.append(f"via {via}" if via else f"(no kernel path: {check.stack_error})")
    if not check.initial_user_ns:
        parts.append("in a user namespace")
    return " ".join(parts)


def _capability_lines(trace: Trace) -> list[str]:
    # Checks that read the same are described once: the 10,000 processes of a storm make the same few checks.
    programs = _programs(trace)
    alike: dict[tuple[object, ...], CapabilityCheck] = {}
    counts: dict[tuple[object, ...], int] = defaultdict(int)
    for check in trace.capability_checks:
        program = programs[check.process, check.image]
        key = (
            program,
            check.cap,
            check.classification,
            check.syscall,
            check.initial_user_ns,
            check.stack,
            check.stack_error,
        )
        alike.setdefault(key, check)
        counts[key] += check.count
    grouped: dict[tuple[str, CheckClass], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for same, check in alike.items():
        name = check.capability or f"capability {check.cap}"
        grouped[(name, check.classification)][describe_check(trace, check)] += counts[same]
    order = {CheckClass.NEEDED: 0, CheckClass.DENIED: 1, CheckClass.PROBE: 2}
    lines = []
    for (name, check_class), paths in sorted(grouped.items(), key=lambda item: (order[item[0][1]], item[0][0])):
        note = {CheckClass.PROBE: "  (noaudit probe: not a need)", CheckClass.DENIED: "  (refused)"}.get(
            check_class, ""
        )
        lines.append(f"  {name:<22} {check_class.value:<7}{note}")
        lines.extend(f"      {count:>6}×  {path}" for path, count in sorted(paths.items()))
    return lines


def _family_lines(trace: Trace) -> list[str]:
    families: dict[tuple[str, str], int] = defaultdict(int)
    for use in trace.sockets:
        family = use.family or f"family {use.family_nr}"
        families[(family, f"{'|'.join(use.type)} by {trace.program(use.process, use.image)}")] += use.count
    return [f"  {family:<12} {count:>5}×  {what}" for (family, what), count in sorted(families.items())]


def _namespace_lines(trace: Trace) -> list[str]:
    return [
        f"  {use.syscall} {'|'.join(use.flags) or '(any type)'} by {trace.program(use.process, use.image)}"
        f"  {use.count}×"
        for use in trace.namespaces
    ]


# The most lines shown of one program's file accesses, or of one kind of kernel use: a build opens tens of
# thousands of paths; the rest are in `profiler show --format csv --table TABLE`.
LINES_PER_GROUP = 40
NOT_RECORDED = "  not recorded (recorded with --no-paths, or by a profiler before they were)"


def _bounded(lines: list[str], indent: str, table: str) -> list[str]:
    if len(lines) <= LINES_PER_GROUP:
        return lines
    more = f"{indent}... and {len(lines) - LINES_PER_GROUP} more: profiler show --format csv --table {table}"
    return [*lines[:LINES_PER_GROUP], more]


def _file_lines(trace: Trace) -> list[str]:
    if trace.file_accesses is None:
        return [NOT_RECORDED]
    accesses: dict[str, dict[tuple[str, str, str], int]] = defaultdict(lambda: defaultdict(int))
    for access in trace.file_accesses:
        device = f"  (device {access.device[0]}:{access.device[1]})" if access.device else ""
        what = (access.path, access.op.value, f"  {access.error}" if access.error else device)
        accesses[trace.program(access.process, access.image)][what] += access.count
    lines = []
    for program, done in sorted(accesses.items()):
        lines.append(f"  {program} ({len(done)})")
        shown = [f"    {op:<8} {path}{result}  {count}×" for (path, op, result), count in sorted(done.items())]
        lines += _bounded(shown, "    ", "file_accesses")
    return lines or ["  none"]


def _kernel_lines(trace: Trace) -> list[str]:
    if trace.kernel_uses is None:
        return [NOT_RECORDED]
    uses: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for use in trace.kernel_uses:
        uses[use.use.value][(use.detail, trace.program(use.process, use.image))] += use.count
    lines = []
    for kind, done in sorted(uses.items()):
        shown = [f"  {kind:<14} {detail} by {program}  {count}×" for (detail, program), count in sorted(done.items())]
        lines += _bounded(shown, "  ", "kernel_uses")
    return lines or ["  none"]


def render_summary(trace: Trace, source: str) -> str:
    run = trace.run
    distinct = {use.name or f"#{use.nr}" for use in trace.syscalls}
    status = f"exit status {run.exit_status}" if run.exit_status is not None else run.end_reason.value
    lines = [
        f"{source}: component {run.component}, {run.mode.value} `{_command_line(trace)}` as {run.user}",
        f"  recorded {run.started_at} on {run.hostname}, Linux {run.kernel_release} {run.architecture}, "
        f"{run.duration_s:.2f}s, {run.end_reason.value}, {status}",
    ]
    lines += [
        f"  WARNING: dropped {count} {name}: the trace is incomplete" for name, count in run.dropped.nonzero().items()
    ]
    lines += ["", f"process tree ({len(trace.processes)} processes)", *_tree_lines(trace)]
    lines += ["", f"syscalls per program ({len(distinct)} distinct)"]
    for program, names in sorted(syscalls_by_program(trace).items()):
        lines.append(f"  {program} ({len(names)}): {' '.join(sorted(names))}")
    unresolved = sorted({(u.nr, u.unresolved) for u in trace.syscalls if u.name is None})
    lines += [f"  unresolved #{nr}: {reason}" for nr, reason in unresolved]
    lines += ["", f"capability checks (source: {run.capability_source.value})"]
    lines += _capability_lines(trace) or ["  none"]
    lines += ["", "socket families", *(_family_lines(trace) or ["  none"])]
    lines += ["", "namespaces", *(_namespace_lines(trace) or ["  none created or joined"])]
    distinct_paths = "" if trace.file_accesses is None else f" ({len({a.path for a in trace.file_accesses})} paths)"
    lines += ["", f"files per program{distinct_paths}", *_file_lines(trace)]
    lines += ["", "kernel interfaces", *_kernel_lines(trace)]
    return _text(lines)


def _text(lines: Iterable[str]) -> str:
    return "".join(visible(line) + "\n" for line in lines)


def short_summary(trace: Trace) -> str:
    """The few lines printed when a recording ends."""
    needed = sorted(
        {c.capability or str(c.cap) for c in trace.capability_checks if c.classification is CheckClass.NEEDED}
    )
    families = sorted({use.family or str(use.family_nr) for use in trace.sockets})
    programs = {image.path for process in trace.processes for image in process.images}
    lines = [
        f"recorded {len(trace.processes)} processes running {len(programs)} programs in {trace.run.duration_s:.2f}s: "
        f"{len({u.nr for u in trace.syscalls})} distinct syscalls, "
        f"capabilities needed: {', '.join(needed) or 'none'}, socket families: {', '.join(families) or 'none'}"
        + ("" if trace.file_accesses is None else f", files: {len({a.path for a in trace.file_accesses})} paths")
    ]
    lines += [
        f"WARNING: dropped {count} {name}; the trace is incomplete (see docs/trace-format.md, dropped)"
        for name, count in trace.run.dropped.nonzero().items()
    ]
    return _text(lines).removesuffix("\n")


def render_summaries(traces: Iterable[tuple[str, Trace]]) -> str:
    return "\n".join(render_summary(trace, source) for source, trace in traces)
