"""The correction to paste: added as a drop-in to units of every style, it makes check pass, and systemd agrees."""

import json
import subprocess
from pathlib import Path

import pytest
import seccomp

from generators.compare import compare
from generators.comparison import ItemKind
from generators.correction import Correction
from generators.formats import correction
from generators.interface import PolicyFormat, RenderOptions
from generators.seccomp.oci import OciFormat
from generators.systemd.format import SystemdFormat
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import allow, deny, make_policy, make_profile

# A service that chowns, mounts, talks to a local socket and makes a user namespace, as root.
NEEDS = make_profile(
    syscalls=("read", "write", "exit_group", "openat", "fchownat", "mount", "socket", "unshare"),
    needed=["CAP_CHOWN"],
    families=["AF_UNIX"],
    namespaces=["user"],
)

# Units in the styles found in the wild; each refuses some of NEEDS in its own way.
UNITS = {
    "allow-list": """
        SystemCallFilter=@system-service
        SystemCallFilter=~@privileged
        CapabilityBoundingSet=CAP_KILL
        RestrictAddressFamilies=AF_INET AF_INET6
        RestrictNamespaces=net
    """,
    "deny-list": """
        SystemCallFilter=~@mount @privileged
        SystemCallFilter=~clone3:ENOSYS
        SystemCallErrorNumber=EPERM
        CapabilityBoundingSet=~CAP_CHOWN CAP_SYS_ADMIN
        RestrictAddressFamilies=~AF_UNIX AF_PACKET
        RestrictNamespaces=~user
    """,
    "none-and-yes": """
        SystemCallFilter=read write exit_group openat
        CapabilityBoundingSet=
        RestrictAddressFamilies=none
        RestrictNamespaces=yes
        SystemCallArchitectures=native
    """,
    "reset-then-set": """
        SystemCallFilter=@basic-io
        SystemCallFilter=
        SystemCallFilter=@default @file-system
        CapabilityBoundingSet=CAP_SYS_ADMIN
        CapabilityBoundingSet=
        RestrictNamespaces=
        RestrictNamespaces=mnt
    """,
    "non-root": """
        User=svc
        NoNewPrivileges=yes
        CapabilityBoundingSet=CAP_CHOWN
        SystemCallFilter=@system-service @mount @chown
        RestrictAddressFamilies=AF_UNIX
    """,
}


def write_unit(directory: Path, body: str) -> Path:
    unit = directory / "svc.service"
    lines = "\n".join(line.strip() for line in body.strip().splitlines())
    unit.write_text(f"[Service]\nExecStart=/bin/true\n{lines}\n")
    return unit


@pytest.mark.parametrize("style", list(UNITS))
def test_the_drop_in_makes_check_pass(tmp_path: Path, systemd: SystemdFormat, style: str) -> None:
    unit = write_unit(tmp_path, UNITS[style])
    before = compare(NEEDS, systemd.read(unit))
    assert before.missing, "each style refuses something, or the test shows nothing"
    fix = correction(before)
    assert fix is not None and fix.language == "ini"
    drop_in = tmp_path / "svc.service.d" / "50-profiler.conf"
    drop_in.parent.mkdir()
    drop_in.write_text(fix.text)
    after = compare(NEEDS, systemd.read(unit))
    assert after.missing == () and not after.fix
    assert {(item.kind, item.name) for item in after.excess} <= {(item.kind, item.name) for item in before.excess}


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("style", list(UNITS))
def test_systemd_accepts_the_drop_in(tmp_path: Path, systemd: SystemdFormat, style: str) -> None:
    unit = write_unit(tmp_path, UNITS[style])
    fix = correction(compare(NEEDS, systemd.read(unit)))
    assert fix is not None
    (tmp_path / "svc.service.d").mkdir()
    (tmp_path / "svc.service.d" / "50-profiler.conf").write_text(fix.text)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "50-profiler.conf" not in verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True
    ).stdout
    assert "✗ RestrictNamespaces=~user" in security or "RestrictNamespaces" not in UNITS[style]
    assert "✗ RestrictAddressFamilies=~AF_UNIX" in security or "RestrictAddressFamilies" not in UNITS[style]
    assert "✓ CapabilityBoundingSet=~CAP_CHOWN" not in security


