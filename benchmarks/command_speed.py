"""How long each command that does not record takes, whole (start, imports, work, exit), on a committed trace.

Each is run as people run it, the `profiler` of this environment as a new process with its modules' bytecode
cached, ROUNDS times interleaved with the baselines, and the median counts: Python doing nothing (`-c pass`,
Debian's /usr/bin/python3 and this venv's), in the same run, since this machine's speed varies by the minute.
The target is 0.15 s for each. The bytecode is this run's own (timing.bytecode_cache), written by one untimed
round. Also measured: the same command with no bytecode to read at all, what a checkout's first run costs.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import bytecode_cache

ROUNDS = 9
TARGET_S = 0.15
REPOSITORY = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRACE = "traces/git-clone.trace.json"
POLICY = "examples/corrected/git-clone.service"
COMMANDS = {
    "show": ["show", TRACE],
    "generate": ["generate", "--format", "systemd", TRACE],
    "check": ["check", "--policy", POLICY, TRACE],
    "diff": ["diff", "traces/git-clone-bare.trace.json", TRACE],
    "explain": ["explain", TRACE, "openat"],
    "schema": ["schema"],
    "lint": ["lint", POLICY],
}


def seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=REPOSITORY, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    arguments = parser.parse_args()
    runs: dict[str, list[float]] = {}
    baselines = {
        "/usr/bin/python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
        "venv python -c pass": [str(BIN / "python"), "-c", "pass"],
    }
    argvs = {**baselines, **{name: [str(BIN / "profiler"), *args] for name, args in COMMANDS.items()}}
    with bytecode_cache() as cached:
        for argv in argvs.values():  # writes the bytecode
            seconds(argv, cached)
        for _ in range(arguments.rounds):
            for name, argv in argvs.items():
                runs.setdefault(name, []).append(seconds(argv, cached))
    with bytecode_cache(empty=True) as cold:
        without_bytecode = statistics.median(seconds(argvs["show"], cold) for _ in range(3))
    medians = {name: statistics.median(each) for name, each in runs.items()}
    floor = medians["venv python -c pass"]
    print(f"each command whole, on {TRACE}; median of {arguments.rounds} runs each; target {TARGET_S:.2f} s")
    for name, median in medians.items():
        verdict = "" if name in baselines else ("  ok" if median <= TARGET_S else "  over the target")
        print(f"  {name:<26} {median * 1000:6.0f} ms  {median / floor:5.1f}x the venv's python{verdict}")
    cold_ms = without_bytecode * 1000
    print(f"  show with no bytecode to read (a fresh checkout, PYTHONDONTWRITEBYTECODE=1): {cold_ms:.0f} ms")


if __name__ == "__main__":
    main()
