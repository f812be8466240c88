"""check over a unit's sandboxing settings: what it would refuse of the runs, named by its line, with the line that
lets it through; what it could tighten, ranked with the excess."""

import dataclasses
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from generators.compare import compare
from generators.comparison import ItemKind, Topic
from generators.formats import correction
from generators.interface import RenderOptions
from generators.profile import KernelNeed, Profile
from generators.reports.explain import explain
from generators.reports.text import TextReport
from generators.sandbox import (
    KERNEL_LOGS,
    KERNEL_MODULES,
    KERNEL_TUNABLES,
    is_under,
    plan_sandbox,
    profile_facts,
)
from generators.seccomp.docker import DockerFormat
from generators.seccomp.k8s import KubernetesFormat
from generators.systemd.format import SystemdFormat
from generators.systemd.sandbox import sandbox_lines
from profiler.trace import FileOp, KernelUse
from tests.generators import systemd_analyze
from tests.generators.profile_builders import make_profile
from tests.generators.sandbox_builders import evidence, files, observations
from tests.generators.systemd_manager import SystemManager, UnitRun

APP = "/usr/bin/app"


def _profile() -> Profile:
    writes = files(
        APP, ("/var/cache/app", FileOp.CREATE), ("/var/cache/app/index", FileOp.WRITE), ("/etc/app.conf", FileOp.READ)
    )
    return dataclasses.replace(make_profile(), sandbox=observations(writes))


def test_check_names_the_line_that_refuses_a_write_and_the_line_that_lets_it_through(
    systemd: SystemdFormat, tmp_path: Path
) -> None:
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nReadWritePaths=/srv\n")
    comparison = compare(_profile(), systemd.read(unit))
    [missing] = comparison.missing
    assert missing.need.name == "CacheDirectory=app"
    assert missing.refused == f"ProtectSystem=strict ({unit}:3) refuses the write to /var/cache/app by {APP}"
    assert not comparison.passed()
    fix = correction(comparison)
    assert fix is not None and "\nCacheDirectory=app\n" in fix.text
    report = TextReport().comparison(comparison)
    assert f"setting CacheDirectory=app: ProtectSystem=strict ({unit}:3) refuses the write" in report
    settings = [item.name for item in comparison.excess if item.kind is ItemKind.SETTING]
    assert "ReadWritePaths=-/srv" in settings and "ProtectKernelModules=yes" in settings
    assert settings.index("ProtectKernelModules=yes") < settings.index("ReadWritePaths=-/srv")  # critical first


def test_the_fix_passes_check(systemd: SystemdFormat, tmp_path: Path) -> None:
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\n")
    fix = correction(compare(_profile(), systemd.read(unit)))
    assert fix is not None
    (tmp_path / "app.service.d").mkdir()
    (tmp_path / "app.service.d" / "fix.conf").write_text(fix.text)
    assert compare(_profile(), systemd.read(unit)).passed()


def test_a_profile_without_files_compares_as_before(systemd: SystemdFormat, tmp_path: Path) -> None:
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\n")
    comparison = compare(make_profile(), systemd.read(unit))
    assert not [item for item in comparison.excess if item.kind is ItemKind.SETTING] and not comparison.missing


def test_explain_answers_for_each_setting() -> None:
    profile = _profile()
    assert explain(profile, "ProtectHome").startswith("ProtectHome=yes: no run touched /home, /root or /run/user")
    cache = explain(profile, "CacheDirectory=")
    assert (
        "CacheDirectory=app: written: /var/cache/app, /var/cache/app/index" in cache
        and "    write /var/cache/app/index: 1×" in cache
    )
    assert explain(make_profile(), "ProtectSystem").startswith("ProtectSystem=: not written: the traces did not")


