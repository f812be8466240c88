"""An enforced run names the capabilities and paths its confinement refused, not only the syscalls: a real program
is refused by one setting, and the report (text and --report JSON) names the capability or path, the program and
that setting; without the setting the same program succeeds and nothing is named."""

import json
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiler import byte_strings
from tests.profiler.enforcement.conftest import (
    EACCES,
    ENETUNREACH,
    ENOENT,
    EPERM,
    EROFS,
    PROBE,
    PYTHON,
    RunProfiler,
    host_address,
    write_unit,
)

pytestmark = [pytest.mark.tracing, pytest.mark.usefixtures("tracing_available")]
PROGRAM = os.path.realpath(PYTHON)  # named as /proc/PID/exe names it, as a refused syscall's program is


def _run(run: RunProfiler, tmp_path: Path, unit: str, *probe: str) -> tuple[int, list[str], list[dict[str, object]]]:
    report = tmp_path / "report.json"
    done = run(
        "--policy", str(write_unit(tmp_path, "[Service]\n" + unit)), "--report", str(report), "--force", "--",
        PYTHON, str(PROBE), *probe,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("refused: ")]
    return done.returncode, lines, list(json.loads(report.read_text())["refused"])


def test_a_capability_out_of_the_bounding_set_is_named(profiler_run: RunProfiler, tmp_path: Path) -> None:
    status, lines, refused = _run(profiler_run, tmp_path, "CapabilityBoundingSet=~CAP_NET_RAW\n", "af-packet")
    assert status == EPERM
    # The kernel function that asked is named too; its name is the kernel's own, and may change between versions.
    assert [line.split(" (asked by ")[0] for line in lines] == [
        f"refused: CAP_NET_RAW by {PROGRAM}, 1x, from CapabilityBoundingSet="
    ], lines
    assert [{**each, "asked_by": None} for each in refused] == [
        {
            "kind": "capability",
            "capability": "CAP_NET_RAW",
            "program": PROGRAM,
            "count": 1,
            "setting": "CapabilityBoundingSet=",
            "asked_by": None,
        }
    ]
    assert "packet" in str(refused[0]["asked_by"])
    assert _run(profiler_run, tmp_path, "", "af-packet")[:2] == (0, [])


