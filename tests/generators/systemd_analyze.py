"""systemd as the oracle of the systemd format: its reading of a unit (systemd-analyze), and units it runs."""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from generators.interface import Policy
from generators.systemd.groups import SyscallGroups
from profiler import abi, syscalls

_WARNING = re.compile(r"^(?P<file>/[^:]+):(?P<line>\d+): (?P<message>.*)$")
_REFUSED = re.compile(
    r"^\S+: Unit configuration has fatal error, unit will not be started\.$|^Unit \S+ has a bad unit file setting\.$"
)
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (?P<score>[0-9.]+)")
_UNIT = "[Unit]\nDescription=profiler test\n[Service]\nExecStart=/bin/true\n"


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *arguments], capture_output=True, text=True, timeout=60, check=False)


@dataclass(frozen=True, slots=True)
class Warning:
    file: str
    line: int
    message: str


def verify_warnings(unit: Path) -> list[Warning]:
    """What `systemd-analyze verify` says about a unit and its drop-ins: file:line warnings, and any other line."""
    done = run("verify", str(unit))
    warnings = []
    for line in (done.stdout + done.stderr).splitlines():
        if _REFUSED.match(line):  # the summary after a fatal file:line warning, which names the line
            continue
        match = _WARNING.match(line)
        warnings.append(Warning(match["file"], int(match["line"]), match["message"]) if match else Warning("", 0, line))
    return warnings


class UnitRefused(Exception):
    """systemd will not load the unit (a fatal error in it), so it has no reading to compare with."""


def security_checks(unit: Path, root: Path | None = None) -> dict[str, bool]:
    """`systemd-analyze security --offline=true`: each check's name, and whether the unit passes it; with root,
    as the host booting that root would load the unit (its unit search path under root)."""
    done = run(*([f"--root={root}"] if root else []), "security", "--offline=true", "--json=short", str(unit))
    if done.returncode != 0 and "Unit configuration has fatal error" in done.stderr:
        raise UnitRefused(done.stderr.strip())
    return {check["name"]: bool(check["set"]) for check in json.loads(done.stdout)}


def exposure(unit: Path) -> float:
    """The overall exposure score systemd-analyze security gives a unit (0 safest, 10 least safe)."""
    done = run("security", "--offline=true", "--no-pager", str(unit))
    match = _EXPOSURE.search(done.stdout + done.stderr)
    assert match, done.stdout + done.stderr
    return float(match["score"])


def write_unit(directory: Path, name: str, drop_in: str | None = None, body: str = _UNIT) -> Path:
    """A minimal service unit, with a drop-in in its NAME.service.d/ when given."""
    unit = directory / f"{name}.service"
    unit.write_text(body)
    if drop_in is not None:
        (directory / f"{name}.service.d").mkdir()
        (directory / f"{name}.service.d" / "profiler.conf").write_text(drop_in)
    return unit


def _capabilities_matching(pattern: str) -> set[str]:
    """The capabilities a check name such as CAP_SET(UID|GID|PCAP) or CAP_AUDIT_* covers."""
    regex = re.compile(pattern.replace("*", "[A-Z_]*"))
    return {name for name in abi.CAPABILITIES if regex.fullmatch(name)}


def expected_checks(policy: Policy, groups: SyscallGroups, names: set[str]) -> dict[str, bool]:
    """What each security check should say of the policy, for the checks whose rule is exact.

    The Internet and exotic family checks of a deny-list pass when any one of their families is denied
    (a heuristic of systemd-analyze, not a reading of the unit): they are compared for allow-lists only.
    """
    native = syscalls.native_abi()
    expected: dict[str, bool] = {}
    for name in names:
        setting, _, item = name.partition("=")
        item = item.removeprefix("~")
        match setting:
            case "SystemCallFilter" if item.startswith("@"):
                filter_ = policy.syscalls
                members = {each for each in groups.expand(item) if syscalls.syscall_number(native, each) is not None}
                expected[name] = filter_ is not None and not any(filter_.allows(each) for each in members)
            case "SystemCallArchitectures":
                expected[name] = policy.architectures == {native}
            case "CapabilityBoundingSet":
                caps = _capabilities_matching(item)
                expected[name] = not any(
                    policy.capability_bounding.allows(each) and not policy.capability_overrides(each) for each in caps
                )
            case "AmbientCapabilities":
                expected[name] = not policy.ambient_capabilities
            case "RestrictNamespaces":
                expected[name] = not policy.namespaces.allows(item)
            case "RestrictAddressFamilies" if item in ("AF_PACKET", "AF_NETLINK", "AF_UNIX"):
                expected[name] = not policy.address_families.allows(item)
            case "RestrictAddressFamilies" if policy.address_families.mode.value == "allow":
                families = ("AF_INET", "AF_INET6") if item == "AF_(INET|INET6)" else _exotic_families()
                expected[name] = not any(policy.address_families.allows(each) for each in families)
            case "NoNewPrivileges":
                expected[name] = policy.no_new_privileges is True
            case "User" if item == "/DynamicUser=":
                expected[name] = policy.user not in (None, "root", "0", "nobody")  # nobody: "not safe"
    return expected


def _exotic_families() -> tuple[str, ...]:
    common = {"AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"}
    return tuple(name for name in abi.ADDRESS_FAMILIES if name not in common)


SYSTEMD = Path("/lib/systemd/systemd")
# A user manager needs a booted systemd (/run/systemd/system): in a mount namespace of its own, a tmpfs on /run
# gives it one without touching the host. It runs each unit once, then stops.
_RUN_UNITS = """
set -eu
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
{systemd} --user --log-target=console --log-level=warning &
manager=$!
for attempt in $(seq 50); do [ -S "$XDG_RUNTIME_DIR/systemd/private" ] && break; sleep 0.1; done
for unit in "$@"; do
    systemctl --user start "$unit" 2>/dev/null || true
    echo "$unit $(systemctl --user show --value -p Result -p ExecMainStatus "$unit" | tr '\\n' ' ')"
done
kill "$manager"
wait "$manager" || true
"""


def cannot_run_units() -> str | None:
    """Why units cannot be run here, or None."""
    if os.geteuid() != 0:
        return "running a systemd user manager in a mount namespace of its own needs root"
    if not SYSTEMD.exists() or shutil.which("unshare") is None or shutil.which("systemctl") is None:
        return "systemd, systemctl or unshare is not installed"
    return None


def run_units(directory: Path, units: dict[str, tuple[str, str | None]]) -> dict[str, tuple[str, int]]:
    """Run each unit (NAME: unit text, drop-in text or None) once under a real systemd; (Result, exit status)."""
    config = directory / "config" / "systemd" / "user"
    config.mkdir(parents=True)
    for name, (unit, drop_in) in units.items():
        write_unit(config, name, drop_in, unit)
    environment = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(directory / "runtime"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    script = _RUN_UNITS.format(systemd=SYSTEMD)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *(f"{n}.service" for n in units)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=environment,
    )
    results = {}
    for line in done.stdout.splitlines():
        unit, result, status = line.split()
        results[unit.removesuffix(".service")] = (result, int(status))
    return results
