"""Sandbox observations written by hand, in the shape the recorder gives them: for tests that need a file, device
or kernel observation the committed traces do not hold."""

import dataclasses
from collections.abc import Iterable

from generators.profile import Evidence, FileNeed, KernelNeed, SandboxObservations
from profiler.trace import FileAccess, FileOp, KernelInterfaceUse, KernelUse, Trace


def evidence(*programs: str) -> Evidence:
    return Evidence((0,), 1, programs or ("/usr/bin/python3.11",), 0.0)


def files(program: str, *entries: tuple[str, FileOp] | tuple[str, FileOp, str]) -> list[FileNeed]:
    """(path, op) or (path, op, errno) done by program."""
    return [FileNeed(entry[0], entry[1], entry[2] if len(entry) == 3 else None, evidence(program)) for entry in entries]


def observations(needs: Iterable[FileNeed], kernel: Iterable[KernelNeed] = ()) -> SandboxObservations:
    return SandboxObservations(tuple(needs), tuple(kernel))


def recorded(
    trace: Trace,
    accesses: Iterable[tuple[str, FileOp] | tuple[str, FileOp, str | None]],
    kernel: Iterable[tuple[KernelUse, str]] = (),
    *,
    dropped_paths: int = 0,
    unresolved_paths: int = 0,
) -> Trace:
    """The trace as if recorded with paths: (path, op) or (path, op, errno or None) and (use, detail), each once by
    its first process's first image."""
    process = trace.processes[0].id
    return dataclasses.replace(
        trace,
        run=dataclasses.replace(
            trace.run,
            dropped=dataclasses.replace(trace.run.dropped, paths=dropped_paths, unresolved_paths=unresolved_paths),
        ),
        file_accesses=tuple(
            FileAccess(process, 0, entry[0], entry[1], entry[2] if len(entry) == 3 else None, None, 1, None)
            for entry in accesses
        ),
        kernel_uses=tuple(KernelInterfaceUse(process, 0, use, detail, 1) for use, detail in kernel),
    )
