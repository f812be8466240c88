"""How much recording slows a program: ratios to the untraced run measured in the same invocation.

Two workloads, each timing itself so that start-up is apart:
- dd copying a million bytes one at a time: a million one-byte reads and a million one-byte writes, the
  cheapest syscalls there are, back to back (the worst case);
- tar archiving /usr/share/doc and /usr/lib/python3 to a pipe (about 85,000 syscalls of every kind, with work
  between them), timed by the shell around it, after one untimed run to warm the page cache.
Each configuration runs ROUNDS times, interleaved, and the median counts. Also measured, for what they say:
- the floor: an empty eBPF program on the raw sys_enter tracepoint, which every per-syscall tracer pays;
- strace -f on dd, on a tenth of the bytes (a full run takes minutes), compared per byte.
Run as root: make bench.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from profiler.recording.session import record
from profiler.recording.targets import CommandTarget

ROUNDS = 7
BYTES = 1_000_000
STRACE_BYTES = 100_000


@dataclass(frozen=True)
class Workload:
    name: str
    command: Callable[[Path], list[str]]  # the command, writing its own timing to the report file
    seconds: Callable[[str], float]  # the timing, read back from the report


def dd_seconds(report: str) -> float:
    match = re.search(r"copied, ([0-9.]+) s", report)
    if not match:
        raise SystemExit(f"dd printed no timing: {report!r}")
    return float(match.group(1))


def dd(count: int) -> Workload:
    return Workload(
        f"dd, {count:,} one-byte reads and writes",
        lambda report: ["sh", "-c", f"exec dd if=/dev/zero of=/dev/null bs=1 count={count} 2>{report}"],
        dd_seconds,
    )


TAR = Workload(
    "tar of /usr/share/doc and /usr/lib/python3 to a pipe",
    lambda report: [
        "sh",
        "-c",
        "start=$(date +%s%N); tar cf - /usr/share/doc /usr/lib/python3 2>/dev/null | wc -c >/dev/null; "
        f'end=$(date +%s%N); echo $((end - start)) > "{report}"',
    ],
    lambda report: int(report) / 1e9,
)


def timed(run: Callable[[list[str]], None], workload: Workload) -> float:
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "timing.txt"
        run(workload.command(report))
        return workload.seconds(report.read_text())


def untraced(command: list[str]) -> None:
    subprocess.run(command, check=True)


startup: list[float] = []
building: list[float] = []


def under_profiler(command: list[str]) -> None:
    started = time.monotonic()
    recording = record(CommandTarget(tuple(command)))
    startup.append(recording.startup_s)
    building.append(time.monotonic() - started - recording.trace.run.duration_s - recording.startup_s)
    assert recording.trace.run.dropped.total == 0, recording.trace.run.dropped


class EmptyProbe:
    """The cost of the kernel's tracepoint path alone: an eBPF program that returns at once."""

    def __enter__(self) -> "EmptyProbe":
        import bcc  # the benchmark's own probe; profiler itself reaches bcc only through profiler.recording.tracer

        self.bpf = bcc.BPF(text=b"RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }")
        return self

    def __exit__(self, *exc: object) -> None:
        self.bpf.cleanup()


def under_empty_probe(command: list[str]) -> None:
    with EmptyProbe():
        subprocess.run(command, check=True)


def under_strace(command: list[str]) -> None:
    subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", *command], check=True)


RUNNERS = {"untraced": untraced, "profiler": under_profiler, "empty probe": under_empty_probe}


def measure(workload: Workload, rounds: int) -> dict[str, float]:
    """The median seconds of each runner on the workload, printed with its ratio to the untraced run."""
    runs: dict[str, list[float]] = {name: [] for name in RUNNERS}
    for _ in range(rounds):
        for name, runner in RUNNERS.items():
            runs[name].append(timed(runner, workload))
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    base = medians["untraced"]
    print(f"workload: {workload.name}; median of {rounds} runs each")
    for name, seconds in runs.items():
        median = medians[name]
        print(f"  {name:<12} {median:7.3f} s   {median / base:5.2f}x   ({', '.join(f'{s:.3f}' for s in seconds)})")
    print(f"  profiler against the empty probe: {medians['profiler'] / medians['empty probe']:.2f}x (its own share)")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--no-strace", action="store_true", help="skip strace, which takes a minute")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench: run as root (recording loads eBPF programs)")
    worst = measure(dd(BYTES), arguments.rounds)
    if not arguments.no_strace:
        strace = timed(under_strace, dd(STRACE_BYTES)) * BYTES / STRACE_BYTES
        note = f"(measured on {STRACE_BYTES:,} bytes, per byte)"
        print(f"  {'strace -f':<12} {strace:7.3f} s   {strace / worst['untraced']:5.0f}x   {note}")
    timed(untraced, TAR)  # warm the page cache
    measure(TAR, arguments.rounds)
    print(f"profiler start-up (compile and attach the eBPF program): median {statistics.median(startup):.2f} s")
    print(f"profiler trace building after the workload exits: median {statistics.median(building):.2f} s")
    print(f"target: at most 1.05x on dd; it costs {worst['profiler'] / worst['untraced']:.2f}x")


if __name__ == "__main__":
    main()
