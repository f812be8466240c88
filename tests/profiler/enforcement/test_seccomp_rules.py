"""SeccompRules without running anything: which setting answers a call, and the filter's rules agree with it."""

import socket

from hypothesis import given
from hypothesis import strategies as st

from profiler import abi
from profiler.enforcement.confinement import Answer, SeccompRules, SyscallList
from profiler.enforcement.seccomp_filter import Action, Condition, filter_rules

LIST = Answer("EPERM", "SystemCallFilter=")
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
NAMES = ("read", "write", "socket", "clone", "clone3", "unshare", "setns", "uname", "getcwd")


def test_the_syscall_list_answers_last_as_the_filter_loaded_last_does() -> None:
    rules = SeccompRules(
        families=frozenset({"AF_UNIX"}),
        syscalls=SyscallList(True, frozenset({"read"}), LIST),
    )
    assert rules.answer("read", (0,) * 6) is None
    assert rules.answer("socket", (socket.AF_INET, 1, 0, 0, 0, 0)) == LIST  # refused by both: the list's errno


def test_a_family_a_namespace_and_clone3_are_answered_by_their_settings() -> None:
    allowed = SyscallList(False, frozenset(), LIST)
    rules = SeccompRules(families=frozenset({"AF_UNIX"}), namespaces=frozenset({"CLONE_NEWNET"}), syscalls=allowed)
    assert rules.answer("socket", (socket.AF_UNIX, 1, 0, 0, 0, 0)) is None
    refused = Answer("EAFNOSUPPORT", "RestrictAddressFamilies=")
    assert rules.answer("socket", (socket.AF_PACKET, 3, 0, 0, 0, 0)) == refused
    assert rules.answer("socket", (socket.AF_UNIX, 1, 0, 0, 0, 0), multiplexed=True) is not None
    assert rules.answer("unshare", (CLONE_NEWNET, 0, 0, 0, 0, 0)) is None
    assert rules.answer("unshare", (CLONE_NEWUSER, 0, 0, 0, 0, 0)) == Answer("EPERM", "RestrictNamespaces=")
    assert rules.answer("setns", (3, 0, 0, 0, 0, 0)) is not None  # any type, where only some are allowed
    assert rules.answer("clone3", (0,) * 6) == Answer("ENOSYS", "RestrictNamespaces=")


def test_a_killing_answer_wins_over_an_errno() -> None:
    rules = SeccompRules(
        overrides=(("uname", Answer("EPERM", "ProtectHostname=yes")),),
        syscalls=SyscallList(True, frozenset(), Answer(None, "SystemCallFilter=")),
    )
    assert rules.answer("uname", (0,) * 6) == Answer(None, "SystemCallFilter=")
    default, rules_added = filter_rules(rules)
    assert default is Action.NOTIFY and not [rule for rule in rules_added if rule.syscall == "uname"]


def test_socket_families_become_one_rule_per_family() -> None:
    rules = SeccompRules(families=frozenset({"AF_UNIX", "AF_INET"}))
    default, added = filter_rules(rules)
    assert default is Action.ALLOW
    refused = {rule.condition for rule in added if rule.syscall == "socket"}
    assert Condition(0, socket.AF_PACKET) in refused and Condition(0, socket.AF_UNIX) not in refused
    assert Condition(0, len(abi.ADDRESS_FAMILIES), at_least=True) in refused


@given(
    allow_list=st.booleans(),
    names=st.frozensets(st.sampled_from(NAMES)),
    errnos=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["ENOSYS", None])),
    name=st.sampled_from(NAMES),
)
def test_the_filter_refuses_exactly_what_answer_refuses(
    allow_list: bool, names: frozenset[str], errnos: dict[str, str | None], name: str
) -> None:
    answers = tuple((each, Answer(value, "SystemCallFilter=")) for each, value in sorted(errnos.items()))
    rules = SeccompRules(syscalls=SyscallList(allow_list, names, LIST, answers))
    default, added = filter_rules(rules)
    action = next((rule.action for rule in added if rule.syscall == name), default)
    answer = rules.answer(name, (0,) * 6)
    expected = Action.ALLOW if answer is None else Action.NOTIFY
    assert action is expected
