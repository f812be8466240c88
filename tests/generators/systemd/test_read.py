"""Reading deployed units: systemd's own reading (systemd-analyze) is the oracle, wherever it can tell.

Each unit of tests/fixtures/systemd/ is written in a style found in the wild. systemd-analyze verify names the
lines it ignores or cannot parse, and systemd-analyze security says, per check, what the unit allows: the reader
must flag every line verify warns about, and agree with every check security makes.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators import formats
from generators.interface import PolicyFormat
from generators.systemd.format import SystemdFormat
from generators.systemd.lint import systemd_keys
from generators.systemd.unit_syntax import LONG_LINE_MAX, _logical_lines
from profiler import syscalls
from profiler.errors import PolicyParseError
from tests.generators import systemd_analyze
from tests.generators.profile_builders import allow, deny

UNITS = sorted(path.name for path in (Path(__file__).parents[2] / "fixtures" / "systemd").glob("*.service"))


def _finding_lines(path: Path, systemd: SystemdFormat) -> set[tuple[str, int]]:
    return {(str(Path(f.source).resolve()), f.line or 0) for f in systemd.read(path).findings}


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("unit", UNITS)
def test_every_line_systemd_warns_about_is_a_finding(unit: str, systemd_units: Path, systemd: SystemdFormat) -> None:
    warnings = systemd_analyze.verify_warnings(systemd_units / unit)
    assert all(warning.file for warning in warnings), warnings
    assert {(warning.file, warning.line) for warning in warnings} <= _finding_lines(systemd_units / unit, systemd)


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("unit", UNITS)
def test_systemd_security_agrees_with_the_reading(unit: str, systemd_units: Path, systemd: SystemdFormat) -> None:
    checks = systemd_analyze.security_checks(systemd_units / unit)
    expected = systemd_analyze.expected_checks(systemd.read(systemd_units / unit), systemd.groups, set(checks))
    assert {name: checks[name] for name in expected} == expected


# The units this machine's packages install: real ones, written by many hands (masked ones link to /dev/null).
INSTALLED_UNITS = sorted(
    path for path in Path("/lib/systemd/system").glob("*.service") if path.resolve() != Path(os.devnull)
)


@pytest.mark.usefixtures("systemd_analyze")
@pytest.mark.parametrize("unit", INSTALLED_UNITS, ids=lambda unit: unit.name)
def test_systemd_agrees_with_the_reading_of_the_units_installed_here(unit: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(unit)
    warned = {(warning.file, warning.line) for warning in systemd_analyze.verify_warnings(unit) if warning.file}
    assert warned <= {(finding.source, finding.line) for finding in policy.findings}
    checks = systemd_analyze.security_checks(unit)
    expected = systemd_analyze.expected_checks(policy, systemd.groups, set(checks))
    assert {name: checks[name] for name in expected} == expected


def test_every_unit_style_is_covered(systemd_units: Path) -> None:
    assert len(UNITS) >= 10 and (systemd_units / "drop-ins.service.d").is_dir()


def _messages(path: Path, systemd: SystemdFormat) -> list[str]:
    return [f"{Path(f.source).name}:{f.line}: {f.message}" for f in systemd.read(path).findings]


def test_a_tilde_inside_the_value_is_a_name_and_the_groups_stay_allowed(
    systemd_units: Path, systemd: SystemdFormat
) -> None:
    policy = systemd.read(systemd_units / "misplaced-tilde.service")
    assert policy.syscalls is not None and policy.syscalls.allows("chown") and policy.syscalls.allows("setpriority")
    messages = _messages(systemd_units / "misplaced-tilde.service", systemd)
    assert messages[0].startswith(
        "misplaced-tilde.service:5: '~@privileged' is not the first word of the value: systemd inverts only when '~' "
        "is the first character, so it takes '~@privileged' for a name, finds no such syscall and ignores it; "
        "@privileged is not denied: 10 of its syscalls stay allowed (capset, chown,"
    )
    assert messages[0].endswith("Write it on its own line: SystemCallFilter=~@privileged")
    assert (
        "misplaced-tilde.service:8: '~net' is not the first word: '~' inverts only at the start of the value, "
        in (messages[-1])
    )
    assert policy.namespaces.unrestricted


def test_an_allow_list_implies_default_and_a_later_tilde_line_removes(
    systemd_units: Path, systemd: SystemdFormat
) -> None:
    policy = systemd.read(systemd_units / "hardened-groups.service")
    assert policy.syscalls is not None
    rules = policy.syscalls.rules
    assert rules.mode.value == "allow"
    assert {"brk", "execve", "exit_group", "read", "openat"} <= rules.names
    assert not {"chown", "setpriority", "mount", "ptrace", "reboot"} & rules.names
    assert policy.syscalls.default_errno == "EPERM"
    assert (policy.user, policy.no_new_privileges) == ("www-data", True)
    assert policy.capability_bounding == allow("CAP_NET_BIND_SERVICE")
    assert policy.ambient_capabilities == {"CAP_NET_BIND_SERVICE"}
    assert policy.address_families == allow("AF_UNIX", "AF_INET", "AF_INET6")
    assert policy.namespaces == allow()
    assert policy.architectures == {syscalls.native_abi()}
    assert policy.findings == ()


def test_a_deny_list_keeps_errnos_per_entry(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "deny-list.service")
    assert policy.syscalls is not None and policy.syscalls.rules.mode.value == "deny"
    errnos = dict(policy.syscalls.errnos)
    assert errnos["chown"] == "EPERM" and errnos["ptrace"] == "EACCES" and "mount" not in errnos
    assert not policy.syscalls.allows("mount") and policy.syscalls.allows("read")
    assert policy.syscalls.default_errno is None
    assert policy.capability_bounding == deny("CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_NET_RAW")
    assert policy.address_families == deny("AF_PACKET", "AF_NETLINK")
    assert policy.namespaces == allow("cgroup", "ipc", "mnt", "uts", "time")


def test_errno_suffixes_refuse_inside_an_allow_list(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "errno-suffixes.service")
    assert policy.syscalls is not None
    errnos = dict(policy.syscalls.errnos)
    assert (errnos["clone3"], errnos["statx"], errnos["chown"], errnos["settimeofday"]) == (
        "ENOSYS",
        "ENOSYS",
        "EACCES",
        "kill",
    )
    assert errnos["uname"] == "0" and "sync" not in errnos
    assert not policy.syscalls.allows("clone3") and policy.syscalls.allows("read")
    assert _messages(systemd_units / "errno-suffixes.service", systemd) == [
        "errno-suffixes.service:9: 'read:EPERM': an errno applies only to entries of a line starting with '~': "
        'systemd ignores the entry ("Allow-listed system calls cannot take error number")',
        "errno-suffixes.service:10: 'sync:4096': not a syscall:errno pair systemd can parse: it ignores the entry",
    ]


def test_lines_accumulate_across_continuations(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "several-lines.service")
    assert policy.syscalls is not None
    assert policy.syscalls.allows("epoll_wait") and policy.syscalls.allows("rt_sigaction")
    assert policy.syscalls.allows("connect") and not policy.syscalls.allows("listen")
    assert policy.architectures == {"x86", "x86_64"}
    assert policy.capability_bounding == allow("CAP_CHOWN", "CAP_KILL")
    assert policy.address_families == allow("AF_UNIX", "AF_INET")
    assert policy.namespaces == allow("cgroup", "net")


def test_the_first_assignment_decides_the_mode(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "first-mode.service")
    assert policy.syscalls is not None and policy.syscalls.rules.mode.value == "deny"
    assert not policy.syscalls.allows("mount") and policy.syscalls.allows("ptrace")
    assert policy.address_families.unrestricted
    assert [message.split(": ", 1)[0] for message in _messages(systemd_units / "first-mode.service", systemd)] == [
        "first-mode.service:6",
        "first-mode.service:8",
    ]


def test_capability_lines_merge_the_way_systemd_merges_them(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "capability-quirks.service")
    assert policy.capability_bounding == allow("CAP_CHOWN")
    assert policy.ambient_capabilities == frozenset()
    assert [
        message.split(": ", 1)[0] for message in _messages(systemd_units / "capability-quirks.service", systemd)
    ] == [
        "capability-quirks.service:7",
        "capability-quirks.service:9",
        "capability-quirks.service:9",
    ]


def test_drop_ins_apply_in_name_order_and_resets_discard(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "drop-ins.service")
    assert policy.syscalls is not None
    assert policy.syscalls.allows("read") and policy.syscalls.allows("clone")
    assert not policy.syscalls.allows("mount") and not policy.syscalls.allows("socket")
    assert policy.capability_bounding == allow("CAP_NET_BIND_SERVICE")
    assert policy.address_families == allow()
    assert policy.namespaces == allow("mnt")


def test_a_drop_in_alone_is_read_for_its_unit_type(systemd_units: Path, systemd: SystemdFormat) -> None:
    policy = systemd.read(systemd_units / "drop-ins.service.d" / "10-hardening.conf")
    assert policy.syscalls is not None and policy.syscalls.rules == deny(*systemd.groups.expand("@mount"))
    assert policy.capability_bounding == deny("CAP_NET_RAW")


def test_contradicting_settings_are_found(systemd_units: Path, systemd: SystemdFormat) -> None:
    assert _messages(systemd_units / "no-filter.service", systemd) == [
        "no-filter.service:4: SystemCallErrorNumber= has no effect: there is no SystemCallFilter=",
        "no-filter.service:5: RestrictAddressFamilies= does not apply to 32-bit x86 programs (systemd cannot filter "
        "their socketcall()), and SystemCallArchitectures= lets them run: add SystemCallArchitectures=native unless "
        "the service runs 32-bit programs",
        "no-filter.service:7: AmbientCapabilities= holds CAP_NET_RAW, outside CapabilityBoundingSet=: the kernel "
        "refuses an ambient capability that is not in the bounding set (capabilities(7))",
    ]


def test_names_and_keys_systemd_does_not_know_are_found(systemd_units: Path, systemd: SystemdFormat) -> None:
    lines = [message.split(": ", 1)[0] for message in _messages(systemd_units / "unknown-names.service", systemd)]
    assert lines == [
        f"unknown-names.service:{line}" for line in (4, 8, 9, 10, 10, 10, 11, 12, 13, 13, 14, 15, 16, 17, 19)
    ]


def test_the_reader_is_the_systemd_format() -> None:
    assert isinstance(formats.reader(PolicyFormat.SYSTEMD), SystemdFormat)


# ------------------------------------------------------------------------------------------ bad files


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty: systemd treats an empty unit file as masked"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "holds NUL bytes: a binary file, not a systemd unit"),
        (b"[Service]\nUser=\xff\xfe\n", ":2: not UTF-8 text: systemd refuses to load the unit"),
        (b'{"defaultAction": "SCMP_ACT_ERRNO"}\n', "no [section] in it: not a systemd unit file"),
        (b"[Service\nSystemCallFilter=read\n", ":1: invalid section header '[Service': systemd refuses the unit"),
    ],
)
def test_a_bad_file_is_one_clear_line(content: bytes, expected: str, tmp_path: Path, systemd: SystemdFormat) -> None:
    path = tmp_path / "bad.service"
    path.write_bytes(content)
    with pytest.raises(PolicyParseError) as raised:
        systemd.read(path)
    assert str(raised.value).startswith(str(path)) and expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_user_systemd_cannot_use_is_found(tmp_path: Path, systemd: SystemdFormat) -> None:
    unit = tmp_path / "user.service"
    unit.write_text("[Service]\nUser=web:data\nUser=www data\n")
    assert [f"{f.line}: {f.message}" for f in systemd.read(unit).findings] == [
        "2: User=web:data: not a user name: systemd will not start the unit",
        "3: User=www data: not a portable user name; systemd accepts it with a notice",
    ]


def test_dynamic_user_runs_unprivileged_with_no_new_privileges_for_good(
    systemd_units: Path, systemd: SystemdFormat
) -> None:
    policy = systemd.read(systemd_units / "dynamic-user.service")
    assert (policy.user, policy.no_new_privileges) == ("dynamic-user", True)
    assert _messages(systemd_units / "dynamic-user.service", systemd) == [
        "dynamic-user.service:10: NoNewPrivileges=no has no effect: DynamicUser=yes "
        f"({systemd_units / 'dynamic-user.service'}:9) turns NoNewPrivileges= on, and it cannot be turned off"
    ]


@pytest.mark.parametrize(
    ("lines", "user", "no_new_privileges"),
    [
        ("DynamicUser=yes\nUser=root\n", "root", True),  # a static user of that name is used as it is
        ("DynamicUser=yes\nUser=web\n", "web", True),
        ("DynamicUser=yes\nDynamicUser=no\n", None, None),
        ("DynamicUser=no\nUser=web\nNoNewPrivileges=no\n", "web", False),
    ],
)
def test_the_user_and_no_new_privileges_that_dynamic_user_implies(
    lines: str, user: str | None, no_new_privileges: bool | None, tmp_path: Path, systemd: SystemdFormat
) -> None:
    unit = tmp_path / "svc.service"
    unit.write_text(f"[Service]\n{lines}")
    policy = systemd.read(unit)
    assert (policy.user, policy.no_new_privileges) == (user, no_new_privileges)


@pytest.mark.parametrize(
    ("lines", "implied_by"),
    [
        ("User=web\nSystemCallFilter=@system-service\n", "SystemCallFilter= (svc.service:3)"),
        ("User=web\nRestrictNamespaces=no\nProtectClock=yes\n", "ProtectClock= (svc.service:4)"),
        ("User=web\nRestrictAddressFamilies=AF_UNIX\n", "RestrictAddressFamilies= (svc.service:3)"),
        ("User=web\nRestrictNamespaces=no\nSystemCallFilter=\nProtectClock=no\n", None),  # none left on
        ("User=web\nSystemCallFilter=read\nAmbientCapabilities=CAP_SYS_ADMIN\n", None),  # it has CAP_SYS_ADMIN
        ("User=web\nSystemCallFilter=read\nNoNewPrivileges=yes\n", None),  # set, not implied
        ("SystemCallFilter=read\n", None),  # root
    ],
)
def test_no_new_privileges_is_implied_for_a_user_without_cap_sys_admin_under_seccomp(
    lines: str, implied_by: str | None, tmp_path: Path, systemd: SystemdFormat
) -> None:
    """systemd.exec(5): "If this setting is on, but the unit doesn't have the CAP_SYS_ADMIN capability (e.g.
    services for which User= is set), NoNewPrivileges=yes is implied"."""
    unit = tmp_path / "svc.service"
    unit.write_text(f"[Service]\n{lines}")
    implied = systemd.read(unit).no_new_privileges_implied_by
    assert implied == (implied_by and implied_by.replace("svc.service", str(unit)))