def test_the_systemd_lines() -> None:
    policy = make_policy(
        syscalls=allow("read"),
        bounding=allow(),
        families=allow(),
        namespaces=allow(),
        architectures=["x86_64"],
        user="svc",
        no_new_privileges=True,
    )
    profile = make_profile(
        syscalls=("read", "exit_group", "mmap2"), compat=["mmap2"], needed=["CAP_CHOWN"], families=["AF_UNIX"],
        namespaces=["any"],
    )  # fmt: skip
    fix = correction(compare(profile, policy))
    assert fix == Correction(
        how="Add as a drop-in (systemctl edit svc.service): each line adds to the unit's own setting.",
        text="[Service]\n"
        "SystemCallFilter=exit_group mmap2\n"
        "CapabilityBoundingSet=CAP_CHOWN\n"
        "AmbientCapabilities=CAP_CHOWN\n"
        "RestrictAddressFamilies=AF_UNIX\n"
        "RestrictNamespaces=no\n"
        "SystemCallArchitectures=x86\n"
        "# portability: allowed though no trace called them (vDSO fallbacks, calls that never return)\n"
        "SystemCallFilter=clock_getres clock_gettime exit getcpu gettimeofday rt_sigreturn time\n"
        "# portability: refused with ENOSYS, so that a C library that tries them falls back\n"
        "SystemCallFilter=~clone3:ENOSYS close_range:ENOSYS copy_file_range:ENOSYS epoll_pwait2:ENOSYS "
        "faccessat2:ENOSYS\n"
        "SystemCallFilter=~fchmodat2:ENOSYS openat2:ENOSYS pidfd_open:ENOSYS pidfd_send_signal:ENOSYS "
        "statx:ENOSYS\n",
        language="ini",
    )


def test_no_correction_when_nothing_is_missing_or_unportable() -> None:
    assert correction(compare(make_profile(), make_policy())) is None


def test_oci_rules_load_into_libseccomp() -> None:
    """The rules to add are what libseccomp accepts: an ALLOW rule, an ENOSYS rule, socket() by family."""
    policy = make_policy(syscalls=allow("read"), families=allow(), policy_format=PolicyFormat.OCI)
    fix = correction(compare(make_profile(syscalls=("read", "write", "socket"), families=["AF_UNIX"]), policy))
    assert fix is not None and fix.language == "json" and fix.notes == ()
    rules = json.loads(f"[{fix.text}]")
    assert [rule["action"] for rule in rules] == ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW"]
    assert rules[2] == {
        "names": ["socket"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
    }
    loaded = seccomp.SyscallFilter(seccomp.ERRNO(1))
    for rule in rules:
        action = seccomp.ALLOW if rule["action"] == "SCMP_ACT_ALLOW" else seccomp.ERRNO(rule["errnoRet"])
        arguments = [seccomp.Arg(arg["index"], seccomp.EQ, arg["value"]) for arg in rule.get("args", [])]
        for name in rule["names"]:
            loaded.add_rule(action, name, *arguments)


def test_oci_deny_lists_and_explicit_refusals_say_what_to_take_out() -> None:
    deny_list = make_policy(syscalls=deny("mount"), policy_format=PolicyFormat.OCI)
    fix = correction(compare(make_profile(syscalls=("read", "mount")), deny_list))
    assert fix is not None and fix.notes == ("take mount out of the rules that refuse them",)
    refused_by_rule = make_policy(syscalls=allow("read"), errnos=(("statx", "ENOSYS"),), policy_format=PolicyFormat.OCI)
    fix = correction(compare(make_profile(syscalls=("read", "statx")), refused_by_rule))
    assert fix is not None and fix.notes == ("take statx out of the rules that refuse them",)


def test_kubernetes_names_capabilities_without_the_prefix() -> None:
    policy = make_policy(syscalls=allow("read"), bounding=allow(), policy_format=PolicyFormat.K8S)
    fix = correction(compare(make_profile(syscalls=("read", "fchownat"), needed=["CAP_CHOWN"]), policy))
    assert fix is not None and fix.language == "yaml"
    assert "# in the container's securityContext\ncapabilities:\n  add:\n  - CHOWN\n" in fix.text
    assert "- action: SCMP_ACT_ALLOW\n  names:\n" in fix.text and "\n  - clock_getres\n" in fix.text


def test_the_oci_fix_pasted_into_the_profile_makes_check_pass(committed_profile: LoadTraces) -> None:
    """curl's generated profile misses what git clone needs; the rules added and the notes followed, it passes."""
    oci = OciFormat()
    curl = committed_profile("curl-fetch")
    text = oci.render(curl, RenderOptions())
    git = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    before = compare(git, oci.parse(text, "curl.json"))
    assert before.missing and not [item for item in before.excess if item.kind is ItemKind.CAPABILITY]
    fix = correction(before)
    assert fix is not None
    # curl's profile answers clone3 with ENOSYS, so git's C library falls back to clone: that is what it misses
    assert fix.notes == () and "clone3" not in fix.text and '"clone"' in fix.text
    document = json.loads(text)
    document["syscalls"] += json.loads(f"[{fix.text}]")
    after = compare(git, oci.parse(json.dumps(document), "curl-fixed.json"))
    assert after.passed() and not after.fix.allow
