"""The OCI seccomp profile rendered from real traces: golden files, determinism, and what each rule says."""

import json
from collections.abc import Callable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from generators.interface import RenderOptions
from generators.profile import Profile, UnresolvedSyscall, build_profile
from generators.seccomp.oci import OciFormat
from generators.seccomp.spec import seccomp_spec
from profiler.trace import Trace
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import evidence, make_profile, profiles

Golden = Callable[[str, str], None]
ARGS = RenderOptions(argument_filters=True)


def rules_of(text: str) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = json.loads(text)["syscalls"]
    return rules


def test_golden_git_clone_three_runs(committed_profile: LoadTraces, golden: Golden) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    golden("oci/git-clone.json", OciFormat().render(profile, RenderOptions(min_runs=3)))


def test_golden_without_comments(committed_profile: LoadTraces, golden: Golden) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    golden("oci/git-clone-no-comments.json", OciFormat().render(profile, RenderOptions(comments=False)))


def test_golden_argument_filters(committed_profile: LoadTraces, golden: Golden) -> None:
    for name in ("curl-fetch", "unshare-user-net", "pip-install"):
        golden(f"oci/{name}-args.json", OciFormat().render(committed_profile(name), ARGS))


def test_same_traces_in_any_order_give_the_same_bytes(
    committed_trace: Callable[[str], tuple[str, Trace]],
) -> None:
    traces = [committed_trace(name) for name in ("git-clone", "git-clone-bare", "git-clone-shallow")]
    forward = OciFormat().render(build_profile(traces), ARGS)
    assert forward == OciFormat().render(build_profile(traces[::-1]), ARGS)
    assert forward == OciFormat().render(build_profile(traces), ARGS)


@settings(max_examples=150, deadline=None)
@given(profile=profiles(), comments=st.booleans(), portability=st.booleans(), argument_filters=st.booleans())
def test_rendering_is_deterministic_json(
    profile: Profile, comments: bool, portability: bool, argument_filters: bool
) -> None:
    options = RenderOptions(comments=comments, portability=portability, argument_filters=argument_filters)
    text = OciFormat().render(profile, options)
    assert text == OciFormat().render(profile, options)
    document = json.loads(text)
    assert list(document)[-4:] == ["defaultAction", "defaultErrnoRet", "architectures", "syscalls"]
    assert ("comment" in document) == comments


def test_each_rule_says_where_its_syscall_was_seen_and_marks_the_uncertain(committed_profile: LoadTraces) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    text = OciFormat().render(profile, RenderOptions(min_runs=3))
    comments = {tuple(rule["names"]): rule["comment"] for rule in rules_of(text)}  # type: ignore[arg-type]
    assert comments[("chmod",)] == "27× in 3/3 runs by /usr/bin/git"
    assert comments[("socket",)] == "8× in 2/3 runs by /usr/bin/git (uncertain: seen in fewer than 3 runs)"
    assert comments[("gettimeofday",)] == "not seen: answered by the vDSO where the clocksource allows"
    assert json.loads(text)["comment"][2] == "syscalls marked uncertain were seen in fewer than 3 of the 3 runs"
    enosys = [rule for rule in rules_of(text) if rule.get("errnoRet") == 38]
    assert len(enosys) == 1 and "statx" in enosys[0]["names"]  # type: ignore[operator]
    certain = rules_of(OciFormat().render(profile, RenderOptions()))
    assert not any("uncertain" in str(rule.get("comment")) for rule in certain)


def test_unresolved_numbers_are_named_in_the_comment_only() -> None:
    profile = replace(
        make_profile(syscalls=("read", "exit_group")),
        unresolved=(UnresolvedSyscall(463, "x86_64", "libseccomp 2.5.4 knows no syscall 463 on x86_64", evidence()),),
    )
    document = json.loads(OciFormat().render(profile, RenderOptions()))
    names = {name for rule in document["syscalls"] for name in rule["names"]}
    assert not any("463" in name for name in names)
    assert document["comment"][-1] == (
        "not allowed, as libseccomp names no syscall 463 on x86_64 (libseccomp 2.5.4 knows no syscall 463 on "
        "x86_64): 1× in 1/1 runs by /usr/bin/service"
    )