def test_a_directory_or_a_missing_file_is_one_clear_line(tmp_path: Path, systemd: SystemdFormat) -> None:
    with pytest.raises(PolicyParseError, match=r"is a directory; give a systemd unit file$"):
        systemd.read(tmp_path)
    with pytest.raises(PolicyParseError, match=r"missing.service: cannot read: No such file or directory"):
        systemd.read(tmp_path / "missing.service")


# ------------------------------------------------------------------------------------------ fuzzing

VOCABULARY = {
    "SystemCallFilter": (
        "@system-service",
        "@privileged",
        "@resources",
        "@mount",
        "@clock",
        "@debug",
        "read",
        "chown",
        "chown:EACCES",
        "@clock:kill",
        "@mount:EPERM",
    ),
    "CapabilityBoundingSet": ("CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_RAW", "cap_kill", "CAP_FOO", "12"),
    "AmbientCapabilities": ("CAP_CHOWN", "CAP_NET_RAW", "CAP_KIL"),
    "RestrictAddressFamilies": ("AF_UNIX", "AF_INET", "AF_INET6", "AF_PACKET", "AF_NETLINK", "af_alg", "none"),
    "RestrictNamespaces": ("user", "net", "pid", "mnt", "ipc", "yes", "no", "bogus"),
    "SystemCallArchitectures": ("native", "x86", "x32", "amd64"),
    "SystemCallErrorNumber": ("EPERM", "kill", "ENOSYS", "0"),
    "NoNewPrivileges": ("yes", "no", "maybe"),
    "User": ("root", "www-data", "0", "nobody"),
    "DynamicUser": ("yes", "no", "maybe"),
    "ProtectClock": ("yes", "no"),
    "PrivateDevices": ("yes", "no", ""),
    "ProtectKernelModules": ("yes", "no"),
    "ProtectKernelLogs": ("yes", "no"),
}


