"""How long profiler.explore takes to load fifty traces into DataFrames, against json.load of the same files.

The fifty files are the committed traces under traces/ taken in turn (or those given on the command line).
Each measurement runs ROUNDS times and the median counts. Importing pandas and networkx, which a notebook pays
once, is timed apart. Run: .venv/bin/python benchmarks/explore_load.py [TRACE...]
"""

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from timing import ROUNDS, median_seconds

REPOSITORY = Path(__file__).resolve().parents[1]
LOADS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path, help="trace files [default: traces/*.trace.json]")
    arguments = parser.parse_args()
    sources = arguments.traces or sorted((REPOSITORY / "traces").glob("*.trace.json"))
    if not sources:
        sys.exit("no traces: give trace files, or run from a checkout with traces/")
    paths = list(itertools.islice(itertools.cycle(sources), LOADS))

    start = time.perf_counter()
    import networkx  # noqa: F401
    import pandas  # noqa: F401

    from profiler import explore

    imports = time.perf_counter() - start

    def plain_json() -> None:
        for path in paths:
            with path.open("rb") as file:
                json.load(file)

    plain = median_seconds(plain_json)
    tables = median_seconds(lambda: explore.load(paths))
    tree = median_seconds(lambda: explore.process_tree(explore.load(paths).processes))
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    print(f"{LOADS} traces ({megabytes:.1f} MB, from {len(sources)} files), median of {ROUNDS} rounds:")
    print(f"  json.load of each file           {plain * 1000:7.1f} ms")
    print(f"  explore.load (every table)       {tables * 1000:7.1f} ms   {tables / plain:5.1f}× json.load")
    print(f"  explore.load and process_tree    {tree * 1000:7.1f} ms   {tree / plain:5.1f}× json.load")
    print(f"  importing pandas, networkx       {imports * 1000:7.1f} ms   (once per process)")


if __name__ == "__main__":
    main()
