"""Recording 10,000 short processes run 8 at a time, and what that trace then costs to read.

`seq 10000 | xargs -P8 -n1 /bin/true` under the recorder, as a long attach to a service that runs many short
processes would be: what the kernel side dropped, the recorder's peak resident memory (measured in a process
that does what `profiler record` does: record, then save), the size of the trace, and the wall time of
`profiler show`, `generate` and `check` on it (median of a few runs, Python start-up included, as a user waits).
Each figure is printed beside its target; nothing is asserted. Run as root: make bench.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROCESSES = 10_000
PARALLEL = 8
ROUNDS = 3
TARGET_RSS_MB = 200
TARGET_TRACE_MB = 10
TARGET_COMMAND_S = 1.0

# Run in a child of its own, so that its peak resident size is the recorder's alone.
RECORD_AND_SAVE = """
import sys
from pathlib import Path
from profiler.recording.session import record
from profiler.recording.targets import CommandTarget

def peak_mb():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

recording = record(CommandTarget(("sh", "-c", sys.argv[2])))
recorded = peak_mb()
recording.trace.save(Path(sys.argv[1]), overwrite=True)
dropped = recording.trace.run.dropped
print(recorded, peak_mb(), recording.trace.run.duration_s, len(recording.trace.processes), dropped.total)
print(" ".join(f"{name}={getattr(dropped, name)}" for name in dropped.__dataclass_fields__))
"""


def profiler_seconds(*args: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "profiler.cli", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def verdict(value: float, target: float) -> str:
    return "meets the target" if value < target else "misses the target"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=PROCESSES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make bench: run as root (recording loads eBPF programs)")
    storm = f"seq {arguments.processes} | xargs -P{PARALLEL} -n1 /bin/true"
    with tempfile.TemporaryDirectory() as directory:
        trace = Path(directory) / "storm.trace.json"
        policy = Path(directory) / "storm.conf"
        result = subprocess.run(
            [sys.executable, "-c", RECORD_AND_SAVE, str(trace), storm], check=True, capture_output=True, text=True
        )
        figures, counters = result.stdout.splitlines()
        recorded_mb, saved_mb, duration_s, processes, dropped = figures.split()
        size_mb = trace.stat().st_size / 1e6
        print(f"workload: {storm}; {processes} processes recorded in {float(duration_s):.1f} s")
        print(f"  dropped by the kernel side  {dropped:>8}        target 0   ({counters})")
        print(
            f"  recorder peak RSS           {float(saved_mb):8.0f} MB     target < {TARGET_RSS_MB} MB: "
            f"{verdict(float(saved_mb), TARGET_RSS_MB)} ({float(recorded_mb):.0f} MB until the trace is saved)"
        )
        print(
            f"  trace size                  {size_mb:8.1f} MB     target < {TARGET_TRACE_MB} MB: "
            f"{verdict(size_mb, TARGET_TRACE_MB)}"
        )
        subprocess.run(
            [sys.executable, "-m", "profiler.cli", "generate", str(trace), "--format", "systemd", "-o", str(policy)],
            check=True,
            capture_output=True,
        )
        commands = {
            "show": ["show", str(trace)],
            "generate": ["generate", str(trace), "--format", "systemd"],
            "check": ["check", str(trace), "--policy", str(policy)],
        }
        for name, args in commands.items():
            seconds = profiler_seconds(*args, rounds=arguments.rounds)
            print(
                f"  profiler {name:<18} {seconds:8.2f} s      target < {TARGET_COMMAND_S:.0f} s: "
                f"{verdict(seconds, TARGET_COMMAND_S)} (median of {arguments.rounds})"
            )


if __name__ == "__main__":
    main()