@st.composite
def assignments(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(sorted(VOCABULARY)))
    words = draw(st.lists(st.sampled_from(VOCABULARY[key]), max_size=3))
    # '~' anywhere: at the start it inverts, inside it is a name; an empty value resets.
    if key in ("User", "DynamicUser", "NoNewPrivileges", "SystemCallErrorNumber") or key.startswith(
        ("Protect", "Private")
    ):
        return f"{key}={' '.join(words[:1])}"
    words = [("~" if draw(st.integers(0, 4)) == 0 else "") + word for word in words]
    prefix = "~" if draw(st.booleans()) and words else ""
    return f"{key}={prefix}{' '.join(words)}"


ORACLE_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.usefixtures("systemd_analyze")
@ORACLE_SETTINGS
@given(lines=st.lists(assignments(), min_size=1, max_size=8))
def test_systemd_agrees_with_the_reading_of_any_mix_of_lines(lines: list[str], systemd: SystemdFormat) -> None:
    with tempfile.TemporaryDirectory() as directory:
        unit = Path(directory) / "fuzz.service"
        unit.write_text("[Service]\nExecStart=/bin/true\n" + "\n".join(lines) + "\n")
        policy = systemd.read(unit)
        try:
            checks = systemd_analyze.security_checks(unit)
        except systemd_analyze.UnitRefused:
            assert any("systemd will not start the unit" in finding.message for finding in policy.findings)
        else:
            expected = systemd_analyze.expected_checks(policy, systemd.groups, set(checks))
            assert {name: checks[name] for name in expected} == expected
        warned = {(warning.file, warning.line) for warning in systemd_analyze.verify_warnings(unit)}
        assert warned <= {(finding.source, finding.line) for finding in policy.findings}


