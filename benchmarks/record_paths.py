"""What recording files and kernel interfaces costs: recorded with paths against recorded without (--no-paths),
measured in the same invocation, interleaved, with the unrecorded run as the base.

Two workloads, each timing itself so that recording's start-up is apart:
- tar of /usr/share/doc through a pipe to /dev/null (GNU tar skips reading files when its archive is /dev/null
  itself): thousands of opens, reads and closes, the file-heavy case. Target: paths/no-paths at most 1.05x.
- dd copying a million bytes one at a time: a syscall-bound loop of reads and writes, none of which the path
  recorder reads. Target: paths/no-paths unchanged (1.00x within noise).
The median of ROUNDS runs of each counts. Run as root: make bench.
"""

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from record_overhead import BYTES, Workload, dd, timed, untraced

from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget

ROUNDS = 7
TARGET = 1.05

TAR = Workload(
    "tar of /usr/share/doc to /dev/null",
    lambda report: [
        "sh",
        "-c",
        "start=$(date +%s%N); tar cf - /usr/share/doc 2>/dev/null | cat >/dev/null; "
        f'end=$(date +%s%N); echo $((end - start)) > "{report}"',
    ],
    lambda report: int(report) / 1e9,
)


def recorded(paths: bool) -> Callable[[list[str]], None]:
    def run(command: list[str]) -> None:
        trace = record(CommandTarget(tuple(command)), RecordOptions(paths=paths)).trace
        assert trace.run.dropped.total == 0, trace.run.dropped
        assert (trace.file_accesses is not None) == paths

    return run


RUNNERS = {"unrecorded": untraced, "recorded --no-paths": recorded(False), "recorded with paths": recorded(True)}


def measure(workload: Workload, rounds: int) -> float:
    """Prints each configuration's median with its ratio to the unrecorded run; returns paths/no-paths."""
    runs: dict[str, list[float]] = {name: [] for name in RUNNERS}
    for _ in range(rounds):
        for name, runner in RUNNERS.items():
            runs[name].append(timed(runner, workload))
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    base = medians["unrecorded"]
    print(f"workload: {workload.name}; median of {rounds} runs each")
    for name, seconds in runs.items():
        median = medians[name]
        print(f"  {name:<20} {median:7.3f} s   {median / base:5.2f}x   ({', '.join(f'{s:.3f}' for s in seconds)})")
    ratio = medians["recorded with paths"] / medians["recorded --no-paths"]
    print(f"  paths against --no-paths: {ratio:.3f}x")
    return ratio


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
    print(f"target: paths at most {TARGET:.2f}x of --no-paths on tar: {tar:.3f}x; dd unchanged: {syscall_bound:.3f}x")


if __name__ == "__main__":
    main()