def test_container_outputs_get_a_read_only_root_with_the_written_paths_named() -> None:
    k8s, docker = (format_.render(_profile(), RenderOptions()) for format_ in (KubernetesFormat(), DockerFormat()))
    assert (
        "#     readOnlyRootFilesystem: true" in k8s
        and "/var/cache/app: written: /var/cache/app, /var/cache/app/index" in k8s
    )
    assert "  --read-only \\\n" in docker and "  --volume=/var/cache/app \\\n" in docker
    before = (format_.render(make_profile(), RenderOptions()) for format_ in (KubernetesFormat(), DockerFormat()))
    assert not any("readOnlyRootFilesystem" in text or "--read-only" in text for text in before)


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize(
    ("entry", "ignored"),
    [
        ("StateDirectory=/var/lib/app", True),  # systemd: "path is absolute, ignoring"
        ("StateDirectory=app/../app", True),  # "path is not normalized, ignoring"
        ("StateDirectory=app/", False),
        ("StateDirectory=./app", False),
        ("StateDirectory=app:other", False),  # app, and other a symlink to it
        ("StateDirectory=other:app", False),
        ("ReadWritePaths=/var//lib/./app/", False),
        ("ReadWritePaths=-/var/lib/app", False),
        ("ReadWritePaths=-+/var/lib/app", False),
        ("ReadWritePaths=+-/var/lib/app", True),  # - comes first: "path is not absolute, ignoring: -/var/lib/app"
        ("ReadWritePaths=--/var/lib/app", True),
        ("ReadWritePaths=/var/lib/../lib/app", True),
        ("ReadWritePaths=var/lib/app", True),  # "path is not absolute, ignoring"
    ],
)
def test_check_reads_a_writable_entry_as_systemd_does(
    systemd: SystemdFormat, tmp_path: Path, entry: str, ignored: bool
) -> None:
    """An entry systemd ignores (with a warning) opens nothing, so check refuses the write it was meant for; one
    it simplifies opens what it names."""
    made = files(APP, ("/var/lib/app", FileOp.CREATE), ("/var/lib/app/db", FileOp.WRITE))
    profile = dataclasses.replace(make_profile(), sandbox=observations(made))
    unit = tmp_path / "app.service"
    unit.write_text(f"[Unit]\nDescription=app\n[Service]\nExecStart=/bin/true\nProtectSystem=strict\n{entry}\n")
    assert bool(systemd_analyze.verify_warnings(unit)) is ignored
    comparison = compare(profile, systemd.read(unit))
    assert comparison.passed() is not ignored
    if ignored:
        assert [item.need.name for item in comparison.missing] == ["StateDirectory=app"]


ALLOW = 'DeviceAllow="/dev/serial port"'
BOTH = ['DeviceAllow="/dev/serial port" r', 'DeviceAllow="/dev/serial port" w']


@pytest.mark.parametrize(
    ("lines", "refused"),
    [
        (f"DevicePolicy=closed\n{ALLOW} r\n{ALLOW} w\n", []),  # the accesses add up
        (f"DevicePolicy=strict\n{ALLOW}\n", []),  # no access is rwm
        (f"DevicePolicy=closed\n{ALLOW} rw\nDeviceAllow=\n", BOTH),
        (f"DevicePolicy=closed\n{ALLOW} rx\n", BOTH),  # not rights: systemd ignores the line
        ("DeviceAllow=/dev/null rw\n", BOTH),  # DevicePolicy=auto is closed where a DeviceAllow= line is given
        ("DevicePolicy=auto\n", []),
        ("DeviceAllow=/sys/dev/char/4:64 rw\n", []),  # "Invalid device node path": ignored, it closes nothing
    ],
)
def test_check_reads_device_allow_lines_as_systemd_does(
    systemd: SystemdFormat, tmp_path: Path, lines: str, refused: list[str]
) -> None:
    device = "/dev/serial port"
    needs = [
        dataclasses.replace(need, device=(4, 64)) for need in files(APP, (device, FileOp.READ), (device, FileOp.WRITE))
    ]
    unit = tmp_path / "app.service"
    unit.write_text(f"[Service]\nExecStart=/usr/bin/app\n{lines}")
    comparison = compare(dataclasses.replace(make_profile(), sandbox=observations(needs)), systemd.read(unit))
    assert [item.need.name for item in comparison.missing] == refused