FUZZ_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
UNIT_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["[Service]", "[Unit]", "[X-Mine]", "[Bad", "", "# comment", "; comment", "\\"]),
        assignments(),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40),
    ),
    max_size=12,
).map("\n".join)


@FUZZ_SETTINGS
@given(text=UNIT_TEXT)
def test_any_text_reads_or_fails_in_one_line(text: str, systemd: SystemdFormat) -> None:
    _read_or_one_line_error(text.encode(), systemd)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=200))
def test_any_bytes_read_or_fail_in_one_line(data: bytes, systemd: SystemdFormat) -> None:
    _read_or_one_line_error(b"[Service]\n" + data, systemd)


def _read_or_one_line_error(data: bytes, systemd: SystemdFormat) -> None:
    with tempfile.TemporaryDirectory() as directory:
        unit = Path(directory) / "fuzz.service"
        unit.write_bytes(data)
        try:
            policy = systemd.read(unit)
        except PolicyParseError as error:
            assert "\n" not in str(error) and str(error).startswith(str(unit))
        else:
            assert all("\n" not in finding.message for finding in policy.findings)


# ------------------------------------------------------------------------------------------ long lines


def _joined_as_conf_parser_joins(text: str) -> list[tuple[int, str]]:
    """conf-parser.c's joining written the plain way (each line appended to the continuation and the whole
    line rescanned for a final backslash): the reference the linear reading must agree with."""
    found: list[tuple[int, str]] = []
    continuation: str | None = None
    number = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        if raw.lstrip(" \t\n\r").startswith(("#", ";")):
            continue
        line = raw if continuation is None else continuation + raw
        escaped = False
        for char in line:
            escaped = not escaped and char == "\\"
        if escaped:
            continuation = line[:-1] + " "
            continue
        continuation = None
        if line.strip(" \t\n\r"):
            found.append((number, line.strip(" \t\n\r")))
    if continuation is not None and continuation.strip(" \t\n\r"):
        found.append((number, continuation.strip(" \t\n\r")))
    return found


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="ab =\\#;\t\n\r", max_size=120))
def test_continuations_join_as_conf_parser_joins_them(text: str) -> None:
    assert list(_logical_lines(text, "u.service")) == _joined_as_conf_parser_joins(text)


