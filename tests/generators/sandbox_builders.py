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


def _started() -> tuple[tuple[str, FileOp], ...]:
    """What starting a dynamically linked program maps executable, as given (/lib is a link to /usr/lib) and resolved:
    libc, and the loader the kernel maps for it."""
    return (
        ("/lib/x86_64-linux-gnu/libc.so.6", FileOp.MAP_EXEC),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", FileOp.MAP_EXEC),
        ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", FileOp.MAP_EXEC),
    )


def demo_observations(script: str, cache: str, home: str = "/root") -> SandboxObservations:
    """What demo/tool_executor.py does to files and the network, run as root from a shell (see its source)."""
    python, ls = "/usr/bin/python3.11", "/usr/bin/ls"
    return observations(
        files(
            python,
            ("/usr/bin/python3", FileOp.EXEC),
            ("/usr/bin/python3.11", FileOp.EXEC),
            (script, FileOp.READ),
            (f"{home}/.config/tool-executor.json", FileOp.READ, "ENOENT"),
            ("/etc/os-release", FileOp.READ),
            ("/tmp/tmpa1b2c3", FileOp.CREATE),
            ("/tmp/tmpa1b2c3", FileOp.DELETE),
            (cache, FileOp.CREATE),
            (f"{cache}/tmpd4e5f6", FileOp.CREATE),
            (f"{cache}/tmpd4e5f6", FileOp.WRITE),
            (f"{cache}/tmpd4e5f6", FileOp.RENAME),
            (f"{cache}/usr-bin.listing", FileOp.RENAME),
            ("/usr/bin/ls", FileOp.EXEC),
            ("/proc/self/fd", FileOp.LIST),
            *_started(),
            ("/usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so", FileOp.MAP_EXEC),
        )
        + files(
            ls,
            ("/usr/bin", FileOp.LIST),
            ("/etc/passwd", FileOp.READ),
            ("/etc/group", FileOp.READ),
            *_started(),
            ("/lib/x86_64-linux-gnu/libselinux.so.1", FileOp.MAP_EXEC),
            ("/usr/lib/x86_64-linux-gnu/libselinux.so.1", FileOp.MAP_EXEC),
        ),
        [KernelNeed(KernelUse.LOOPBACK, "connect 127.0.0.1", evidence(python))],
    )


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