def test_a_fix_is_a_unit_line_whatever_the_path(systemd: SystemdFormat, tmp_path: Path) -> None:
    """Fixes are written into the correction drop-in as lines: a path is quoted and its % doubled, and one no line
    can hold (a line break, which would start a line of its own) is covered by the directory above it."""
    needs = files(
        APP,
        ("/srv/a\nExecStartPre=/bin/sh -c id/x", FileOp.WRITE),
        ("/srv/b c/x", FileOp.WRITE),
        ("/srv/p%h/x", FileOp.WRITE),
        ("/opt/t\nExecStartPost=/bin/id/tool", FileOp.EXEC),
    )
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nNoExecPaths=/\n")
    fix = correction(compare(dataclasses.replace(make_profile(), sandbox=observations(needs)), systemd.read(unit)))
    assert fix is not None
    assert fix.text.splitlines()[2:] == [
        "ExecPaths=/opt",
        "ReadWritePaths=/srv",
        'ReadWritePaths="/srv/b c/x"',
        "ReadWritePaths=/srv/p%%h/x",
    ]


# /usr/bin/true's exec and the loader and C library it maps (under /lib and /lib64, links into /usr on Debian 12).
TRUE = files(
    "/usr/bin/true",
    ("/usr/bin/true", FileOp.EXEC),
    ("/lib64/ld-linux-x86-64.so.2", FileOp.MAP_EXEC),
    ("/lib/x86_64-linux-gnu/libc.so.6", FileOp.MAP_EXEC),
)
LIBRARIES = "/lib /lib64 /usr/lib"
EXEC_SETTINGS = {
    "opened": f"NoExecPaths=/\nExecPaths=/usr {LIBRARIES}\n",
    "closed-below": f"NoExecPaths=/\nExecPaths=/usr {LIBRARIES}\nNoExecPaths=/usr/bin\n",
    "same-path": f"ExecPaths=/usr/bin\nNoExecPaths=/usr/bin\nExecPaths={LIBRARIES}\n",
    "the-file": f"NoExecPaths=/\nExecPaths=/usr/bin/true {LIBRARIES}\n",
    "closed-file": f"NoExecPaths=/\nExecPaths=/usr {LIBRARIES}\nNoExecPaths=/usr/bin/true\n",
    "root": "NoExecPaths=/\nExecPaths=/\n",
}


def test_check_refuses_an_exec_where_systemd_does_whatever_the_order_of_exec_lines(
    systemd: SystemdFormat, tmp_path: Path
) -> None:
    """The deepest of NoExecPaths= and ExecPaths= above a program decides (and NoExecPaths= at the same path):
    what the root user manager runs, check passes; what it cannot exec (203/EXEC), check refuses, and the fix it
    names makes the unit run."""
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)
    profile = dataclasses.replace(make_profile(), sandbox=observations(TRUE))
    units, fixes = {}, {}
    for name, lines in EXEC_SETTINGS.items():
        unit = f"[Unit]\nDescription=exec lines\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\n{lines}"
        (tmp_path / f"{name}.service").write_text(unit)
        comparison = compare(profile, systemd.read(tmp_path / f"{name}.service"))
        units[name] = (unit, None)
        fix = correction(comparison)
        if fix is not None:
            fixes[f"{name}-fixed"] = (unit, fix.text)
    results = systemd_analyze.run_units(tmp_path / "run", units | fixes)
    refused = {name for name in EXEC_SETTINGS if results[name] != ("success", 0)}
    assert refused == {"closed-below", "same-path", "closed-file", "root"}, results
    assert set(fixes) == {f"{name}-fixed" for name in refused}
    assert all(results[name] == ("success", 0) for name in fixes), results


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("value", ["0x77", "8888", "", "+077", "10000", "077 ", "0077"])
def test_a_umask_systemd_ignores_is_a_finding_and_check_still_compares(
    systemd: SystemdFormat, tmp_path: Path, value: str
) -> None:
    """A value systemd's parse_mode refuses was read as a mode: check and diff failed with a traceback."""
    unit = tmp_path / "app.service"
    unit.write_text(f"[Unit]\nDescription=app\n[Service]\nExecStart=/bin/true\nUMask={value}\n")
    warned = {warning.line for warning in systemd_analyze.verify_warnings(unit)}
    policy = systemd.read(unit)
    assert {finding.line for finding in policy.findings if finding.message.startswith("UMask=")} == warned
    tightened = [item.name for item in compare(_profile(), policy).excess if "UMask" in item.name]
    # Ignored, the umask is systemd's default 0022, which UMask=0077 tightens.
    assert tightened == ([] if value.strip() in ("077", "0077") else ["UMask=0077"])


