"""The sandboxing settings: each at the strictest value no observation contradicts, read back as written, and what
a deployed unit would refuse named by its line."""

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.compare import compare
from generators.interface import RenderOptions, SandboxSettings, SettingLine
from generators.profile import Evidence, FileNeed, KernelNeed, SandboxObservations
from generators.sandbox import ProfileFacts, SandboxPlan, plan_sandbox, profile_facts
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
from generators.systemd.sandbox import refused_by_settings, sandbox_lines, sandbox_refusals, sandbox_tightenings
from profiler.trace import FileOp, KernelUse
from tests.generators.profile_builders import make_profile
from tests.generators.test_sandbox_paths import EVIDENCE, needs

SYSTEMD = SystemdFormat(committed_syscall_groups())


def _facts(syscalls: frozenset[str] = frozenset(), capabilities: frozenset[str] = frozenset()) -> ProfileFacts:
    return ProfileFacts(
        syscalls=syscalls | {"read", "write"},
        capabilities=capabilities,
        families=frozenset({"AF_UNIX", "AF_INET"}),
        unprivileged_user=None,
        describe=lambda evidence: f"{evidence.count}× by {', '.join(evidence.programs)}",
    )


def _plan(files: Sequence[FileNeed], kernel: Sequence[KernelNeed] = (), **facts: frozenset[str]) -> SandboxPlan:
    return plan_sandbox(
        SandboxObservations(tuple(files), tuple(kernel)), _facts(**facts), refused_by_settings(SYSTEMD.groups)
    )


def _read(text: str) -> SandboxSettings:
    """The settings systemd's reader finds in a unit of this text."""
    with tempfile.TemporaryDirectory() as directory:
        unit = Path(directory) / "unit.service"
        unit.write_text(text)
        return dataclasses.replace(SYSTEMD.read(unit).sandbox)


def _where(line: SettingLine) -> str:
    return f"{line.key}={line.value} (line {line.line})"


def _render(plan: SandboxPlan) -> str:
    """The plan's lines alone, as a unit."""
    return "[Service]\n" + "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)


kernel_needs = st.lists(
    st.builds(
        KernelNeed, st.sampled_from(list(KernelUse)), st.sampled_from(("connect 1.1.1.1:443", "x")), st.just(EVIDENCE)
    ),
    max_size=4,
)


# Each example renders a drop-in and reads it from a file: on a loaded machine that can pass 200 ms.
@settings(deadline=None)
@given(needs, kernel_needs, st.sets(st.sampled_from(("syslog", "mount", "settimeofday", "sethostname"))))
def test_render_then_read_gives_the_same_settings(
    files: list[FileNeed], kernel: list[KernelNeed], syscalls: set[str]
) -> None:
    """Through the drop-in renderer and systemd's reader: the settings read back are the plan's, none refuses
    what the runs did, and none could be tightened."""
    observations = SandboxObservations(tuple(files), tuple(kernel))
    profile = dataclasses.replace(make_profile(syscalls=("read", "write", *sorted(syscalls))), sandbox=observations)
    plan = plan_sandbox(observations, profile_facts(profile, 1), refused_by_settings(SYSTEMD.groups))
    settings = _read(SYSTEMD.render(profile, RenderOptions()))
    for setting in plan.settings:
        # A list setting (ExecPaths=, DeviceAllow=) is a setting of the plan per entry: read back, all of them.
        entries = [each.value for each in plan.settings if each.key == setting.key and each.value is not None]
        assert settings.value(setting.key) == (" ".join(entries) if entries else setting.value), setting
    for root in plan.writable:
        assert root.value in (settings.value(root.setting) or "").split()
    assert sandbox_refusals(settings, plan) == []
    assert sandbox_tightenings(settings, plan) == []


def test_paths_with_spaces_quotes_and_percent_signs_read_back_as_they_are() -> None:
    odd = {"/srv/my app", "/srv/50%", '/srv/say "hi"', "/srv/back\\slash"}
    plan = _plan([FileNeed(f"{path}/file", FileOp.CREATE, None, EVIDENCE) for path in odd])
    assert {entry.value for entry in _read(_render(plan)).entries_of("ReadWritePaths")} == odd


def test_a_path_no_unit_line_can_hold_is_covered_by_the_directory_above_it() -> None:
    plan = _plan([FileNeed("/srv/app/evil\nProtectSystem=no/x", FileOp.CREATE, None, EVIDENCE)])
    text = _render(plan)
    assert "ReadWritePaths=/srv/app\n" in text and "ProtectSystem=no" not in text