def test_architectures_name_the_compat_abi_the_profile_used() -> None:
    profile = make_profile(syscalls=("read", "exit_group", "socketcall"), compat=("socketcall",))
    document = json.loads(OciFormat().render(profile, ARGS))
    assert document["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    socketcall = next(rule for rule in document["syscalls"] if rule["names"] == ["socketcall"])
    assert socketcall["comment"] == "1× in 1/1 runs by /opt/old32 (ABI x86)"
    assert (
        "socketcall (32-bit x86) passes socket()'s arguments in memory: its families cannot be limited"
        in document["comment"]
    )


def test_argument_filters_limit_socket_to_each_family_seen(committed_profile: LoadTraces) -> None:
    sockets = [
        rule
        for rule in rules_of(OciFormat().render(committed_profile("curl-fetch"), ARGS))
        if rule["names"] == ["socket"]
    ]
    assert [(rule["args"], str(rule["comment"]).split(":")[0]) for rule in sockets] == [
        ([{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}], "AF_UNIX"),
        ([{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}], "AF_INET"),
    ]


def test_argument_filters_limit_unshare_to_the_types_seen(committed_profile: LoadTraces) -> None:
    rules = rules_of(OciFormat().render(committed_profile("unshare-user-net"), ARGS))
    unshare = next(rule for rule in rules if rule["names"] == ["unshare"])
    # every CLONE_NEW* bit but CLONE_NEWUSER (0x10000000) and CLONE_NEWNET (0x40000000) must be clear
    assert unshare["args"] == [{"index": 0, "value": 0x2E020080, "op": "SCMP_CMP_MASKED_EQ"}]
    assert str(unshare["comment"]).startswith(
        "only without CLONE_NEWTIME|CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID (namespace "
        "types not seen): "
    )


def test_clone_limited_and_clone3_answers_enosys_even_when_seen(committed_profile: LoadTraces) -> None:
    profile = committed_profile("pip-install")
    assert {"clone", "clone3"} <= profile.syscall_names()
    rules = rules_of(OciFormat().render(profile, ARGS))
    clone = next(rule for rule in rules if rule["names"] == ["clone"])
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    clone3 = next(rule for rule in rules if "clone3" in rule["names"])  # type: ignore[operator]
    assert (clone3["names"], clone3["action"], clone3["errnoRet"]) == (["clone3"], "SCMP_ACT_ERRNO", 38)
    assert str(clone3["comment"]).startswith("seen (")
    assert "seccomp cannot see them: ENOSYS makes the C library fall back to clone" in str(clone3["comment"])
    assert not [rule for rule in rules if rule["names"] == ["clone3"] and rule["action"] == "SCMP_ACT_ALLOW"]


def test_clone_added_as_the_fallback_when_only_clone3_was_seen() -> None:
    profile = make_profile(syscalls=("read", "exit_group", "clone3"))
    rules = rules_of(OciFormat().render(profile, ARGS))
    clone = next(rule for rule in rules if rule["names"] == ["clone"])
    assert str(clone["comment"]).endswith(": not seen: the C library falls back to clone when clone3 answers ENOSYS")
    unlimited = rules_of(OciFormat().render(profile, RenderOptions()))
    assert ["clone3"] in [rule["names"] for rule in unlimited if rule["action"] == "SCMP_ACT_ALLOW"]
    assert ["clone"] not in [rule["names"] for rule in unlimited]


def test_setns_cannot_be_limited_and_says_so() -> None:
    profile = make_profile(syscalls=("read", "exit_group", "setns"))
    assert "setns is not limited: setns(fd, 0) joins a namespace of any type" in seccomp_spec(profile, ARGS).notes


def test_no_portability_leaves_out_the_vdso_syscalls_and_the_enosys_rule() -> None:
    profile = make_profile(syscalls=("read", "exit_group"))
    rules = rules_of(OciFormat().render(profile, RenderOptions(portability=False, runtimes=())))
    assert [rule["names"] for rule in rules] == [["exit_group"], ["read"]]


def test_a_newline_in_a_program_path_stays_in_its_comment() -> None:
    profile = make_profile(syscalls=("read",))
    odd = replace(profile.syscalls[0], evidence=evidence(program="/tmp/a\nb"))
    rules = rules_of(OciFormat().render(replace(profile, syscalls=(odd,)), RenderOptions(runtimes=())))
    read = next(rule for rule in rules if rule["names"] == ["read"])
    assert read["comment"] == "1× in 1/1 runs by /tmp/a\\nb"


def test_a_family_made_only_by_socketpair_gets_no_socket_rule() -> None:
    profile = make_profile(syscalls=("socket", "socketpair", "exit_group"), families=["AF_INET"], paired=["AF_UNIX"])
    sockets = [rule for rule in rules_of(OciFormat().render(profile, ARGS)) if rule["names"] == ["socket"]]
    assert [rule["args"] for rule in sockets] == [[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]]
    only_paired = make_profile(syscalls=("socket", "socketpair", "exit_group"), paired=["AF_UNIX"])
    assert (
        "socket() is not limited: the traces recorded no family made by socket()"
        in seccomp_spec(only_paired, ARGS).notes
    )
