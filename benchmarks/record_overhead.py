"""How much recording slows a program: ratios to the untraced run measured in the same invocation.

Two workloads, each timing itself so that start-up is apart:
- dd copying a million bytes one at a time: a million one-byte reads and a million one-byte writes, the
  cheapest syscalls there are, back to back (the worst case);
- tar archiving /usr/share/doc and /usr/lib/python3 to a pipe (about 85,000 syscalls of every kind, with work
  between them), timed by the shell around it, after one untimed run to warm the page cache.
Each configuration runs ROUNDS times, interleaved, and the median counts. Beside profiler, on the same
workloads, what else measures the same:
- the floor: an empty eBPF program on the raw sys_enter tracepoint, which every per-syscall tracer pays;
- what a user would otherwise run: the bpftrace one-liner that counts syscalls per process (Debian's bpftrace,
  attached to the whole host as people run it), and strace -f (on dd, on a tenth of the bytes, since a full
  run takes minutes, compared per byte).
Then recording's own start and finish, apart from any workload: compiling, loading and attaching the eBPF
program (against compiling an empty one, BCC's floor, in the same run) and detaching it.
Run as root: make bench.
"""

import argparse
import cProfile
import os
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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


BPFTRACE_ONE_LINER = "tracepoint:raw_syscalls:sys_enter { @[comm, pid] = count(); }"


def under_bpftrace(command: list[str]) -> None:
    """The one-liner as people run it: attached to the host, the command run, then Ctrl-C prints the counts."""
    tracer = subprocess.Popen(
        ["bpftrace", "-e", BPFTRACE_ONE_LINER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert tracer.stdout is not None
    said = []  # bpftrace 0.17 may first say that it could not raise RLIMIT_MEMLOCK, which this kernel ignores
    while not (line := tracer.stdout.readline()).startswith("Attaching"):
        said.append(line)
        if not line or len(said) > 5:
            tracer.kill()
            raise SystemExit(f"bpftrace did not attach: {''.join(said)!r}")
    time.sleep(0.2)  # "Attaching" comes before the attach itself
    try:
        subprocess.run(command, check=True)
    finally:
        tracer.send_signal(signal.SIGINT)
        counts = tracer.stdout.read()
        tracer.wait()
    if "@[" not in counts:
        raise SystemExit(f"bpftrace counted nothing: {counts[:200]!r}")


RUNNERS = {
    "untraced": untraced,
    "profiler": under_profiler,
    "empty probe": under_empty_probe,
    "bpftrace": under_bpftrace,
}


def measure(workload: Workload, rounds: int, strace: bool = False) -> dict[str, float]:
    """The median seconds of each runner on the workload, printed with its ratio to the untraced run."""
    runners = {**RUNNERS, "strace -f": under_strace} if strace else RUNNERS
    runs: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            runs[name].append(timed(runner, workload))
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    base = medians["untraced"]
    print(f"workload: {workload.name}; median of {rounds} runs each")
    for name, seconds in runs.items():
        median = medians[name]
        print(f"  {name:<12} {median:7.3f} s   {median / base:5.2f}x   ({', '.join(f'{s:.3f}' for s in seconds)})")
    print(f"  profiler against the empty probe: {medians['profiler'] / medians['empty probe']:.2f}x (its own share)")
    print(f"  profiler against bpftrace's one-liner: {medians['profiler'] / medians['bpftrace']:.2f}x")
    return medians


def start_and_finish(rounds: int) -> None:
    """Recording's fixed costs, apart from any workload: the start (compile, load, attach) and the finish
    (detach), each against BCC compiling an empty program, measured in turn in this run. One more start, under
    cProfile, says where a start goes: BCC's BPF() compiles the program, then loads and attaches each probe
    (its _trace_autoload); the rest is profiler's (filling the free-row queue, giving back the compiler's memory)."""
    from profiler.recording.kernel_features import probe
    from profiler.recording.tracer import Tracer

    features = probe()
    starts, finishes, empty, removals = [], [], [], []
    watchers = []
    for _ in range(rounds):
        started = time.monotonic()
        tracer = Tracer(features)
        starts.append(time.monotonic() - started)
        started = time.monotonic()
        tracer.close()
        finishes.append(time.monotonic() - started)
        # The kernel's removal goes on in the grandchild, side by side with the next rounds (as back-to-back
        # recordings would): until it exits.
        watcher = threading.Thread(target=lambda pid=tracer.detaching, at=started: removals.append(gone(pid) - at))
        watcher.start()
        watchers.append(watcher)
        started = time.monotonic()
        with EmptyProbe():
            empty.append(time.monotonic() - started)
    for watcher in watchers:
        watcher.join()
    profile = cProfile.Profile()
    with profile:
        Tracer(features).close()
    spent = pstats.Stats(profile).stats  # (file, line, function): (calls, ..., own time, cumulative, callers)

    def cumulative(module: str, function: str) -> float:
        return max(row[3] for (path, _, name), row in spent.items() if path.endswith(module) and name == function)

    bpf = cumulative("bcc/__init__.py", "__init__")  # BPF(), the outermost __init__ there
    loading = cumulative("bcc/__init__.py", "_trace_autoload")
    compiling = bpf - loading
    own = cumulative("profiler/recording/tracer.py", "__init__") - bpf
    start, finish, floor = (statistics.median(each) for each in (starts, finishes, empty))
    print(
        f"recording start (compile, load and attach): median {start:.2f} s, {start / floor:.1f}x BCC compiling "
        f"an empty program ({floor:.2f} s) in this run; target 0.5 s ({', '.join(f'{s:.2f}' for s in starts)})"
    )
    print(
        f"  one start, profiled: compiling {compiling:.2f} s, loading and attaching the probes {loading:.3f} s, "
        f"profiler's own {own:.3f} s"
    )
    print(f"recording finish (detach): median {finish:.2f} s, target 0.3 s ({', '.join(f'{s:.2f}' for s in finishes)})")
    print(
        f"  the kernel's removal of the attachments, after the finish returned: "
        f"median {statistics.median(removals):.2f}"
        f" s ({', '.join(f'{s:.2f}' for s in sorted(removals))})"
    )


def gone(pid: int | None) -> float:
    """When the process exited (its /proc entry is gone), polled."""
    while pid is not None and Path(f"/proc/{pid}").exists():
        time.sleep(0.02)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--no-strace", action="store_true", help="skip strace, which takes a minute")
    parser.add_argument("--start-and-finish", action="store_true", help="only recording's start and finish")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench: run as root (recording loads eBPF programs)")
    if arguments.start_and_finish:
        start_and_finish(arguments.rounds)
        return
    worst = measure(dd(BYTES), arguments.rounds)
    if not arguments.no_strace:
        strace = timed(under_strace, dd(STRACE_BYTES)) * BYTES / STRACE_BYTES
        note = f"(measured on {STRACE_BYTES:,} bytes, per byte)"
        print(f"  {'strace -f':<12} {strace:7.3f} s   {strace / worst['untraced']:5.0f}x   {note}")
    timed(untraced, TAR)  # warm the page cache
    measure(TAR, arguments.rounds, strace=not arguments.no_strace)
    start_and_finish(arguments.rounds)
    print(f"profiler start-up (compile and attach the eBPF program): median {statistics.median(startup):.2f} s")
    print(f"profiler trace building after the workload exits: median {statistics.median(building):.2f} s")
    print(f"target: at most 1.05x on dd; it costs {worst['profiler'] / worst['untraced']:.2f}x")


if __name__ == "__main__":
    main()
