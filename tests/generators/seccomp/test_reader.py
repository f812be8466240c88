"""Reading OCI seccomp profiles: the consumers' semantics, lint findings, bad files, fuzzing and round trips."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generators.interface import UNRESTRICTED, ListMode, NameSet, PolicyFormat, RenderOptions
from generators.profile import Profile
from generators.seccomp.json_lines import JsonPath, json_value_lines
from generators.seccomp.oci import OciFormat
from generators.seccomp.reading import IncludeContext
from generators.seccomp.spec import DOCKER_DEFAULT_CAPABILITIES, seccomp_spec
from generators.syscall_plan import plan_syscalls
from profiler import abi
from profiler.errors import PolicyParseError
from tests.generators.conftest import REPOSITORY
from tests.generators.profile_builders import profiles

DOCKER_STYLE = REPOSITORY / "tests" / "fixtures" / "oci" / "docker-style.json"
HOST = IncludeContext(DOCKER_DEFAULT_CAPABILITIES, "x86_64", (6, 18))


def read(text: str, context: IncludeContext = HOST) -> object:
    return OciFormat(context).parse(text, "p.json")


def document(*rules: dict[str, object], **top: object) -> str:
    return json.dumps({"defaultAction": "SCMP_ACT_ERRNO", **top, "syscalls": list(rules)}, indent=1)


# --- the consumers' semantics ----------------------------------------------------------------------------------------


def test_docker_style_profile_read_as_docker_reads_it_for_default_capabilities() -> None:
    policy = OciFormat(HOST).read(DOCKER_STYLE)
    assert policy.format is PolicyFormat.OCI
    assert policy.syscalls is not None
    assert policy.syscalls.rules == NameSet(
        ListMode.ALLOW,
        frozenset(
            {"read", "write", "openat", "close", "mmap", "exit_group", "socketcall", "chown32", "socket",
             "arch_prctl", "clone", "ptrace", "chmod"}
        ),
    )  # fmt: skip
    assert policy.syscalls.default_errno == "EPERM"
    assert policy.syscalls.errnos == (("clone3", "ENOSYS"), ("kill", None))
    assert policy.architectures == {"x86_64", "x86", "x32"}
    # socket() refuses AF_VSOCK, but socketcall lets 32-bit programs make any socket
    assert policy.address_families == UNRESTRICTED
    # clone without CLONE_NEW*, clone3 ENOSYS, neither unshare nor setns: no namespace at all
    assert policy.namespaces == NameSet(ListMode.ALLOW, frozenset())
    assert [str(finding) for finding in policy.findings] == [
        f"{DOCKER_STYLE}:4: archMap: Docker, podman and CRI-O use the entry of the host's architecture (read here "
        "for x86_64); containerd ignores archMap and filters the native ABI only",
        f"{DOCKER_STYLE}:14: syscalls: socketcall is allowed for 32-bit x86 programs, and passes socket()'s "
        "arguments in memory where seccomp cannot see them: the socket family limits do not hold for those programs",
        f"{DOCKER_STYLE}:16: syscalls[0].names[8]: libseccomp 2.5.4 knows no syscall 'no_such_call' on any "
        "architecture: runtimes skip it",
        f"{DOCKER_STYLE}:25: syscalls[2]: includes/excludes: Docker, podman and CRI-O keep or drop these rules by "
        "the container's capabilities and the host's ABI and kernel (read here for Docker's default "
        "capabilities, x86_64, Linux 6.18); containerd ignores both keys and applies every such rule",
        f"{DOCKER_STYLE}:53: syscalls[7].name: only Docker reads the old name key; containerd ignores it: write names",
        f"{DOCKER_STYLE}:60: write: SCMP_ACT_ERRNO has no effect: libseccomp keeps the first unconditional rule "
        "of a syscall, SCMP_ACT_ALLOW (line 15), so it is ignored",
        f"{DOCKER_STYLE}:66: defaultErrno: unknown key 'defaultErrno' (did you mean defaultErrnoRet?): docker, "
        "podman, containerd and CRI-O ignore keys they do not know, so it has no effect",
    ]


def test_includes_follow_the_container_capabilities() -> None:
    admin = IncludeContext(DOCKER_DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN"}, "x86_64", (6, 18))
    policy = OciFormat(admin).read(DOCKER_STYLE)
    assert policy.syscalls is not None
    assert {"mount", "unshare", "clone3", "setns"} <= policy.syscalls.rules.names
    assert policy.syscalls.errnos == (("kill", None),)
    assert policy.namespaces == UNRESTRICTED


def test_includes_follow_the_host_abi_and_kernel() -> None:
    arm = OciFormat(IncludeContext(DOCKER_DEFAULT_CAPABILITIES, "aarch64", (4, 4))).read(DOCKER_STYLE)
    assert arm.architectures == {"aarch64", "arm"}
    assert arm.syscalls is not None
    assert "arch_prctl" not in arm.syscalls.rules.names  # includes arches amd64, x32
    assert "ptrace" not in arm.syscalls.rules.names  # includes minKernel 4.8


def test_socket_family_limits_without_socketcall() -> None:
    vsock = {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}
    policy = read(document({"names": ["read"], "action": "SCMP_ACT_ALLOW"}, vsock))
    assert policy.address_families == NameSet(ListMode.DENY, frozenset({"AF_VSOCK"}))

    only = [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": number, "op": "SCMP_CMP_EQ"}]}
        for number in (1, 10)
    ]
    assert read(document(*only)).address_families == NameSet(ListMode.ALLOW, frozenset({"AF_UNIX", "AF_INET6"}))
    assert read(document({"names": ["read"], "action": "SCMP_ACT_ALLOW"})).address_families == NameSet(
        ListMode.ALLOW, frozenset()
    )
    type_only = {
        "names": ["socket"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}],
    }
    assert read(document(type_only)).address_families == UNRESTRICTED


def test_a_deny_list_profile() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["ptrace", "bpf"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_EQ"}],
                },
                {"names": ["statx"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ],
        }
    )
    policy = read(text)
    assert policy.syscalls is not None
    assert policy.syscalls.rules == NameSet(ListMode.DENY, frozenset({"ptrace", "bpf", "kexec_load", "statx"}))
    assert policy.syscalls.default_errno == "EPERM"
    assert policy.syscalls.errnos == (("kexec_load", None), ("statx", "ENOSYS"))
    assert policy.address_families == NameSet(ListMode.DENY, frozenset({"AF_PACKET"}))
    assert policy.architectures == {"x86_64"}
    assert policy.findings == ()


def test_first_unconditional_rule_wins_and_default_action_rules_are_skipped() -> None:
    policy = read(
        document(
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},  # does what the default does: skipped
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
        )
    )
    assert policy.syscalls.rules.names == {"read"}
    assert policy.syscalls.errnos == (("write", "ENOSYS"),)
    assert [finding.message for finding in policy.findings] == [
        "write: SCMP_ACT_ALLOW has no effect: libseccomp keeps the first unconditional rule of a syscall, "
        "SCMP_ACT_ERRNO (line 17), so it is ignored"
    ]


def test_actions_that_run_the_syscall_and_those_that_refuse_it() -> None:
    policy = read(
        document(
            {"names": ["read"], "action": "SCMP_ACT_LOG"},
            {"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["close"], "action": "SCMP_ACT_TRACE"},
            {"names": ["openat"], "action": "SCMP_ACT_TRAP"},
            {"names": ["mmap"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0},
            listenerPath="/run/agent.sock",
        )
    )
    assert policy.syscalls.rules.names == {"read", "getpid"}
    assert policy.syscalls.errnos == (("close", "ENOSYS"), ("mmap", "0"), ("openat", None))
    assert [finding.message.split(":")[0] for finding in policy.findings] == [
        "syscalls[1]",
        "syscalls[2]",
        "syscalls[4].errnoRet",
    ]


def test_an_argument_compared_twice_is_an_or_as_runc_reads_it() -> None:
    between = {
        "names": ["socket"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 10, "op": "SCMP_CMP_LE"}],
    }
    policy = read(document(between))
    assert policy.address_families == UNRESTRICTED  # a0 >= 2 or a0 <= 10: every family
    assert [finding.message for finding in policy.findings] == [
        "syscalls[0].args: compares an argument more than once: runc then makes each comparison a rule of its "
        "own, so the call matches when any one holds (or), not all (and)"
    ]


def test_no_architectures_means_the_native_abi_only() -> None:
    assert read(document()).architectures == {"x86_64"}
    assert read(document(architectures=["SCMP_ARCH_X86"])).architectures == {"x86_64", "x86"}


def test_a_key_given_twice_is_a_finding() -> None:
    text = '{"defaultAction": "SCMP_ACT_ALLOW",\n "defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}'
    policy = read(text)
    assert policy.syscalls.rules == NameSet(ListMode.ALLOW, frozenset())
    assert [str(finding) for finding in policy.findings] == [
        "p.json:2: defaultAction is given twice: runtimes keep the later value"
    ]


# --- bad files -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x7fELF\x02\x01\x01\x00\xff\xfe", "p.json: not an OCI seccomp profile (not UTF-8 text)"),
        (b"", "p.json: empty file; give an OCI seccomp profile"),
        (b"[Service]\nSystemCallFilter=read\n", "p.json:1: not valid JSON (Expecting value, column 2)"),
        (b"# seccomp\n", "p.json: not an OCI seccomp profile (not JSON)"),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],',
            "p.json:1: not valid JSON (Expecting property name enclosed in double quotes, column 69), perhaps "
            "truncated",
        ),
        (b'{"defaultAction": NaN}', "p.json: not valid JSON: NaN is not JSON"),
        (b"[1, 2]", "p.json:1: the top level: must be an object, not a list"),
        (
            b"{}",
            "p.json:1: the top level: no defaultAction: runtimes refuse the profile (Docker reads {} as no filter "
            "at all)",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_DENY"}',
            "p.json:1: defaultAction: 'SCMP_ACT_DENY' is not a seccomp action (SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
            "SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, "
            "SCMP_ACT_NOTIFY); runtimes refuse it",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}',
            "p.json:1: defaultErrnoRet: SCMP_ACT_ALLOW takes no errno; the runtime-spec requires runtimes to fail",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}',
            "p.json:2: syscalls[0].names: must be a list of strings",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",\n'
            b' "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
            "p.json:2: syscalls[0].args[0].index: must be an integer from 0 to 5, not 6",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_NOTIFY"}',
            "p.json:1: defaultAction: SCMP_ACT_NOTIFY as the default action: runc refuses the profile",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}',
            "p.json:1: syscalls[0].names: SCMP_ACT_NOTIFY on write: runc refuses the profile",
        ),
        (
            b'{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": []}',
            "p.json:1: archMap: architectures and archMap together: Docker refuses the profile",
        ),
    ],
)
def test_bad_files_are_one_line_errors(content: bytes, message: str) -> None:
    with pytest.raises(PolicyParseError) as error:
        OciFormat(HOST).parse(content, "p.json")
    assert str(error.value) == message


def test_a_directory_and_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyParseError, match=r"is a directory; give a policy file$"):
        OciFormat().read(tmp_path)
    with pytest.raises(PolicyParseError, match=r"cannot read: No such file or directory$"):
        OciFormat().read(tmp_path / "missing.json")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1, 2**65) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.sampled_from(["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ARCH_X86", "SCMP_CMP_EQ", "read", "socket"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls", "names", "name", "action",
             "errnoRet", "args", "index", "value", "valueTwo", "op", "includes", "excludes", "caps", "arches",
             "minKernel", "comment", "flags", "architecture", "subArchitectures"]
        ) | st.text(max_size=5),
        children,
        max_size=5,
    ),
    max_leaves=30,
)  # fmt: skip


def _read_or_one_line_error(content: str | bytes) -> None:
    try:
        OciFormat(HOST).parse(content, "fuzz.json")
    except PolicyParseError as error:
        assert "\n" not in str(error) and str(error).startswith("fuzz.json")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_fuzzed_documents_read_or_fail_in_one_line(value: object) -> None:
    _read_or_one_line_error(json.dumps(value))
    if isinstance(value, dict):
        _read_or_one_line_error(json.dumps({"defaultAction": "SCMP_ACT_ERRNO", **value}))


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_bytes_read_or_fail_in_one_line(content: bytes) -> None:
    _read_or_one_line_error(content)


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_every_truncation_of_a_real_profile_fails_in_one_line_or_reads(cut: int) -> None:
    text = DOCKER_STYLE.read_text()
    _read_or_one_line_error(text[: cut % len(text)])


# --- render, then read back ------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(profile=profiles(), portability=st.booleans(), argument_filters=st.booleans(), comments=st.booleans())
def test_render_then_read_gives_the_same_sets(
    profile: Profile, portability: bool, argument_filters: bool, comments: bool
) -> None:
    options = RenderOptions(comments=comments, portability=portability, argument_filters=argument_filters)
    policy = read(OciFormat().render(profile, options))
    spec = seccomp_spec(profile, options)
    plan = plan_syscalls(profile, portability, runtimes=options.runtimes)
    assert policy.findings == ()
    assert policy.syscalls is not None and policy.syscalls.rules.mode is ListMode.ALLOW
    assert policy.syscalls.rules.names == {
        name for rule in spec.rules if rule.action == "SCMP_ACT_ALLOW" for name in rule.names
    }
    assert dict(policy.syscalls.errnos) == {
        name: "ENOSYS" for rule in spec.rules if rule.errno_ret == 38 for name in rule.names
    }
    moved_to_enosys = {"clone3"} if argument_filters else set()
    assert set(plan.allowed) - moved_to_enosys <= policy.syscalls.rules.names
    assert policy.syscalls.rules.names - set(plan.allowed) <= {"clone"}
    assert policy.architectures == set(profile.abis())
    socket = "socket" in plan.allowed
    made_by_socket = {family.name for family in profile.families if family.restricted_by_socket_filters}
    if argument_filters and socket and made_by_socket:
        assert policy.address_families == NameSet(ListMode.ALLOW, frozenset(made_by_socket))
    else:
        assert policy.address_families == (UNRESTRICTED if socket else NameSet(ListMode.ALLOW, frozenset()))
    for need in profile.namespaces:
        if need.name != "any" and set(need.syscalls) & {"unshare", "clone", "clone3"} & set(plan.allowed):
            assert policy.namespaces.allows(need.name)
    assert all(name in abi.ADDRESS_FAMILIES for name in policy.address_families.names)


# --- the line of every value ---------------------------------------------------------------------------------------


def _lines_walking_every_path(text: str) -> tuple[dict[JsonPath, int], list[tuple[JsonPath, int]]]:
    """The reference: every token listed, then each path's line recorded by walking them recursively (the
    member of a key given twice keeps its first key's line and takes the nested lines of its later value)."""
    tokens: list[tuple[str, int]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        tokens += [(token, number) for token in re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', line)]
    lines: dict[JsonPath, int] = {}
    repeated: list[tuple[JsonPath, int]] = []
    position = 0

    def value(path: JsonPath) -> None:
        nonlocal position
        token, line = tokens[position]
        position += 1
        lines.setdefault(path, line)
        closing = {"{": "}", "[": "]"}.get(token)
        index = 0
        while closing and tokens[position][0] != closing:
            position += tokens[position][0] == ","
            if closing == "]":
                value((*path, index))
                index += 1
                continue
            key, key_line = tokens[position]
            member = (*path, json.loads(key))
            if member in lines:
                repeated.append((member, key_line))
                for nested in [each for each in lines if each[: len(member)] == member and each != member]:
                    del lines[nested]
            lines.setdefault(member, key_line)
            position += 2
            value(member)
        position += bool(closing)

    value(())
    return lines, repeated


SPACE = st.sampled_from(["", " ", "\n", "\n  ", " \n"])
KEYS = st.sampled_from(['"a"', '"b"', '"na\\"me"', '"syscalls"', '"\\u00e9"'])
SCALARS = st.sampled_from(["1", "-2.5e3", "true", "null", '"x"', '"a, [b]: {c}"', '"\\\\"'])
JSON_TEXT = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(st.tuples(SPACE, inner, SPACE), max_size=4).map(
            lambda items: "[" + ",".join(f"{a}{item}{b}" for a, item, b in items) + "]"
        ),
        st.lists(st.tuples(SPACE, KEYS, SPACE, inner, SPACE), max_size=4).map(
            lambda members: "{" + ",".join(f"{a}{key}:{b}{item}{c}" for a, key, b, item, c in members) + "}"
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(text=JSON_TEXT)
def test_every_path_has_the_line_a_walk_over_every_token_finds(text: str) -> None:
    json.loads(text)
    located = json_value_lines(text)
    lines, repeated = _lines_walking_every_path(text)
    assert dict(located.lines) == lines
    assert list(located.repeated) == repeated
    assert all(located.lines.get(path) == line for path, line in lines.items())


def test_a_name_that_is_not_ascii_or_holds_nul_is_unknown_not_a_traceback() -> None:
    """libseccomp's binding encodes names as ASCII (UnicodeEncodeError otherwise), and C stops at a NUL."""
    document = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["café", "read\x00x"], "action": "SCMP_ACT_ALLOW"}],
    }
    policy = OciFormat(HOST).parse(json.dumps(document), "p.json")
    assert policy.syscalls is not None and not policy.syscalls.rules.names
    assert [finding.message.split(":")[1] for finding in policy.findings] == [
        " libseccomp 2.5.4 knows no syscall 'café' on any architecture",
        " libseccomp 2.5.4 knows no syscall 'read\\x00x' on any architecture",
    ]