def _continued_unit(directory: Path, total: int) -> Path:
    """A unit whose SystemCallFilter= line is continued over three lines, `total` bytes joined (systemd-analyze
    itself slows down on many short continued lines)."""
    first = "SystemCallFilter=read " + "write " * ((total // 2) // 6) + "\\"
    middle = "openat \\"
    last = "close" + " " * (total - len(first) - len(middle) - len("close"))
    unit = directory / "long.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n" + "\n".join([first, middle, last]) + "\n")
    return unit


@pytest.mark.parametrize("total", [LONG_LINE_MAX, LONG_LINE_MAX + 1])
def test_a_line_continued_past_systemds_limit_is_refused_as_systemd_refuses_it(
    total: int, tmp_path: Path, systemd: SystemdFormat
) -> None:
    unit = _continued_unit(tmp_path, total)
    if total > LONG_LINE_MAX:
        with pytest.raises(PolicyParseError, match=r"long.service:\d+: a line continued past 1048576 bytes"):
            systemd.read(unit)
    else:
        policy = systemd.read(unit)
        assert policy.syscalls is not None and {"read", "write", "openat", "close"} <= policy.syscalls.rules.names
    if shutil.which("systemd-analyze"):
        refused = any("No buffer space" in warning.message for warning in systemd_analyze.verify_warnings(unit))
        assert refused is (total > LONG_LINE_MAX)


def test_a_physical_line_of_systemds_limit_is_refused(tmp_path: Path, systemd: SystemdFormat) -> None:
    unit = tmp_path / "wide.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n# " + "x" * (LONG_LINE_MAX - 2) + "\n")
    with pytest.raises(PolicyParseError, match=r"wide.service:3: a line of 1048576 bytes: systemd refuses the unit"):
        systemd.read(unit)
    if shutil.which("systemd-analyze"):
        assert any("No buffer space" in warning.message for warning in systemd_analyze.verify_warnings(unit))


