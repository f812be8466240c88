"""What OCI runtimes do in a container between loading its seccomp filter and exec'ing its program.

    OCI_RUNTIMES             the runtimes whose calls profiler knows: crun, runc
    runtime_calls(runtimes)  each syscall those runtimes make under the container's filter, with why

A runtime loads the container's filter and then goes on working in the container's process until its execve:
runc checks /proc/self/fd (fstatfs, getdents64) and writes to its sync pipe; without no_new_privileges both
runtimes load the filter before they drop privileges, so capset, setgroups, setresuid and prctl(PR_CAPBSET_DROP)
run under it too. A profile learned from the program's own execve onward refuses them, and the container does
not start. The calls are recorded from the runtimes themselves into generators/data/oci-runtime-calls.txt,
whose header says how, from which versions, and how to regenerate it.

runc is written in Go, and the Go runtime makes calls of its own on the thread that loaded the filter at times
no recording can pin down (runc loads it without TSYNC, so only that thread and the threads it starts are
filtered): those are added to what was recorded (GO_RUNTIME_CALLS), so that a start never fails by chance.
"""

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

OCI_RUNTIMES = ("crun", "runc")
WRITTEN_IN_GO = frozenset({"runc"})
# What Go 1.19's runtime can call on a thread locked to a goroutine (runc's init locks its main thread), without
# the program asking (runtime/lock_futex.go, proc.go, mem_linux.go, os_linux.go, signal_unix.go, netpoll_epoll.go):
# futex to sleep and wake, sched_yield and nanosleep while spinning or waiting for the world to stop, mmap,
# munmap and madvise as the heap grows and shrinks, getpid and tgkill to preempt another thread (signalM),
# rt_sigreturn after the preemption signal, epoll_pwait when starting the world after a collection.
GO_RUNTIME_CALLS = (
    "epoll_pwait",
    "futex",
    "getpid",
    "madvise",
    "mmap",
    "munmap",
    "nanosleep",
    "rt_sigreturn",
    "sched_yield",
    "tgkill",
)
DATA = "oci-runtime-calls.txt"
_RUNTIME = re.compile(r"runtime (?P<name>\S+) (?P<version>\S+)")
_CALL = re.compile(
    r"(?P<runtime>\S+) no_new_privileges=(?P<nnp>true|false) (?P<syscall>\w+) (?P<seen>\d+)/(?P<starts>\d+)"
)


@dataclass(frozen=True, slots=True)
class RuntimeCall:
    """A syscall a runtime makes under the container's filter before the exec."""

    runtime: str
    version: str
    syscall: str
    with_nnp: str | None  # in how many starts with no_new_privileges ("400/400"), or None when never
    without_nnp: str | None  # the same without no_new_privileges
    by_go_runtime: bool = False  # added for the Go runtime, whether recorded or not

    @property
    def evidence(self) -> str:
        """Such as "runc 1.1.5+ds1 (200/200 starts with no_new_privileges, 200/200 without)"."""
        if self.with_nnp and self.without_nnp:
            recorded = [f"{self.with_nnp} starts with no_new_privileges, {self.without_nnp} without"]
        elif self.with_nnp or self.without_nnp:
            setting = "with" if self.with_nnp else "without"
            recorded = [f"{setting} no_new_privileges: {self.with_nnp or self.without_nnp} starts"]
        else:
            recorded = []
        if self.by_go_runtime:
            recorded.append("its Go runtime can at any time")
        return f"{self.runtime} {self.version} ({'; '.join(recorded)})"


def runtime_reason(calls: Iterable[RuntimeCall]) -> str:
    """Why a profile allows a syscall the runtimes make: "the runtime's, not the workload's: runc ... call it ..."."""
    evidence = [call.evidence for call in calls]
    verb = "calls" if len(evidence) == 1 else "call"
    return (
        f"the runtime's, not the workload's: {' and '.join(evidence)} {verb} it between loading the filter and the exec"
    )


@functools.cache
def _learned() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, bool, str], ...]]:
    """The runtimes' versions and each recorded (runtime, syscall, with no_new_privileges, seen/starts)."""
    from importlib import resources  # 10 ms to import: only where the table is read, not for OCI_RUNTIMES

    versions: list[tuple[str, str]] = []
    calls: list[tuple[str, str, bool, str]] = []
    for line in resources.files("generators").joinpath("data", DATA).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if runtime := _RUNTIME.match(line):
            versions.append((runtime["name"], runtime["version"]))
        elif call := _CALL.fullmatch(line):
            calls.append((call["runtime"], call["syscall"], call["nnp"] == "true", f"{call['seen']}/{call['starts']}"))
        else:
            raise ValueError(f"generators/data/{DATA}: unreadable line {line!r}")
    return tuple(versions), tuple(calls)


def runtime_versions() -> dict[str, str]:
    """Each runtime's version as the data records it: {"runc": "1.1.5+ds1", ...}."""
    return dict(_learned()[0])


def runtime_calls(runtimes: tuple[str, ...]) -> tuple[RuntimeCall, ...]:
    """What the runtimes named call under the container's filter, per runtime and syscall, in name order."""
    versions, recorded = _learned()
    found: list[RuntimeCall] = []
    for runtime, version in versions:
        if runtime not in runtimes:
            continue
        mine = {(syscall, nnp): seen for name, syscall, nnp, seen in recorded if name == runtime}
        go = GO_RUNTIME_CALLS if runtime in WRITTEN_IN_GO else ()
        for syscall in sorted({syscall for syscall, _ in mine} | set(go)):
            found.append(
                RuntimeCall(
                    runtime, version, syscall, mine.get((syscall, True)), mine.get((syscall, False)), syscall in go
                )
            )
    return tuple(found)
