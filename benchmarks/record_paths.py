"""What recording files and kernel interfaces costs: recorded with paths against recorded without (--no-paths),
measured in the same invocation, interleaved, with the unrecorded run as the base.

Two workloads, each timing itself so that recording's start-up is apart:
- tar of /usr/share/doc through a pipe to /dev/null (GNU tar skips reading files when its archive is /dev/null
  itself): thousands of opens, reads and closes, the file-heavy case. Target: paths/no-paths at most 1.05x.
- dd copying a million bytes one at a time: a syscall-bound loop of reads and writes, none of which the path
  recorder reads. Target: paths/no-paths unchanged (1.00x within noise).
The median of ROUNDS runs of each counts, of the time each workload reports and of its processes' CPU time
(user and system): the latter is what recording adds to the workload itself on a machine busy with other work.
Run as root: make bench.
"""

import argparse
import os
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from record_overhead import BYTES, Workload, dd, gone, timed, untraced

from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget
from profiler.recording.tracer import load_program

ROUNDS = 7
TARGET = 1.05

# One tar takes 0.12 s here, too short to tell 5% apart on this VM: the workload archives it TAR_TIMES times over
# (the same paths each time: what is new to the recorder is the first pass's).
TAR_TIMES = 5
TAR = Workload(
    f"tar of /usr/share/doc to /dev/null, {TAR_TIMES} times",
    lambda report: [
        "sh",
        "-c",
        f"start=$(date +%s%N); for i in $(seq {TAR_TIMES}); do tar cf - /usr/share/doc 2>/dev/null | cat >/dev/null;"
        f' done; end=$(date +%s%N); echo $((end - start)) > "{report}"',
    ],
    lambda report: int(report) / 1e9,
)


def recorded(paths: bool) -> Callable[[list[str]], None]:
    def run(command: list[str]) -> None:
        recording = record(CommandTarget(tuple(command)), RecordOptions(paths=paths))
        # The kernel removes the perf tracepoints for seconds after the recording (Tracer.close), and every
        # syscall of the host takes the slow path until it is done: the next run, whichever, starts after.
        gone(recording.detaching)
        trace = recording.trace
        dropped = trace.run.dropped  # what is compared is recorded whole (a kernel stack may collide: not compared)
        assert dropped.events == dropped.paths == dropped.kernel_uses == dropped.unresolved_paths == 0, dropped
        assert (trace.file_accesses is not None) == paths

    return run


def beside_an_empty_exit_program(run: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """run with an empty program on one syscalls:sys_exit_* tracepoint besides: the kernel's price for tracing any
    syscall's exit, paid at every syscall of every task whatever the program does (the floor of the path
    recorder, which reads 40 calls at their exit)."""

    def beside(command: list[str]) -> None:
        program = load_program("int nothing(void *ctx) { return 0; }")
        program.attach_tracepoint(tp=b"syscalls:sys_exit_openat", fn_name=b"nothing")
        try:
            run(command)
        finally:
            program.cleanup()  # its one perf event: removed before this returns

    return beside


RUNNERS = {
    "unrecorded": untraced,
    "recorded --no-paths": recorded(False),
    "  + an exit program": beside_an_empty_exit_program(recorded(False)),
    "recorded with paths": recorded(True),
}


def cpu_seconds() -> float:
    """The user and system time of this process's finished children: the workload's processes (the command's are
    profiler's children, and profiler records in this process), whatever else the machine runs meanwhile."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(workload: Workload, rounds: int) -> tuple[float, float]:
    """Prints each configuration's median elapsed and CPU time with their ratios to the unrecorded run; returns
    paths/no-paths of both."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNNERS}
    for _ in range(rounds):
        for name, runner in RUNNERS.items():
            before = cpu_seconds()
            elapsed = timed(runner, workload)
            runs[name].append((elapsed, cpu_seconds() - before))
    medians = {
        name: tuple(statistics.median(each) for each in zip(*seconds, strict=True)) for name, seconds in runs.items()
    }
    base_elapsed, base_cpu = medians["unrecorded"]
    print(f"workload: {workload.name}; median of {rounds} runs each, elapsed and the workload's CPU time")
    for name, seconds in runs.items():
        elapsed, cpu = medians[name]
        print(
            f"  {name:<20} {elapsed:7.3f} s {elapsed / base_elapsed:5.2f}x   cpu {cpu:7.3f} s {cpu / base_cpu:5.2f}x"
            f"   ({', '.join(f'{e:.3f}' for e, _ in seconds)})"
        )
    paths, no_paths = medians["recorded with paths"], medians["recorded --no-paths"]
    floor = medians["  + an exit program"]
    ratios = (paths[0] / no_paths[0], paths[1] / no_paths[1])
    print(
        f"  paths against --no-paths: elapsed {ratios[0]:.3f}x, cpu {ratios[1]:.3f}x; against --no-paths with an"
        f" empty exit program: elapsed {paths[0] / floor[0]:.3f}x, cpu {paths[1] / floor[1]:.3f}x"
    )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench: run as root (recording loads eBPF programs)")
    if not Path("/usr/share/doc").is_dir():
        sys.exit("record_paths: no /usr/share/doc to archive")
    timed(untraced, TAR)  # warm the page cache
    tar = measure(TAR, arguments.rounds)
    syscall_bound = measure(dd(BYTES), arguments.rounds)
    print(
        f"target: paths at most {TARGET:.2f}x of --no-paths on tar: elapsed {tar[0]:.3f}x, cpu {tar[1]:.3f}x; "
        f"dd unchanged: elapsed {syscall_bound[0]:.3f}x, cpu {syscall_bound[1]:.3f}x"
    )


if __name__ == "__main__":
    main()