def test_a_name_that_is_not_ascii_is_one_systemd_ignores(tmp_path: Path, systemd: SystemdFormat) -> None:
    unit = tmp_path / "svc.service"
    unit.write_text("[Service]\nSystemCallFilter=read café\n")
    policy = systemd.read(unit)
    assert [finding.message for finding in policy.findings] == [
        "no syscall 'café' in libseccomp's tables: systemd ignores the name"
    ]


def test_a_key_systemd_reads_is_no_near_miss_of_one_profiler_reads(tmp_path: Path, systemd: SystemdFormat) -> None:
    """StateDirectoryMode= and BindReadOnlyPaths= are systemd's, and it applies them (750, a read-only bind, under
    the system manager): lint called them misspelt StateDirectory= and ReadOnlyPaths= that systemd ignores."""
    real = ["StateDirectoryMode=0750", "CacheDirectoryMode=0750", "LogsDirectoryMode=0750", "RuntimeDirectoryMode=0750"]
    real.append("BindReadOnlyPaths=/srv")
    unit = tmp_path / "app.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n" + "\n".join([*real, "ReadOnlyPath=/srv", "stateDirectory=a"]))
    near_misses = [(f.line, f.message.split(":")[0]) for f in systemd.read(unit).findings if f.rule == "unknown-key"]
    assert near_misses == [(8, "unknown key 'ReadOnlyPath'"), (9, "unknown key 'stateDirectory'")]


def test_the_committed_keys_are_the_installed_systemds() -> None:
    if not Path("/lib/systemd/systemd").exists():
        pytest.skip("systemd is not installed here")
    dumped = subprocess.run(
        ["/lib/systemd/systemd", "--dump-configuration-items"], capture_output=True, text=True, check=True
    ).stdout
    version = subprocess.run(["/lib/systemd/systemd", "--version"], capture_output=True, text=True).stdout
    if not version.startswith("systemd 252 "):
        pytest.skip(f"the table is systemd 252's; this is {version.splitlines()[0]}")
    assert systemd_keys() == {
        line.partition("=")[0] for line in dumped.splitlines() if "=" in line and line[0].isalpha()
    }