def test_a_capability_a_user_is_not_given_is_named(profiler_run: RunProfiler, tmp_path: Path) -> None:
    unit = "User=nobody\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
    status, lines, _ = _run(profiler_run, tmp_path, unit, "bind-80")
    assert status == EACCES
    assert (
        f"refused: CAP_NET_BIND_SERVICE by {PROGRAM}, 1x, "
        "from User=nobody without AmbientCapabilities=CAP_NET_BIND_SERVICE"
    ) in [line.split(" (asked by ")[0] for line in lines], lines
    assert _run(profiler_run, tmp_path, unit + "AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "bind-80")[:2] == (0, [])


def test_a_write_to_a_read_only_path_is_named(
    profiler_run: RunProfiler, tmp_path: Path, shared_dirs: tuple[Path, Path]
) -> None:
    writable, other = shared_dirs
    target = other / "written"
    unit = f"ProtectSystem=strict\nReadWritePaths={writable}\n"
    status, lines, refused = _run(profiler_run, tmp_path, unit, "write", str(target))
    assert status == EROFS
    assert lines == [f"refused: write to {target} by {PROGRAM}, 1x, EROFS from ProtectSystem=strict"], lines
    assert refused == [
        {
            "kind": "path",
            "operation": "write to",
            "path": str(target),
            "syscall": "openat",
            "program": PROGRAM,
            "count": 1,
            "errno": "EROFS",
            "setting": "ProtectSystem=strict",
        }
    ]
    unit = f"ProtectSystem=strict\nReadWritePaths={other}\n"
    assert _run(profiler_run, tmp_path, unit, "write", str(target))[:2] == (0, [])
    assert target.read_text() == "escaped\n"


@pytest.mark.parametrize("user", ["nobody", None])
def test_a_file_closed_to_the_user_is_named_after_the_user(
    profiler_run: RunProfiler, tmp_path: Path, shared_dirs: tuple[Path, Path], user: str | None
) -> None:
    _, other = shared_dirs
    secret = other / "secret"
    secret.write_text("root only\n")
    os.chmod(secret, 0o600)
    status, lines, _ = _run(profiler_run, tmp_path, f"User={user}\n" if user else "", "read", str(secret))
    if user is None:
        assert (status, lines) == (0, [])
    else:
        assert status == EACCES
        assert f"refused: read of {secret} by {PROGRAM}, 1x, EACCES from User=nobody (the file's permissions)" in lines


@pytest.fixture
def host_device() -> Iterator[Path]:
    """A device node of the host's /dev that PrivateDevices= leaves out: a second /dev/null, made for the test."""
    node = Path("/dev") / f"profiler-run-test-{secrets.token_hex(4)}"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    yield node
    node.unlink()


def test_a_device_private_devices_leaves_out_is_named(
    profiler_run: RunProfiler, tmp_path: Path, host_device: Path
) -> None:
    status, lines, refused = _run(profiler_run, tmp_path, "PrivateDevices=yes\n", "read", str(host_device))
    assert status == ENOENT
    assert lines == [f"refused: read of {host_device} by {PROGRAM}, 1x, ENOENT from PrivateDevices=yes"], lines
    assert [(each["kind"], each["errno"], each["setting"]) for each in refused] == [
        ("path", "ENOENT", "PrivateDevices=yes")
    ]
    assert _run(profiler_run, tmp_path, "", "read", str(host_device))[:2] == (0, [])
    # A file missing on the host too is everyday, not a refusal.
    assert _run(profiler_run, tmp_path, "PrivateDevices=yes\n", "read", f"{host_device}-missing")[:2] == (ENOENT, [])


def test_a_connection_the_private_network_has_no_route_for_is_named(profiler_run: RunProfiler, tmp_path: Path) -> None:
    host = host_address()
    status, lines, refused = _run(profiler_run, tmp_path, "PrivateNetwork=yes\n", "connect", host)
    assert status == ENETUNREACH
    assert lines == [f"refused: connect to {host}:80 by {PROGRAM}, 1x, ENETUNREACH from PrivateNetwork=yes"], lines
    assert [(each["kind"], each["address"]) for each in refused] == [("connect", f"{host}:80")]
    status, lines, _ = _run(profiler_run, tmp_path, "", "connect", host)
    assert status != ENETUNREACH and lines == []


def test_a_hostile_path_is_escaped_for_people_and_a_byte_string_in_json(
    profiler_run: RunProfiler, tmp_path: Path, shared_dirs: tuple[Path, Path]
) -> None:
    writable, other = shared_dirs
    target = os.fsdecode(os.fsencode(str(other)) + b"/bad\n\x1b[31mname\xff")  # a newline, an escape, not UTF-8
    status, lines, _ = _run(
        profiler_run, tmp_path, f"ProtectSystem=strict\nReadWritePaths={writable}\n", "write", target
    )
    assert status == EROFS
    assert lines == [
        f"refused: write to {other}/bad\\n\\x1b[31mname\\xff by {PROGRAM}, 1x, EROFS from ProtectSystem=strict"
    ]
    text = (tmp_path / "report.json").read_text()
    assert "\\udc" not in text  # no lone surrogate, which strict JSON parsers refuse
    assert json.loads(text)["refused"][0]["path"] == byte_strings.encode(target)


def test_a_file_of_the_hosts_var_tmp_that_private_tmp_hides_is_named(profiler_run: RunProfiler, tmp_path: Path) -> None:
    with tempfile.NamedTemporaryFile(dir="/var/tmp", prefix="profiler-run-test-") as shared:
        status, lines, _ = _run(profiler_run, tmp_path, "PrivateTmp=yes\n", "read", shared.name)
        assert status == ENOENT
        assert lines == [f"refused: read of {shared.name} by {PROGRAM}, 1x, ENOENT from PrivateTmp=yes"], lines
        assert _run(profiler_run, tmp_path, "", "read", shared.name)[:2] == (0, [])


def test_refusals_past_a_full_table_are_counted_and_said(profiler_run: RunProfiler, tmp_path: Path) -> None:
    writes = "for n in range(5000):\n    try: open(f'/etc/profiler-run-test-{n}', 'w')\n    except OSError: pass"
    report = tmp_path / "report.json"
    policy = write_unit(tmp_path, "[Service]\nProtectSystem=strict\n")
    done = profiler_run("--policy", str(policy), "--report", str(report), "--", PYTHON, "-c", writes)
    assert done.returncode == 0, done.stderr
    document = json.loads(report.read_text())
    named = [each for each in document["refused"] if each["kind"] == "path" and each["errno"] == "EROFS"]
    # The watch keeps 4096 distinct refusals (refusal_watch.ENTRIES); the rest are counted, and said to be.
    assert len(named) + document["uncounted"] >= 5000 and document["uncounted"] > 0
    assert f"profiler: {document['uncounted']} more refusals were seen and not named" in done.stderr
    # For people, the most frequent of each kind, and how many more --report lists.
    shown = [line for line in done.stderr.splitlines() if line.startswith("refused: write to ")]
    assert len(shown) == 40 and f"refused: {len(named) - 40} more path refusals (" in done.stderr
