"""What record writes: bytes that are not UTF-8 kept, the owner alone reading it, deep trees shown, and a full
disk costing no trace."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from profiler import trace as trace_module
from tests.profiler.recording.conftest import profiler_cli

PROFILER = [os.fsencode(sys.executable), b"-m", b"profiler.cli"]


def test_a_program_and_an_argument_that_are_not_utf_8_come_back_as_their_bytes(tmp_path: Path) -> None:
    directory = os.fsencode(tmp_path) + b"/d\xffir"
    os.mkdir(directory)
    program = directory + b"/ech\xe9"
    shutil.copy(b"/bin/echo", program)
    output = tmp_path / "bytes.trace.json"
    argument = b"caf\xe9 \\x41 \x01"
    previous = os.umask(0o022)
    try:
        result = subprocess.run([*PROFILER, b"record", b"-o", os.fsencode(output), b"--", program, argument])
    finally:
        os.umask(previous)
    assert result.returncode == 0
    loaded = trace_module.load(output)
    assert [os.fsencode(part) for part in loaded.run.command] == [program, argument]
    image = loaded.processes[0].images[0]
    # argv0 as far as the tracer reads it (its first 63 bytes)
    assert os.fsencode(image.path) == program and program.startswith(os.fsencode(image.argv0 or "-"))
    assert os.fsencode(loaded.run.component) == b"ech\xe9"
    assert output.read_bytes().isascii() or output.read_text(encoding="utf-8")  # UTF-8 text, whatever the bytes
    assert stat.S_IMODE(output.stat().st_mode) == 0o600


def test_a_chain_of_a_thousand_processes_is_shown(tmp_path: Path) -> None:
    script = tmp_path / "deeper.sh"
    script.write_text('[ "$1" -gt 0 ] && sh "$0" $(($1 - 1))\nexit 0\n')
    output = tmp_path / "chain.trace.json"
    recorded = profiler_cli("record", "-o", str(output), "--", "sh", str(script), "999")
    assert recorded.returncode == 0, recorded.stderr
    assert len(trace_module.load(output).processes) >= 1000
    shown = profiler_cli("show", str(output))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count(" /usr/bin/sh  [pid") + shown.stdout.count(" /bin/sh  [pid") >= 1000


# In a mount namespace of its own (nothing outside sees it), the output directory and every rescue directory are
# file systems of two pages, full before the recording ends, but for those the case gives room. The checkout that
# runs the test (a clone in /tmp, say) is bound back where it was, so that covering its directory does not hide it.
FULL_DISKS = r"""
set -e
repository=$(pwd)
fill() {
    mount -t tmpfs -o size=8k tmpfs "$1"
    case "$repository/" in "$1"/*) mkdir -p "$repository" && mount --bind /mnt/repository "$repository";; esac
    cat /dev/zero > "$1/filler" 2>/dev/null || true
}
mount -t tmpfs tmpfs /mnt
mkdir /mnt/out /mnt/repository
mount --bind "$repository" /mnt/repository
for where in /mnt/out /tmp /var/tmp /dev/shm; do fill "$where"; done
for where in $ROOM; do umount "$where"; mount -t tmpfs -o size=16m tmpfs "$where"; done
exec "$@"
"""


RECORD_TRUE = [sys.executable, "-m", "profiler.cli", "record", "-o", "/mnt/out/full.trace.json", "--", "true"]


def record_on_full_disks(room: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", FULL_DISKS, "sh", *RECORD_TRUE],
        env={**os.environ, "ROOM": room, "TMPDIR": "/tmp"},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )


def test_a_full_disk_sends_the_trace_to_the_next_place_with_room() -> None:
    result = record_on_full_disks("/var/tmp")
    assert result.returncode == 2, result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith("profiler: error: /mnt/out/full.trace.json: cannot write: No space left on device; ")
    assert "/tmp/full.trace.json: cannot write" in line
    assert line.endswith("; the trace was saved to /var/tmp/full.trace.json instead")


def test_when_no_place_has_room_every_failure_is_named() -> None:
    result = record_on_full_disks("")
    assert result.returncode == 2, result.stderr
    line = result.stderr.splitlines()[-1]
    for place in ("/mnt/out/", "/tmp/", "/var/tmp/", "/dev/shm/"):
        assert f" {place}" in line
    assert line.count("No space left on device") == 4
    assert line.endswith("; the trace could not be saved anywhere")


def test_a_working_directory_that_is_gone_is_one_line_before_recording(tmp_path: Path) -> None:
    """Else libbcc, which compiles in the kernel headers directory, would leave the relative trace name there."""
    gone = tmp_path / "gone"
    script = (
        f"mkdir {gone} && cd {gone} && rmdir {gone} && exec {sys.executable} -m profiler.cli record -o t.json -- true"
    )
    result = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    assert (result.returncode, result.stderr) == (
        2,
        "profiler: error: the working directory no longer exists: cd to one, or give -o an absolute path\n",
    )
