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
from generators.danger import Danger
from generators.interface import RenderOptions, SandboxSettings, SettingLine
from generators.profile import Evidence, FileNeed, KernelNeed, SandboxObservations
from generators.sandbox import ProfileFacts, SandboxPlan, plan_sandbox, profile_facts
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
from generators.systemd.sandbox import refused_by_settings, sandbox_lines, sandbox_refusals, sandbox_tightenings
from profiler.enforcement.confinement import FileSystem
from profiler.enforcement.mounts import hidden_by
from profiler.trace import FileOp, KernelUse
from tests.generators import systemd_analyze
from tests.generators.profile_builders import make_profile
from tests.generators.test_sandbox_paths import EVIDENCE, needs

SYSTEMD = SystemdFormat(committed_syscall_groups())
# A cache directory the run made, and a file in it.
MADE_CACHE = (("/var/cache/app", FileOp.CREATE), ("/var/cache/app/index", FileOp.WRITE))


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
    "name",
    [
        "app\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'",  # a line break would start a line of its own
        "app\rProtectSystem=no",
        "app%n",  # a specifier, which the setting would expand
        "src:dst",  # StateDirectory=src:dst is a symlink from dst to src
        "my app",
        'say "hi"',
    ],
)
def test_a_managed_directory_name_the_setting_cannot_take_is_a_read_write_path(tree: str, name: str) -> None:
    """A trace's path is the workload's to choose: a name under /var/lib that StateDirectory= would read otherwise
    (or a line break that would start a line of its own) is opened up by ReadWritePaths= instead: of the tree,
    since the run made the directory and a host it is deployed to has none to name (systemd fails the start on
    a ReadWritePaths= path that is missing)."""
    # The run made the directory, so only its name keeps it from being the setting's.
    plan = _plan([FileNeed(f"{tree}/{name}{leaf}", FileOp.CREATE, None, EVIDENCE) for leaf in ("", "/state")])
    text = _render(plan)
    assert [line.partition("=")[0] for line in text.splitlines()[1:]] == [key for key, value, _ in sandbox_lines(plan)
                                                                          if value is not None]  # fmt: skip
    assert "ExecStartPre" not in text and "ProtectSystem=no" not in text
    assert {entry.value for entry in _read(text).entries_of("ReadWritePaths")} == {tree}
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
    evidence = Evidence((0,), 1, ("/usr/bin/app",), None)
    plan = _plan([FileNeed(path, op, None, evidence) for path, op in MADE_CACHE])
    unit = "[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nProtectHome=yes\n"
    refusals = sandbox_refusals(_read(unit), plan)
    assert [(_where(r.at), r.refused, r.fix) for r in refusals] == [
        (
            "ProtectSystem=strict (line 3)",
            "the write to /var/cache/app by /usr/bin/app",
            "CacheDirectory=app",
        )
    ]
    assert sandbox_refusals(_read(unit + "ReadWritePaths=-/var/cache/app\n"), plan) == []


def test_a_cache_the_runs_found_there_is_read_write_paths_in_the_unit_and_in_check_s_fix() -> None:
    """The same writes into a cache that was there before the runs: the fix check gives, the line the unit writes
    and its comment are ReadWritePaths=, never CacheDirectory=, which would chown it; and it is no room systemd
    made, so DynamicUser= stays off for runs as nobody."""
    found = [FileNeed("/var/cache/app/index", FileOp.WRITE, None, EVIDENCE)]
    unit = "[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\n"
    [refusal] = sandbox_refusals(_read(unit), _plan(found))
    assert refusal.fix == "ReadWritePaths=/var/cache/app/index"
    facts = dataclasses.replace(_facts(), unprivileged_user="nobody")
    plan = plan_sandbox(SandboxObservations(tuple(found), ()), facts, refused_by_settings(SYSTEMD.groups))
    lines = {key: (value, why) for key, value, why in sandbox_lines(plan) if value}
    assert "CacheDirectory" not in lines and lines["ReadWritePaths"] == (
        "/var/cache/app/index",
        "written: /var/cache/app/index; not CacheDirectory=app: /var/cache/app was there before the runs, and "
        "systemd would chown it and all in it to the unit's user; a host without /var/cache/app/index fails the "
        "start until it is made",
    )
    assert plan.value("DynamicUser") is None and plan.value("User") == "nobody"
    made = [FileNeed("/var/cache/app", FileOp.CREATE, None, EVIDENCE), *found]
    assert plan_sandbox(SandboxObservations(tuple(made), ()), facts, {}).value("DynamicUser") == "yes"


