"""How reading a deployed policy grows with its size: time and peak memory, as ratios to a baseline of the same size.

OCI profiles of one rule per line (the shape of issue 13's 100 MB profile) against json.loads of the same
text, which any reader must pay; units whose one SystemCallFilter= is continued over every line against
units of the same size with one setting per line. Each read runs in a fresh process, so its peak RSS is its
own. Reading is linear when the ratios stay flat as the size grows. No root needed:
python benchmarks/policy_read.py [--sizes 1 4 16].
"""

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
RULE = '    {"names": ["read", "write", "openat", "close"], "action": "SCMP_ACT_ALLOW", "comment": "1x by ls"},\n'
MEASURE = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {repository!r})
from generators.seccomp.oci import OciFormat
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
systemd = SystemdFormat(committed_syscall_groups())
text = Path(sys.argv[2]).read_text()
started = time.perf_counter()
if sys.argv[1] == "json":
    json.loads(text)
elif sys.argv[1] == "oci":
    OciFormat().parse(text, sys.argv[2])
else:
    systemd.read(Path(sys.argv[2]))
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(kind: str, path: Path) -> tuple[float, float]:
    """Seconds and peak MiB of reading the file in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE.format(repository=str(REPOSITORY)), kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, kib = done.stdout.split()
    return float(seconds), int(kib) / 1024


def oci_profile(path: Path, megabytes: float) -> Path:
    rules = RULE * int(megabytes * 1e6 / len(RULE))
    path.write_text(
        '{\n  "defaultAction": "SCMP_ACT_ERRNO",\n  "architectures": ["SCMP_ARCH_X86_64"],\n  "syscalls": [\n'
        + rules
        + '    {"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"}\n  ]\n}\n'
    )
    return path


def units(directory: Path, megabytes: float) -> tuple[Path, Path]:
    """A unit continued over every line, and one of the same size with a setting per line."""
    lines = int(megabytes * 1e6 / len("write \\\n"))
    continued = directory / "continued.service"
    continued.write_text("[Service]\nSystemCallFilter=read \\\n" + "write \\\n" * lines + "close\n")
    plain = directory / "plain.service"
    plain.write_text("[Service]\n" + "SystemCallFilter=write\n" * (lines * 8 // 23))
    return continued, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16], help="OCI profile sizes in MB")
    sizes = parser.parse_args().sizes
    resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))  # a regression must fail, not take the machine
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        print("OCI profile, one rule per line: reading against json.loads of the same text")
        print(f"{'MB':>6} {'json s':>8} {'read s':>8} {'time':>7} {'json MiB':>9} {'read MiB':>9} {'memory':>7}")
        for megabytes in sizes:
            profile = oci_profile(directory / "profile.json", megabytes)
            (json_s, json_mib), (read_s, read_mib) = measure("json", profile), measure("oci", profile)
            print(f"{megabytes:>6g} {json_s:>8.2f} {read_s:>8.2f} {read_s / json_s:>6.1f}× {json_mib:>9.0f} "
                  f"{read_mib:>9.0f} {read_mib / json_mib:>6.1f}×")  # fmt: skip
        print("\nsystemd unit continued over every line, against one of the same size with a setting per line")
        print(f"{'MB':>6} {'plain s':>8} {'cont. s':>8} {'time':>7}")
        for megabytes in (0.1, 0.3, 1.0):  # systemd refuses a line continued past 1 MiB, and so does the reader
            continued, plain = units(directory, megabytes)
            (plain_s, _), (continued_s, _) = measure("systemd", plain), measure("systemd", continued)
            print(f"{megabytes:>6g} {plain_s:>8.2f} {continued_s:>8.2f} {continued_s / plain_s:>6.1f}×")


if __name__ == "__main__":
    main()
