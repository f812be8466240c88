"""How much recording slows a syscall-bound program: ratios to the untraced run measured in the same invocation.

The workload is dd copying a million bytes one at a time (a million one-byte reads and a million one-byte
writes) and timing itself, so start-up is apart. Each configuration runs ROUNDS times, interleaved, and the
median counts. Also measured, for what they say about the numbers:
- the floor: an empty eBPF program on the raw sys_enter tracepoint, which every per-syscall tracer pays;
- strace -f, on a tenth of the bytes (a full run takes minutes), compared per byte.
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
from pathlib import Path

from profiler.recorder import CommandTarget, record

ROUNDS = 7
BYTES = 1_000_000
STRACE_BYTES = 100_000


def dd_command(count: int, report: Path) -> list[str]:
    return ["sh", "-c", f"exec dd if=/dev/zero of=/dev/null bs=1 count={count} 2>{report}"]


def dd_seconds(report: Path) -> float:
    match = re.search(r"copied, ([0-9.]+) s", report.read_text())
    if not match:
        raise SystemExit(f"dd printed no timing: {report.read_text()!r}")
    return float(match.group(1))


def timed(run: Callable[[list[str]], None], count: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "dd.txt"
        run(dd_command(count, report))
        return dd_seconds(report)


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
        import bcc  # the benchmark's own probe; profiler itself reaches bcc only through profiler.tracer

        self.bpf = bcc.BPF(text=b"RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }")
        return self

    def __exit__(self, *exc: object) -> None:
        self.bpf.cleanup()


def under_empty_probe(command: list[str]) -> None:
    with EmptyProbe():
        subprocess.run(command, check=True)


def under_strace(command: list[str]) -> None:
    subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", *command], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--no-strace", action="store_true", help="skip strace, which takes a minute")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench: run as root (recording loads eBPF programs)")
    runs: dict[str, list[float]] = {"untraced": [], "profiler": [], "empty probe": []}
    for _ in range(arguments.rounds):
        runs["untraced"].append(timed(untraced, BYTES))
        runs["profiler"].append(timed(under_profiler, BYTES))
        runs["empty probe"].append(timed(under_empty_probe, BYTES))
    base = statistics.median(runs["untraced"])
    print(f"workload: dd, {BYTES:,} one-byte reads and writes, timed by dd; median of {arguments.rounds} runs each")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        print(f"  {name:<12} {median:7.3f} s   {median / base:5.2f}x   ({', '.join(f'{s:.3f}' for s in seconds)})")
    if not arguments.no_strace:
        strace = timed(under_strace, STRACE_BYTES) * BYTES / STRACE_BYTES
        note = f"(measured on {STRACE_BYTES:,} bytes, per byte)"
        print(f"  {'strace -f':<12} {strace:7.3f} s   {strace / base:5.0f}x   {note}")
    print(f"profiler start-up (compile and attach the eBPF program): median {statistics.median(startup):.2f} s")
    print(f"profiler trace building after the workload exits: median {statistics.median(building):.2f} s")
    floor = statistics.median(runs["empty probe"])
    print(
        f"target: at most 1.05x. An empty program on the same tracepoint costs {floor / base:.2f}x here; "
        f"profiler against it: {statistics.median(runs['profiler']) / floor:.2f}x (its own share)"
    )


if __name__ == "__main__":
    main()
