"""SeccompRules compiled into libseccomp filters, one per ABI, merged: allowed calls run, and every refused one
goes to the launcher's supervisor (SCMP_ACT_NOTIFY), which records it and answers with the errno the rules give,
or kills the process where they say so (a syscall of an ABI the rules leave out included).

Why notification rather than SCMP_ACT_ERRNO and SCMP_ACT_KILL_PROCESS: a call seccomp refuses never reaches the
raw_syscalls tracepoints (seccomp runs before trace_sys_enter), and SCMP_ACT_LOG allows the call; only a
supervisor that answers each refusal sees its pid and syscall, and can name the program and the setting. A
refusal costs a round trip to the supervisor (tens of microseconds); an allowed call costs what any filter costs.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from profiler import abi, syscalls
from profiler.enforcement.confinement import SYS_SOCKET, SeccompRules


class Action(Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # refused: the supervisor answers, or kills


@dataclass(frozen=True, slots=True)
class Condition:
    """An argument test: (argument & mask) == value where mask is given, else argument == value, or >= value."""

    argument: int
    value: int
    mask: int | None = None
    at_least: bool = False
    not_equal: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    syscall: str
    action: Action
    condition: Condition | None = None
    translated: bool = False  # added as libseccomp rewrites it for the ABI, not exactly


# The syscalls whose arguments a restriction looks at; every other one is allowed or refused whole.
_ARGUMENT_SYSCALLS = ("socket", "clone", "unshare", "setns", "clone3")


def _whole(rules: SeccompRules, name: str) -> Action | None:
    """The action on every call of a syscall, or None when its arguments decide."""
    answer = rules.answer(name, (0, 0, 0, 0, 0, 0))
    listed = rules.syscalls.refusal(name) if rules.syscalls is not None else None
    overridden = [each for syscall, each in rules.overrides if syscall == name]
    if listed is not None or overridden:
        assert answer is not None
        return Action.NOTIFY
    if name in _ARGUMENT_SYSCALLS and (rules.families is not None or rules.namespaces is not None):
        return None
    return Action.ALLOW


def _argument_rules(rules: SeccompRules, name: str) -> Iterator[Rule]:
    """Rules for each value of the argument a restriction tests: one set allowed, the other refused."""
    refuse = Action.NOTIFY
    if name == "socket" and rules.families is not None:
        for number, family in enumerate(abi.ADDRESS_FAMILIES):
            yield Rule(name, Action.ALLOW if family in rules.families else refuse, Condition(0, number))
        yield Rule(name, refuse, Condition(0, len(abi.ADDRESS_FAMILIES), at_least=True))
        return
    if rules.namespaces is None:
        yield Rule(name, Action.ALLOW)
        return
    refused = rules.refused_namespace_mask()
    match name:
        case "clone" | "unshare":
            yield Rule(name, Action.ALLOW, Condition(0, 0, refused))
            for bit in abi.NAMESPACE_FLAGS:
                if bit & refused:
                    yield Rule(name, refuse, Condition(0, bit, bit))
        case "setns":
            for bit in abi.NAMESPACE_FLAGS:
                yield Rule(name, refuse if bit & refused else Action.ALLOW, Condition(1, bit))
            yield Rule(name, refuse if refused else Action.ALLOW, Condition(1, 0))
        case "clone3":
            yield Rule(name, refuse if refused else Action.ALLOW)
        case _:
            yield Rule(name, Action.ALLOW)


def default_action(rules: SeccompRules) -> Action:
    listed = rules.syscalls
    if listed is None or not listed.allow_list:
        return Action.ALLOW
    return Action.NOTIFY


def filter_rules(rules: SeccompRules, abi_name: str | None = None) -> tuple[Action, tuple[Rule, ...]]:
    """The default action and the rules that differ from it on one ABI (the native one by default)."""
    abi_name = abi_name or syscalls.native_abi()
    default = default_action(rules)
    named: set[str] = {name for name, _ in rules.overrides}
    if rules.syscalls is not None:
        named |= rules.syscalls.names | {name for name, _ in rules.syscalls.answers}
    if rules.families is not None or rules.namespaces is not None:
        named |= set(_ARGUMENT_SYSCALLS)
    out: list[Rule] = []
    multiplexed = rules.families is not None and syscalls.syscall_number(abi_name, "socketcall") is not None
    for name in sorted(named - {"socket", "socketcall"} if multiplexed else named):
        if syscalls.direct_syscall_number(abi_name, name) is None:
            continue  # a name libseccomp does not know on this ABI: systemd skips it too
        whole = _whole(rules, name)
        candidates: Iterable[Rule] = [Rule(name, whole)] if whole is not None else _argument_rules(rules, name)
        out += [rule for rule in candidates if rule.action is not default]
    if multiplexed:
        out += _multiplexed_socket_rules(rules, default)
    return default, tuple(out)


def _multiplexed_socket_rules(rules: SeccompRules, default: Action) -> list[Rule]:
    """Where socket() is also multiplexed (32-bit x86), socketcall(SYS_SOCKET, args) passes the family in memory,
    where seccomp cannot look, and libseccomp turns a family test on socket() into an untested socketcall rule:
    so socket() is refused whole there, both ways, and the rest of socketcall() is as the list says."""
    socketcall = _whole(rules, "socketcall")
    if default is Action.ALLOW:
        # libseccomp's translation of a refused socket() refuses socketcall(SYS_SOCKET) too
        return [Rule("socket", Action.NOTIFY, translated=True)] + (
            [Rule("socketcall", socketcall)] if socketcall is not None and socketcall is not Action.ALLOW else []
        )
    if socketcall is Action.ALLOW or socketcall is None:
        return [Rule("socketcall", Action.ALLOW, Condition(0, SYS_SOCKET, not_equal=True))]
    return [Rule("socketcall", socketcall)] if socketcall is not default else []


def _seccomp_action(module: Any, action: Action) -> Any:
    return {Action.ALLOW: module.ALLOW, Action.NOTIFY: module.NOTIFY}[action]


def local_abis() -> tuple[str, ...]:
    """The ABIs this kernel runs: the native one first, then the compat ones."""
    native = syscalls.native_abi()
    compat = syscalls.COMPAT_ABIS.get(native)
    return (native, compat) if compat else (native,)


def _abi_filter(module: Any, rules: SeccompRules, abi_name: str, no_new_privileges: bool) -> Any:
    """The filter of one ABI, its rules added exactly as given but where said (_multiplexed_socket_rules)."""
    default, rules_to_add = filter_rules(rules, abi_name)
    built = module.SyscallFilter(_seccomp_action(module, default))
    # libseccomp sets no_new_privs on load unless told not to; whether to is the policy's choice.
    built.set_attr(module.Attr.CTL_NNP, 1 if no_new_privileges else 0)
    # A syscall of an ABI the rules leave out goes to the supervisor too, which kills the process as systemd's
    # SystemCallArchitectures= does (libseccomp's default bad-architecture action).
    built.set_attr(module.Attr.ACT_BADARCH, module.NOTIFY)
    if abi_name != syscalls.native_abi():
        built.add_arch(getattr(module.Arch, abi_name.upper()))
        built.remove_arch(module.Arch.NATIVE)
    for rule in rules_to_add:
        action = _seccomp_action(module, rule.action)
        condition = rule.condition
        if rule.translated:
            built.add_rule(action, rule.syscall)
            continue
        if condition is None:
            built.add_rule_exactly(action, rule.syscall)
            continue
        if condition.mask is not None:
            test = module.Arg(condition.argument, module.MASKED_EQ, condition.mask, condition.value)
        else:
            operator = module.GE if condition.at_least else module.NE if condition.not_equal else module.EQ
            test = module.Arg(condition.argument, operator, condition.value)
        built.add_rule_exactly(action, rule.syscall, test)
    return built


def build_filter(rules: SeccompRules, no_new_privileges: bool) -> Any:
    """The libseccomp filter of every ABI the rules allow, not loaded."""
    import seccomp  # Debian's python3-seccomp; profiler.syscalls already needs it to name syscalls

    abis = [each for each in local_abis() if rules.abis is None or each in rules.abis]
    if not abis:
        raise ValueError("the policy allows no ABI this kernel runs")
    built = _abi_filter(seccomp, rules, abis[0], no_new_privileges)
    for each in abis[1:]:
        built.merge(_abi_filter(seccomp, rules, each, no_new_privileges))
    return built


def abi_of_audit_arch(audit_arch: int) -> str | None:
    """The ABI name of the AUDIT_ARCH_* value a seccomp notification carries (libseccomp's SCMP_ARCH_* equal them)."""
    import seccomp

    for each in local_abis():
        if int(getattr(seccomp.Arch, each.upper())) & 0xFFFFFFFF == audit_arch:  # the binding gives them signed
            return each
    return None