def test_check_lists_a_deployed_managed_directory_the_runs_found_there_as_dangerous() -> None:
    """A unit's own CacheDirectory= lets the write through, so nothing is missing; but systemd chowns the directory
    the runs found there at every start: the line to open it instead is among what the unit could tighten, ranked
    high. Of one the runs made, nothing is said."""
    unit = "[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nCacheDirectory=app:alias\n"
    found = _plan([FileNeed("/var/cache/app/index", FileOp.WRITE, None, EVIDENCE)])
    assert sandbox_refusals(_read(unit), found) == []
    [first] = [each for each in sandbox_tightenings(_read(unit), found) if each.key == "ReadWritePaths"]
    assert (first.key, first.value, first.danger) == ("ReadWritePaths", "/var/cache/app/index", Danger.HIGH)
    assert (
        first.why.startswith("CacheDirectory=app:alias (")
        and "unit.service:4) has systemd chown /var/cache/app " in first.why
    )
    made = _plan([FileNeed(path, op, None, EVIDENCE) for path, op in MADE_CACHE])
    assert not any(each.key == "ReadWritePaths" for each in sandbox_tightenings(_read(unit), made))


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


@pytest.mark.parametrize(
    "path",
    ["/dev/null", "/dev/ptmx", "/dev/stdin", "/dev/fd/3", "/dev/pts/0", "/dev/hugepages/x", "/dev/core", "/dev/vda"],
)
def test_private_devices_is_kept_exactly_where_runs_private_dev_holds_the_path(path: str) -> None:
    """generate keeps PrivateDevices=yes for an opened path where `profiler run`'s private /dev has it: one
    statement of what that /dev holds (profiler.private_dev), not two that drift."""
    plan = _plan([FileNeed(path, FileOp.READ, None, EVIDENCE)])
    kept = hidden_by(FileSystem(private_devices=True), path) is None
    assert (plan.value("PrivateDevices") == "yes") is kept, (path, plan.value("PrivateDevices"))


def test_the_plan_and_check_name_what_was_done_alike_counting_paths_not_operations() -> None:
    """The ExecPaths= line's why and check's refusal without it say one thing one way: the first path, and how many
    other paths (a program executed and mapped executable is one path)."""
    done = [
        FileNeed("/opt/app/bin/a", FileOp.EXEC, None, EVIDENCE),
        FileNeed("/opt/app/bin/a", FileOp.MAP_EXEC, None, EVIDENCE),
        FileNeed("/opt/app/bin/b", FileOp.EXEC, None, EVIDENCE),
    ]
    plan = _plan(done)
    [why] = [setting.why for setting in plan.settings if setting.key == "ExecPaths"]
    assert why.startswith("exec of /opt/app/bin/a (and 1 more): "), why
    [refusal] = sandbox_refusals(_read("[Service]\nNoExecPaths=/\n"), plan)
    assert refusal.refused == "the exec of /opt/app/bin/a (and 1 more) by /usr/bin/app", refusal


