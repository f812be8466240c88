"""How long generate and check take on each committed trace, as ratios to loading the trace.

Per trace, the median of ROUNDS runs of: loading and validating the file; building its profile; rendering it in
each format; comparing it with the README's example unit (check). Generating is the profile plus one render,
and its ratio to the load says what generate adds to reading the file. Then the wall time of the whole
`profiler generate` and `profiler check` commands, Python start-up and imports included, which is what a user
waits for. No root needed: python benchmarks/generate_speed.py [--format systemd ...].
"""

import argparse
import subprocess
import sys
from functools import partial
from pathlib import Path

from timing import ROUNDS, bytecode_cache, median_seconds

from generators import formats
from generators.compare import compare
from generators.interface import PolicyFormat, RenderOptions
from generators.profile import build_profile
from profiler import trace
from profiler.pipeline import read_policy

REPOSITORY = Path(__file__).resolve().parents[1]
UNIT = REPOSITORY / "examples" / "git-clone.service"


def command_seconds(*args: str) -> float:
    with bytecode_cache() as environment:
        argv = [sys.executable, "-m", "profiler.cli", *args]
        subprocess.run(argv, env=environment, check=False, capture_output=True)  # writes the bytecode
        return median_seconds(lambda: subprocess.run(argv, env=environment, check=False, capture_output=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--format", action="append", choices=[each.value for each in PolicyFormat], help="[default: every format]"
    )
    selected = [PolicyFormat(each) for each in parser.parse_args().format or PolicyFormat]
    policy = read_policy(UNIT)
    options = RenderOptions()
    print(f"median of {ROUNDS} rounds; ratios are to loading the trace")
    print(f"{'trace':<28} {'KiB':>5} {'load ms':>8} {'profile ms':>10} " + " ".join(f"{f.value:>8}" for f in selected)
          + f" {'check ms':>8}")  # fmt: skip
    for path in sorted((REPOSITORY / "traces").glob("*.trace.json")):
        loaded = [(path.name, trace.load(path))]
        profile = build_profile(loaded)
        load_s = median_seconds(partial(trace.load, path))
        profile_s = median_seconds(partial(build_profile, loaded))
        ratios = []
        for chosen in selected:
            render_s = median_seconds(partial(formats.renderer(chosen).render, profile, options))
            ratios.append(f"{(profile_s + render_s) / load_s:>7.2f}×")
        check_s = median_seconds(partial(compare, profile, policy))
        name = path.name.removesuffix(".trace.json")
        print(
            f"{name:<28} {path.stat().st_size / 1024:>5.0f} {load_s * 1000:>8.2f} {profile_s * 1000:>10.2f} "
            f"{' '.join(ratios)} {check_s * 1000:>8.2f}"
        )
    largest = str(max((REPOSITORY / "traces").glob("*.trace.json"), key=lambda path: path.stat().st_size))
    print(f"\nwhole commands on {Path(largest).name}, Python start-up included:")
    for chosen in selected:
        seconds = command_seconds("generate", "--format", chosen.value, largest)
        print(f"  profiler generate --format {chosen.value:<9} {seconds:.2f} s")
    print(f"  profiler check --policy {UNIT.name}  {command_seconds('check', '--policy', str(UNIT), largest):.2f} s")
    print(f"  profiler show (for scale)             {command_seconds('show', largest):.2f} s")


if __name__ == "__main__":
    main()
