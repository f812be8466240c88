"""Sandbox observations written by hand, in the shape the recorder gives them: for tests that need a file, device
or kernel observation the committed traces do not hold."""

from collections.abc import Iterable

from generators.profile import Evidence, FileNeed, KernelNeed, SandboxObservations
from profiler.trace import FileOp


def evidence(*programs: str) -> Evidence:
    return Evidence((0,), 1, programs or ("/usr/bin/python3.11",), 0.0)


def files(program: str, *entries: tuple[str, FileOp] | tuple[str, FileOp, str]) -> list[FileNeed]:
    """(path, op) or (path, op, errno) done by program."""
    return [FileNeed(entry[0], entry[1], entry[2] if len(entry) == 3 else None, evidence(program)) for entry in entries]


def observations(needs: Iterable[FileNeed], kernel: Iterable[KernelNeed] = ()) -> SandboxObservations:
    return SandboxObservations(tuple(needs), tuple(kernel))
