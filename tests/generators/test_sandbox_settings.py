"""The sandboxing settings: each at the strictest value no observation contradicts, read back as written, and what
a deployed unit would refuse named by its line."""

from hypothesis import given
from hypothesis import strategies as st

from generators.profile import Evidence
from generators.sandbox import (
    FileNeed,
    FileOp,
    KernelNeed,
    KernelUse,
    ProfileFacts,
    SandboxObservations,
    SandboxPlan,
    plan_sandbox,
)
from generators.systemd.groups import committed_syscall_groups
from generators.systemd.names import OVERRIDING_SETTINGS
from generators.systemd.sandbox import SandboxReading, sandbox_lines, sandbox_refusals, sandbox_tightenings
from generators.systemd.unit_syntax import parse_unit_text, split_words
from tests.generators.test_sandbox_paths import EVIDENCE, needs

GROUPS = committed_syscall_groups()
REFUSALS = {
    key: frozenset(each for name in names for each in (GROUPS.expand(name) if name[0] == "@" else [name]))
    for key, (names, _) in OVERRIDING_SETTINGS.items()
}


def _facts(syscalls: frozenset[str] = frozenset(), capabilities: frozenset[str] = frozenset()) -> ProfileFacts:
    return ProfileFacts(
        syscalls=syscalls | {"read", "write"},
        capabilities=capabilities,
        families=frozenset({"AF_UNIX", "AF_INET"}),
        unprivileged_user=None,
        describe=lambda evidence: f"{evidence.count}× by {', '.join(evidence.programs)}",
    )


def _plan(files: list[FileNeed], kernel: list[KernelNeed] = (), **facts: frozenset[str]) -> SandboxPlan:  # type: ignore[assignment]
    return plan_sandbox(SandboxObservations(tuple(files), tuple(kernel)), _facts(**facts), REFUSALS)


def _read(text: str) -> SandboxReading:
    reading = SandboxReading()
    for at in parse_unit_text(text, "unit.service", frozenset({"Service"})).assignments:
        words, _ = split_words(at.value, unquote=True)
        reading.apply(at.key, at.value, at.source, at.line, words)
    return reading


def _render(plan: SandboxPlan) -> str:
    return "[Service]\n" + "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)


kernel_needs = st.lists(
    st.builds(
        KernelNeed, st.sampled_from(list(KernelUse)), st.sampled_from(("connect 1.1.1.1:443", "x")), st.just(EVIDENCE)
    ),
    max_size=4,
)


@given(needs, kernel_needs, st.sets(st.sampled_from(("syslog", "mount", "settimeofday", "sethostname"))))
def test_render_then_read_gives_the_same_settings(
    files: list[FileNeed], kernel: list[KernelNeed], syscalls: set[str]
) -> None:
    plan = _plan(files, kernel, syscalls=frozenset(syscalls))
    reading = _read(_render(plan))
    for setting in plan.settings:
        assert reading.value(setting.key) == setting.value, setting
    for root in plan.writable:
        assert root.value in (reading.value(root.setting) or "").split()
    # Nothing the plan writes refuses what the runs did, and it leaves nothing it could tighten.
    assert sandbox_refusals(reading, plan) == []
    assert sandbox_tightenings(reading, plan) == []


def test_paths_with_spaces_quotes_and_percent_signs_read_back_as_they_are() -> None:
    odd = {"/srv/my app", "/srv/50%", '/srv/say "hi"', "/srv/back\\slash"}
    plan = _plan([FileNeed(f"{path}/file", FileOp.CREATE, None, EVIDENCE) for path in odd])
    assert {entry for entry, _ in _read(_render(plan)).lists["ReadWritePaths"]} == odd


def test_a_path_no_unit_line_can_hold_is_covered_by_the_directory_above_it() -> None:
    plan = _plan([FileNeed("/srv/app/evil\nProtectSystem=no/x", FileOp.CREATE, None, EVIDENCE)])
    text = _render(plan)
    assert "ReadWritePaths=/srv/app\n" in text and "ProtectSystem=no" not in text


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
    values = {setting.key: setting.value for setting in _plan([]).settings}
    assert None not in {key: value for key, value in values.items() if key != "User"}.values()
    assert values["ProtectHome"] == "yes" and values["ProtectSystem"] == "strict" and values["User"] is None


def test_failed_probes_of_home_keep_what_the_probes_saw() -> None:
    """ENOENT stays ENOENT under tmpfs; ProtectHome=yes would answer EACCES to a process without CAP_DAC_OVERRIDE."""
    plan = _plan([FileNeed("/root/.config/app.toml", FileOp.READ, "ENOENT", EVIDENCE)])
    assert plan.value("ProtectHome") == "tmpfs"


def test_check_names_the_line_that_refuses_a_write_and_the_line_to_add() -> None:
    plan = _plan([FileNeed("/var/cache/app/index", FileOp.WRITE, None, Evidence((0,), 1, ("/usr/bin/app",), None))])
    unit = "[Service]\nExecStart=/usr/bin/app\nProtectSystem=strict\nProtectHome=yes\n"
    refusals = sandbox_refusals(_read(unit), plan)
    assert [(r.at.where, r.refused, r.fix) for r in refusals] == [
        (
            "ProtectSystem=strict (unit.service:3)",
            "the write to /var/cache/app/index by /usr/bin/app",
            "CacheDirectory=app",
        )
    ]
    assert sandbox_refusals(_read(unit + "ReadWritePaths=-/var/cache/app\n"), plan) == []


def test_check_names_a_setting_a_run_contradicts() -> None:
    plan = _plan([FileNeed("/proc/sys/net/core/somaxconn", FileOp.WRITE, None, EVIDENCE)])
    [refusal] = sandbox_refusals(_read("[Service]\nProtectKernelTunables=yes\n"), plan)
    assert refusal.at.where == "ProtectKernelTunables=yes (unit.service:2)"
    assert (
        refusal.refused.startswith("write of /proc/sys/net/core/somaxconn")
        and refusal.fix == "ProtectKernelTunables=no"
    )


def test_what_a_unit_could_tighten_comes_most_dangerous_first() -> None:
    tightenings = sandbox_tightenings(_read("[Service]\nReadWritePaths=/srv\nProtectSystem=full\n"), _plan([]))
    assert tightenings[0].key == "ProtectKernelModules"
    assert ("ReadWritePaths", "-/srv") in [(t.key, t.value) for t in tightenings]
    assert ("ProtectSystem", "strict") in [(t.key, t.value) for t in tightenings]
