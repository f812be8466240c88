"""Timing shared by the benchmarks: the median of repeated runs, which one slow run does not move."""

import statistics
import time
from collections.abc import Callable

ROUNDS = 7


def median_seconds(work: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