def test_a_run_that_executed_under_a_writable_root_directory_gets_no_exec_paths_that_systemd_refuses(
    system_manager: SystemManager,
) -> None:
    """An entry made in / makes / the writable root, and a program under it would need ExecPaths=/, which systemd
    drops beside NoExecPaths=/ (203/EXEC): NoExecPaths= is left open, and the generated lines run."""
    needs = [*TRUE, *files("/usr/bin/true", ("/profiler-test-made", FileOp.CREATE))]
    plan = plan_sandbox(observations(needs), profile_facts(make_profile(), 1), {})
    assert plan.value("NoExecPaths") is None and not [each for each in plan.settings if each.key == "ExecPaths"]
    lines = "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)
    unit = "[Unit]\nDescription=exec lines\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\n"
    ran = system_manager.run("made-in-root", unit, {"profiler.conf": f"[Service]\n{lines}"})
    assert ran.succeeded, ran


# A client of each kind of loopback peer (socket(1) is AF_UNIX), given its address; and the address a trace names.
CLIENTS = {
    "tcp": "/usr/bin/python3 -c 'import socket, sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])))'",
    "abstract": "/usr/bin/python3 -c 'import socket, sys; socket.socket(1).connect(\"\\\\0\" + sys.argv[1])'",
}


@pytest.fixture(params=CLIENTS)
def host_service(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """A peer on the host's loopback that a service outside the component listens on: the client that reaches
    it, the argument it takes, and the address a trace names."""
    if request.param == "tcp":
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            yield CLIENTS["tcp"], str(port), f"127.0.0.1:{port}"
    else:
        name = f"profiler-{os.getpid()}"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(f"\0{name}")
            server.listen()
            yield CLIENTS["abstract"], name, f"@{name}"


def test_a_loopback_peer_no_run_bound_keeps_the_host_network(
    system_manager: SystemManager, systemd: SystemdFormat, tmp_path: Path, host_service: tuple[str, str, str]
) -> None:
    """A connect to a loopback port or abstract AF_UNIX name the runs did not bind reaches a service of the host's
    (a database, the DNS stub), which PrivateNetwork=yes hides (ECONNREFUSED): the setting is left open, and check
    names it; where a run bound it, the runs talk to themselves and it stays."""
    client, argument, address = host_service
    connect = KernelNeed(KernelUse.LOOPBACK, f"connect {address}", evidence("/usr/bin/python3"))
    bind = dataclasses.replace(connect, detail=f"bind {address}")
    facts = profile_facts(make_profile(), 1)
    assert plan_sandbox(observations([], [bind, connect]), facts, {}).value("PrivateNetwork") == "yes"
    plan = plan_sandbox(observations([], [connect]), facts, {})
    assert plan.value("PrivateNetwork") is None and plan.value("IPAddressDeny") == "any"
    lines = "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)
    unit = f"[Unit]\nDescription=client\n[Service]\nType=oneshot\nExecStart={client} {argument}\n"
    ran = system_manager.run("host-service", unit, {"profiler.conf": f"[Service]\n{lines}"})
    assert ran.succeeded, ran
    private = tmp_path / "private.service"
    private.write_text(f"{unit}PrivateNetwork=yes\n")
    refused = compare(dataclasses.replace(make_profile(), sandbox=observations([], [connect])), systemd.read(private))
    assert [item.need.name for item in refused.missing] == ["PrivateNetwork=no"]
    failed = system_manager.run("host-service-private", f"{unit}PrivateNetwork=yes\n")
    assert (failed.result, failed.status) == ("exit-code", 1) and "ConnectionRefusedError" in failed.stderr, failed


def test_a_confining_setting_check_does_not_model_is_a_warning(systemd: SystemdFormat, tmp_path: Path) -> None:
    """BindReadOnlyPaths= refuses the runs' write (EROFS under the system manager) and check cannot tell: it
    passed without a word; it says it did not compare what such a setting refuses."""
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/usr/bin/app\nBindReadOnlyPaths=/var/cache/app\nRootDirectory=/srv/root\n")
    comparison = compare(_profile(), systemd.read(unit))
    assert comparison.passed()
    assert [each.message for each in comparison.advisories if each.topic is Topic.COVERAGE] == [
        f"BindReadOnlyPaths=/var/cache/app ({unit}:3), RootDirectory=/srv/root ({unit}:4): check does not model these "
        "settings; what they refuse of the runs is not compared"
    ]


# Makes a page executable after writing it, as a JIT does: exit 0 where allowed, 1 where refused.
JIT = (
    "/usr/bin/python3 -c 'import ctypes, mmap, sys; libc = ctypes.CDLL(None); page = mmap.mmap(-1, 4096); "
    "address = ctypes.addressof(ctypes.c_char.from_buffer(page)); "
    "sys.exit(libc.mprotect(ctypes.c_void_p(address), 4096, mmap.PROT_READ | mmap.PROT_EXEC) != 0)'"
)


def test_memory_deny_write_execute_refuses_what_the_recorder_counts(tmp_path: Path) -> None:
    """systemd refuses any mprotect to PROT_EXEC under MemoryDenyWriteExecute=yes, not only a writable one: the
    recorder counts it (mprotect PROT_READ|PROT_EXEC), and the setting is left open for it."""
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)
    unit = f"[Unit]\nDescription=jit\n[Service]\nType=oneshot\nExecStart={JIT}\n"
    results = systemd_analyze.run_units(
        tmp_path, {"open": (unit, None), "closed": (unit, "[Service]\nMemoryDenyWriteExecute=yes\n")}
    )
    assert results == {"open": ("success", 0), "closed": ("exit-code", 1)}
    use = KernelNeed(KernelUse.WRITE_EXECUTE, "mprotect PROT_READ|PROT_EXEC", evidence("/usr/bin/python3"))
    plan = plan_sandbox(observations([], [use]), profile_facts(make_profile(), 1), {})
    assert plan.value("MemoryDenyWriteExecute") is None


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize(
    "line",
    [
        "IPAddressDeny=10.0.0.0/33",
        "IPAddressAllow=bogus",
        "IPAddressDeny=any 10.1.2.3/8 ::1 fe80::/10 link-local multicast localhost x",
        "IPAddressAllow=127.0.0.1 192.0.2.0/24",
    ],
)
def test_an_address_systemd_ignores_is_a_finding(systemd: SystemdFormat, tmp_path: Path, line: str) -> None:
    """Each word of IPAddressDeny= and IPAddressAllow= systemd cannot read ("Address prefix is invalid, ignoring
    assignment") is a finding, and the rest of the line is read."""
    unit = tmp_path / "app.service"
    unit.write_text(f"[Unit]\nDescription=app\n[Service]\nExecStart=/bin/true\n{line}\n")
    warned = [warning.message.rpartition(": ")[2] for warning in systemd_analyze.verify_warnings(unit)]
    policy = systemd.read(unit)
    assert [finding.message.split(": ")[1].split()[0] for finding in policy.findings] == warned
    key, _, value = line.partition("=")
    assert [entry.value for entry in policy.sandbox.entries_of(key)] == [w for w in value.split() if w not in warned]


