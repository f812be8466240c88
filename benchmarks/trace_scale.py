"""Where the time goes when profiler reads a trace of 10,000 processes: writing, loading, a profile, a summary.

The trace is tests/fixtures/traces/xargs-true.trace.json, a recording of `sh -c 'seq 3 | xargs -P8 -n1
/bin/true'`, with its /bin/true process repeated until there are 10,000 processes: what recording
`seq 10000 | xargs -P8 -n1 /bin/true` gives, without root. benchmarks/record_storm.py records the real one
and times the whole commands against their targets (trace under 10 MB, show, generate and check under 1 s);
this one says what each takes inside them, as the library does it (median of ROUNDS; the cyclic collector off,
as in the commands), beside json.load of the same file.
Run: .venv/bin/python benchmarks/trace_scale.py [TRACE]   (TRACE: measure that trace instead)
"""

import argparse
import dataclasses
import gc
import json
import tempfile
from pathlib import Path

from timing import ROUNDS, median_seconds

from generators.profile import build_profile
from profiler import show, trace
from profiler.trace import Trace

REPOSITORY = Path(__file__).resolve().parents[1]
TEMPLATE = REPOSITORY / "tests" / "fixtures" / "traces" / "xargs-true.trace.json"
PROCESSES = 10_000


def storm(template: Trace, processes: int) -> Trace:
    """template with the rows of its last process repeated, renumbered, until there are this many processes."""
    last = template.processes[-1]
    copies = range(last.id + 1, processes + 1)
    return dataclasses.replace(
        template,
        processes=template.processes + tuple(last._replace(id=number) for number in copies),
        syscalls=template.syscalls
        + tuple(
            use._replace(process=number) for number in copies for use in template.syscalls if use.process == last.id
        ),
        capability_checks=template.capability_checks
        + tuple(
            check._replace(process=number)
            for number in copies
            for check in template.capability_checks
            if check.process == last.id
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", type=Path, help="a trace to measure [default: the storm above]")
    given = parser.parse_args().trace
    gc.disable()
    with tempfile.TemporaryDirectory() as scratch:
        path = given or Path(scratch) / "storm.trace.json"
        if given is None:
            storm(trace.load(TEMPLATE), PROCESSES).save(path)
        loaded = trace.load(path)
        rows = f"{len(loaded.syscalls):,} syscall rows, {len(loaded.capability_checks):,} capability checks"
        print(f"{path.name}: {len(loaded.processes):,} processes, {rows}; median of {ROUNDS} rounds")
        print(f"  size                     {path.stat().st_size / 1e6:6.2f} MB")
        plain = median_seconds(lambda: json.loads(path.read_bytes()))
        print(f"  json.loads (for scale)   {plain:6.2f} s")
        for name, work in (
            ("trace.load", lambda: trace.load(path)),
            ("Trace.to_json", loaded.to_json),
            ("build_profile", lambda: build_profile([(path.name, loaded)])),
            ("show.render_summary", lambda: show.render_summary(loaded, path.name)),
        ):
            seconds = median_seconds(work)
            print(f"  {name:<24} {seconds:6.2f} s   {seconds / plain:4.1f}x json.loads")


if __name__ == "__main__":
    main()