@pytest.mark.parametrize("tree", ["/var/lib", "/var/cache", "/var/log", "/run"])
@pytest.mark.parametrize(
    ("name", "covered_by"),
    [
        ("app\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'", ""),  # no unit line holds it: the tree above
        ("app\rProtectSystem=no", ""),
        ("app%n", "/app%n"),  # a specifier, which the setting would expand
        ("src:dst", "/src:dst"),  # StateDirectory=src:dst is a symlink from dst to src
        ("my app", "/my app"),
        ('say "hi"', '/say "hi"'),
    ],
)
def test_a_managed_directory_name_the_setting_cannot_take_is_a_read_write_path(
    tree: str, name: str, covered_by: str
) -> None:
    """A trace's path is the workload's to choose: a name under /var/lib that StateDirectory= would read otherwise
    (or a line break that would start a line of its own) is opened up by ReadWritePaths= instead."""
    plan = _plan([FileNeed(f"{tree}/{name}/state", FileOp.CREATE, None, EVIDENCE)])
    text = _render(plan)
    assert [line.partition("=")[0] for line in text.splitlines()[1:]] == [key for key, value, _ in sandbox_lines(plan)
                                                                          if value is not None]  # fmt: skip
    assert "ExecStartPre" not in text and "ProtectSystem=no" not in text
    assert {entry.value for entry in _read(text).entries_of("ReadWritePaths")} == {tree + covered_by}
    assert not any(root.setting != "ReadWritePaths" for root in plan.writable)


@pytest.mark.parametrize(
    ("user", "written"),
    [
        ("app", True),
        ("app\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'", False),  # the user a trace names is the workload's
        ("app\rProtectSystem=no", False),
        ("a%h", False),  # a specifier, which systemd would expand to another user
        ("a b", False),
        ("\x93app", False),
    ],
)
def test_a_user_name_systemd_cannot_take_as_it_is_is_not_written(user: str, written: bool) -> None:
    facts = dataclasses.replace(_facts(), unprivileged_user=user)
    plan = plan_sandbox(SandboxObservations((), ()), facts, refused_by_settings(SYSTEMD.groups))
    assert plan.value("User") == user
    text = _render(plan)
    assert [line for line in text.splitlines() if line.startswith("User=")] == ([f"User={user}"] if written else [])
    assert len(text.splitlines()) == 1 + sum(value is not None for _, value, _ in sandbox_lines(plan))
    assert "ExecStartPre" not in text and "ProtectSystem=no" not in text


def test_a_device_no_unit_line_can_name_leaves_the_device_policy_open() -> None:
    """DevicePolicy=closed would refuse a device DeviceAllow= cannot name (its path holds a line break), and any
    DeviceAllow= line closes the default policy: neither is written, and check passes what is."""
    opened = [
        FileNeed("/dev/serial\nExecStartPre=/bin/id", FileOp.READ, None, EVIDENCE, (4, 64)),
        FileNeed("/dev/ttyS1", FileOp.READ, None, EVIDENCE, (4, 65)),
    ]
    plan = _plan(opened)
    assert plan.value("DevicePolicy") == "closed"
    text = _render(plan)
    assert "DevicePolicy=" not in text and "DeviceAllow=" not in text and "ExecStartPre" not in text
    assert sandbox_refusals(_read(text), plan) == []
    refusals = sandbox_refusals(_read(text + "DevicePolicy=closed\n"), plan)
    assert [refusal.fix for refusal in refusals] == ["DeviceAllow=/dev/ttyS1 r", "DevicePolicy=auto"]


def test_each_observation_rules_out_its_setting() -> None:
    open_ = {
        setting.key: setting.value
        for setting in _plan(
            [
                FileNeed("/root/.cargo/config.toml", FileOp.READ, None, EVIDENCE),
                FileNeed("/proc/sys/net/core/somaxconn", FileOp.WRITE, None, EVIDENCE),
                FileNeed("/dev/kmsg", FileOp.READ, None, EVIDENCE),
                FileNeed("/dev/sda", FileOp.READ, None, EVIDENCE),
                FileNeed("/proc/meminfo", FileOp.READ, None, EVIDENCE),
                FileNeed("/tmp/.X11-unix/X0", FileOp.READ, None, EVIDENCE),
                FileNeed("/usr/local/bin/tool", FileOp.SETID, None, EVIDENCE),
            ],
            [KernelNeed(KernelUse.WRITE_EXECUTE, "mmap PROT_WRITE|PROT_EXEC", EVIDENCE)],
            syscalls=frozenset({"mount", "sethostname", "clock_settime"}),
        ).settings
    }
    assert open_ == open_ | {
        "ProtectHome": "read-only",
        "ProtectKernelTunables": None,
        "ProtectKernelLogs": None,
        "PrivateDevices": None,
        "ProcSubset": None,
        "PrivateTmp": None,
        "RestrictSUIDSGID": None,
        "MemoryDenyWriteExecute": None,
        "PrivateMounts": None,
        "ProtectHostname": None,
        "ProtectClock": None,
    }


