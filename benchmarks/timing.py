"""Timing shared by the benchmarks: the median of repeated runs, which one slow run does not move, and the
environment a command is timed in as people run it."""

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ROUNDS = 7


def median_seconds(work: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextmanager
def bytecode_cache(empty: bool = False) -> Iterator[dict[str, str]]:
    """An environment for new Python processes whose modules' bytecode is cached in a directory of this run's
    own (PYTHONPYCACHEPREFIX), which the first run fills, as Python does for people; or, empty, one where no
    bytecode is read or written, what a checkout's first run costs. Either way without the PYTHONDONTWRITEBYTECODE
    this environment may set: inherited, it had every run compile profiler's modules again (30 to 100 ms each)."""
    inherited = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as directory:
        yield {**inherited, "PYTHONPYCACHEPREFIX": directory} | ({"PYTHONDONTWRITEBYTECODE": "1"} if empty else {})