@pytest.mark.parametrize(
    ("setting", "trees"),
    [
        ("ProtectKernelTunables=yes", KERNEL_TUNABLES),
        ("ProtectKernelModules=yes", KERNEL_MODULES),
        ("ProtectKernelLogs=yes", KERNEL_LOGS),
    ],
)
def test_the_paths_a_setting_mounts_over_are_the_plans(
    system_manager: SystemManager, setting: str, trees: tuple[str, ...]
) -> None:
    """Every mount a setting adds (read from the service's own mountinfo under systemd 252) is under a path the plan
    lists for it, so that a use there rules the setting out: /proc/mtrr was not under KERNEL_TUNABLES."""
    unit = "[Service]\nType=oneshot\nExecStart=/bin/cat /proc/self/mountinfo\n"
    open_ = system_manager.run("mounts-open", unit)
    closed = system_manager.run(f"mounts-{setting.partition('=')[0]}", f"{unit}{setting}\n")
    assert open_.succeeded and closed.succeeded, (open_, closed)

    def points(run: UnitRun) -> set[str]:
        # Any mount namespace of systemd's has its own /run/credentials and /run/systemd/incoming: not the setting's.
        return {line.split()[4] for line in run.stdout.splitlines() if not line.split()[4].startswith("/run/")}

    added = points(closed) - points(open_)
    assert added  # each mounts over a path of its own here (/proc/sys, /usr/lib/modules, /proc/kmsg)
    assert [point for point in sorted(added) if not any(is_under(point, tree) for tree in trees)] == []