def test_a_writable_path_no_run_executed_from_is_named_in_no_exec_paths_of_its_own(tmp_path: Path) -> None:
    """NoExecPaths=/ does not reach a path systemd mounts for the unit (a writable root, the private /tmp):
    generate names each that no run executed from, and check reads NoExecPaths=/ as passing them by. Run by a real
    systemd 252: a program copied there runs under NoExecPaths=/ alone (so check is right to let it through) and
    fails with 126 under the generated lines."""
    cp = FileNeed("/usr/bin/cp", FileOp.EXEC, None, EVIDENCE)
    assert [s.value for s in _plan([cp]).settings if s.key == "NoExecPaths"] == ["/", "/tmp", "/var/tmp"]
    # In the host's /tmp (read there, so not a private one), as a directory of the test's can be.
    written = str(tmp_path / "data")
    plan = _plan(
        [
            FileNeed(str(tmp_path), FileOp.READ, None, EVIDENCE),
            FileNeed(f"{written}/tool", FileOp.CREATE, None, EVIDENCE),
            cp,
        ]
    )
    assert [s.value for s in plan.settings if s.key == "NoExecPaths"] == ["/", written]
    lines = [
        f"{key}={value}\n"
        for key, value, _ in sandbox_lines(plan)
        if key in ("NoExecPaths", "ExecPaths", "ReadWritePaths")
    ]
    executed = dataclasses.replace(plan, files=(*plan.files, FileNeed(f"{written}/tool", FileOp.EXEC, None, EVIDENCE)))
    alone = f"[Service]\nProtectSystem=strict\nReadWritePaths={written}\nNoExecPaths=/\nExecPaths=/usr/bin\n"
    assert sandbox_refusals(_read(alone), executed) == []
    [refusal] = sandbox_refusals(_read("[Service]\n" + "".join(lines)), executed)
    # Not ExecPaths={written}: of two entries at one path systemd keeps NoExecPaths= (the deeper line opens it).
    assert (refusal.at.value, refusal.fix) == (written, f"ExecPaths={written}/tool"), refusal
    reason = systemd_analyze.cannot_run_units()
    if reason:
        pytest.skip(reason)
    Path(written).mkdir()
    service = f"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'cp /bin/true {written}/tool && {written}/tool'\n"
    # The directories the shell and cp run from, which the plan above did not see.
    system = "ExecPaths=/usr /bin /lib /lib64\n"
    results = systemd_analyze.run_units(
        tmp_path,
        {
            "alone": (service, f"{alone}{system}"),
            "generated": (
                service.replace("tool", "other"),
                "[Service]\nProtectSystem=strict\n" + "".join(lines) + system,
            ),
        },
    )
    assert results == {"alone": ("success", 0), "generated": ("exit-code", 126)}, results


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


def test_check_offers_the_no_exec_paths_line_of_a_writable_path_the_unit_leaves_executable() -> None:
    plan = _plan(
        [
            FileNeed("/srv/data/out", FileOp.CREATE, None, EVIDENCE),
            FileNeed("/usr/bin/app", FileOp.EXEC, None, EVIDENCE),
        ]
    )
    deployed = "[Service]\nProtectSystem=strict\nReadWritePaths=/srv/data\nNoExecPaths=/\nExecPaths=/usr/bin\n"
    offered = [(t.key, t.value, t.danger) for t in sandbox_tightenings(_read(deployed), plan) if t.key == "NoExecPaths"]
    assert ("NoExecPaths", "/srv/data", Danger.MEDIUM) in offered, offered
    closed = deployed.replace("NoExecPaths=/\n", "NoExecPaths=/ -/srv/data\n")
    assert not [t for t in sandbox_tightenings(_read(closed), plan) if t.key == "NoExecPaths"]


def test_check_fix_for_a_program_whose_directory_no_line_names_is_one_that_opens_it() -> None:
    """A directory no unit line can hold (a line break in it) is named by the nearest one above, which may be the
    NoExecPaths= entry itself: ExecPaths=/ ties with NoExecPaths=/ and loses, so the fix drops the list."""
    plan = _plan([FileNeed("/a\nb/tool", FileOp.EXEC, None, EVIDENCE)])
    [refusal] = sandbox_refusals(_read("[Service]\nNoExecPaths=/\n"), plan)
    assert refusal.fix == "NoExecPaths=", refusal


def test_a_program_in_a_directory_no_unit_line_holds_is_opened_from_the_nearest_one_above() -> None:
    """A library mapped from /\\n\\n/: the line that opens it names the nearest directory a unit line holds, /,
    and ExecPaths=/ loses to NoExecPaths=/ at the same path (systemd keeps NoExecPaths=): NoExecPaths= is left
    open, and the plan passes its own check (the hostile-paths property found a drop-in that failed it)."""
    mapped = FileNeed("/\n\n/\n", FileOp.MAP_EXEC, None, EVIDENCE)
    plan = _plan([FileNeed("/usr/bin/app", FileOp.EXEC, None, EVIDENCE), mapped])
    assert plan.value("NoExecPaths") is None
    assert not [setting for setting in plan.settings if setting.key == "ExecPaths"]
    lines = "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)
    assert sandbox_refusals(_read("[Service]\n" + lines), plan) == []
