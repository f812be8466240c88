"""PrivateNetwork=: the workload reaches its own loopback, up, and nothing else; the route table from inside."""

import json
import sys
from pathlib import Path

from tests.profiler.enforcement.conftest import ENETUNREACH, NETWORK_PROBE, RunProfiler, host_address, write_unit


def _inside(run: RunProfiler, unit: Path) -> dict[str, object]:
    done = run("--policy", str(unit), "--", sys.executable, str(NETWORK_PROBE), host_address())
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_private_network_has_only_its_loopback_up(profiler_run: RunProfiler, tmp_path: Path) -> None:
    inside = _inside(profiler_run, write_unit(tmp_path, "[Service]\nPrivateNetwork=yes\n"))
    assert inside["links"] == {"lo": "up"}
    assert inside["routes"] == [["127.0.0.0", "lo"], ["127.0.0.1", "lo"], ["127.255.255.255", "lo"]]
    assert inside["loopback"] == "connected"
    assert inside["outside"] == str(ENETUNREACH)


def test_without_it_the_host_network_is_there(profiler_run: RunProfiler, tmp_path: Path) -> None:
    inside = _inside(profiler_run, write_unit(tmp_path, "[Service]\nPrivateNetwork=no\n"))
    assert set(inside["links"]) > {"lo"}  # type: ignore[arg-type]
    assert inside["outside"] != str(ENETUNREACH)