def test_a_run_that_saw_nothing_gets_every_setting() -> None:
    """All but User= (root's runs say nothing of another user's access) and NoExecPaths= (no exec recorded is a
    recording that attached after the programs started, not a workload that executes nothing)."""
    values = {setting.key: setting.value for setting in _plan([]).settings}
    assert None not in {key: value for key, value in values.items() if key not in ("User", "NoExecPaths")}.values()
    assert values["ProtectHome"] == "yes" and values["ProtectSystem"] == "strict" and values["User"] is None
    assert values["NoExecPaths"] is None


def test_failed_probes_of_home_keep_what_the_probes_saw() -> None:
    """ENOENT stays ENOENT under tmpfs; ProtectHome=yes would answer EACCES to a process without CAP_DAC_OVERRIDE."""
    plan = _plan([FileNeed("/root/.config/app.toml", FileOp.READ, "ENOENT", EVIDENCE)])
    assert plan.value("ProtectHome") == "tmpfs"


def test_check_names_the_line_that_refuses_a_write_and_the_line_to_add() -> None:
    plan = _plan([FileNeed("/var/cache/app/index", FileOp.WRITE, None, Evidence((0,), 1, ("/usr/bin/app",), None))])
    unit = "[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nProtectHome=yes\n"
    refusals = sandbox_refusals(_read(unit), plan)
    assert [(_where(r.at), r.refused, r.fix) for r in refusals] == [
        (
            "ProtectSystem=strict (line 3)",
            "the write to /var/cache/app/index by /usr/bin/app",
            "CacheDirectory=app",
        )
    ]
    assert sandbox_refusals(_read(unit + "ReadWritePaths=-/var/cache/app\n"), plan) == []


def test_check_names_a_setting_a_run_contradicts() -> None:
    plan = _plan([FileNeed("/proc/sys/net/core/somaxconn", FileOp.WRITE, None, EVIDENCE)])
    [refusal] = sandbox_refusals(_read("[Service]\nProtectKernelTunables=yes\n"), plan)
    assert _where(refusal.at) == "ProtectKernelTunables=yes (line 2)"
    assert (
        refusal.refused.startswith("write of /proc/sys/net/core/somaxconn")
        and refusal.fix == "ProtectKernelTunables=no"
    )


def test_what_a_unit_could_tighten_comes_most_dangerous_first() -> None:
    tightenings = sandbox_tightenings(_read("[Service]\nReadWritePaths=/srv\nProtectSystem=full\n"), _plan([]))
    assert tightenings[0].key == "ProtectKernelModules"
    assert ("ReadWritePaths", "-/srv") in [(t.key, t.value) for t in tightenings]
    assert ("ProtectSystem", "strict") in [(t.key, t.value) for t in tightenings]


# The capabilities a sandboxing setting takes out of the bounding set (OVERRIDING_SETTINGS of the reader).
TAKEN_CAPABILITIES = ("CAP_MKNOD", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_WAKE_ALARM", "CAP_SYSLOG", "CAP_SYS_MODULE")


@settings(deadline=None)
@given(needs, kernel_needs, st.sets(st.sampled_from(TAKEN_CAPABILITIES)))
def test_a_generated_drop_in_passes_its_own_check(
    files: list[FileNeed], kernel: list[KernelNeed], capabilities: set[str]
) -> None:
    """Whatever the runs needed of the capabilities the sandboxing settings take away, the drop-in generate writes
    refuses none of it: it wrote PrivateDevices=yes beside CapabilityBoundingSet=CAP_MKNOD, which check failed."""
    profile = dataclasses.replace(
        make_profile(needed=sorted(capabilities)), sandbox=SandboxObservations(tuple(files), tuple(kernel))
    )
    with tempfile.TemporaryDirectory() as directory:
        unit = Path(directory) / "unit.service"
        unit.write_text(SYSTEMD.render(profile, RenderOptions()))
        comparison = compare(profile, SYSTEMD.read(unit))
    assert not comparison.missing, comparison.missing
