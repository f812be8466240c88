"""The OCI profile and its reader against libseccomp: profiles load, and the BPF libseccomp compiles from a profile
lets through exactly what the reader says it does."""

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from generators.interface import Policy, RenderOptions
from generators.seccomp.oci import OciFormat
from generators.seccomp.reading import telling_values
from generators.seccomp.spec import CLONE_NEWTIME, NAMESPACE_BITS, ArgCondition
from profiler import abi, syscalls
from tests.generators.conftest import LoadTraces
from tests.generators.seccomp.oci_libseccomp import action, bpf_program, run_bpf, syscall_filter
from tests.generators.seccomp.test_reader import HOST

SECCOMP_RET_ACTION = 0xFFFF0000
RUNS = {0x7FFF0000, 0x7FFC0000}  # ALLOW, LOG
ERRNO = 0x00050000
TRACE = 0x7FF00000

Program = list[tuple[int, int, int, int]]


class Oracle:
    """What the compiled filter does with a syscall, for the argument values a rule could tell apart."""

    def __init__(self, document: Mapping[str, Any]):
        self.program: Program = bpf_program(syscall_filter(document))
        # The values the reader tries, and more: small numbers, and each compared value and its neighbours.
        conditions: dict[tuple[str, int], list[ArgCondition]] = {}
        for rule in document.get("syscalls", []):
            for name in rule["names"]:
                for arg in rule.get("args", []):
                    condition = ArgCondition(arg["index"], arg["op"], arg["value"], arg.get("valueTwo", 0))
                    conditions.setdefault((name, arg["index"]), []).append(condition)
        self.pools = {
            key: telling_values(each) | set(range(20)) | {c.value + step for c in each for step in (-1, 0, 1, 2)}
            for key, each in conditions.items()
        }

    def results(self, name: str, fixed: Mapping[int, int]) -> set[int]:
        number = syscalls.syscall_number("x86_64", name)
        assert number is not None
        combinations: list[dict[int, int]] = [dict(fixed)]
        for index in (0, 1):
            if index not in fixed:
                pool = self.pools.get((name, index), {0})
                combinations = [{**each, index: value} for each in combinations for value in pool]
        return {run_bpf(self.program, number, [each.get(index, 0) for index in range(6)]) for each in combinations}

    def runs(self, name: str, fixed: Mapping[int, int] | None = None) -> bool:
        return any(result in RUNS for result in self.results(name, fixed or {}))

    def refusals(self, name: str) -> set[str | None]:
        """How the calls of a syscall are refused: more than one way when conditional rules refuse some."""
        return {_refusal(result) for result in self.results(name, {})}


def _refusal(result: int) -> str | None:
    match result & SECCOMP_RET_ACTION:
        case 0x00050000:
            return {1: "EPERM", 13: "EACCES", 38: "ENOSYS"}.get(result & 0xFFFF, str(result & 0xFFFF))
        case 0x7FF00000:
            return "ENOSYS"  # SCMP_ACT_TRACE with no tracer
        case _:
            return None  # killed, or SIGSYS


def agree(policy: Policy, oracle: Oracle, names: Iterable[str]) -> None:
    assert policy.syscalls is not None
    for name in names:
        assert policy.syscalls.allows(name) == oracle.runs(name), name
        if not policy.syscalls.allows(name):
            assert dict(policy.syscalls.errnos).get(name, policy.syscalls.default_errno) in oracle.refusals(name), name
    for number in range(1, len(abi.ADDRESS_FAMILIES)):
        family = abi.ADDRESS_FAMILIES[number]
        assert policy.address_families.allows(family) == oracle.runs("socket", {0: number}), family
    for namespace, bit in NAMESPACE_BITS.items():
        reachable = (
            oracle.runs("clone3")
            or (bit != CLONE_NEWTIME and oracle.runs("clone", {0: bit}))
            or oracle.runs("unshare", {0: bit})
            or oracle.runs("setns", {1: bit})
            or oracle.runs("setns", {1: 0})
        )
        assert policy.namespaces.allows(namespace) == reachable, namespace


X86_64_NAMES = sorted(
    name for number in range(0, 470) if (name := syscalls.syscall_name("x86_64", number)[0]) is not None
)


@pytest.mark.parametrize("argument_filters", [False, True])
@pytest.mark.parametrize(
    "traces", [("curl-fetch",), ("unshare-user-net",), ("pip-install",), ("git-clone", "git-clone-bare")]
)
def test_profiles_of_committed_traces_compile_to_what_the_reader_says(
    committed_profile: LoadTraces, traces: tuple[str, ...], argument_filters: bool
) -> None:
    text = OciFormat().render(committed_profile(*traces), RenderOptions(argument_filters=argument_filters))
    policy = OciFormat(HOST).parse(text, "profile.json")
    agree(policy, Oracle(json.loads(text)), X86_64_NAMES)


NAMES = ("read", "write", "socket", "clone", "clone3", "unshare", "setns")
ACTIONS = st.sampled_from(
    [
        {"action": "SCMP_ACT_ALLOW"},
        {"action": "SCMP_ACT_LOG"},
        {"action": "SCMP_ACT_ERRNO"},
        {"action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"action": "SCMP_ACT_KILL_PROCESS"},
        {"action": "SCMP_ACT_TRAP"},
        {"action": "SCMP_ACT_TRACE"},
    ]
)
VALUES = st.sampled_from([1, 2, 10, 16, 17, 40, *NAMESPACE_BITS.values(), 0x7E020000])


@st.composite
def conditions(draw: st.DrawFn) -> list[dict[str, object]]:
    args = []
    for index in draw(st.lists(st.sampled_from([0, 1]), max_size=3)):  # an index twice: runc's "or"
        op = draw(st.sampled_from(["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]))
        value = draw(VALUES)
        arg: dict[str, object] = {"index": index, "value": value, "op": op}
        if op == "SCMP_CMP_MASKED_EQ":
            arg["valueTwo"] = value & draw(VALUES | st.just(0))  # a datum the mask can match
        args.append(arg)
    return args


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    rules = [
        {"names": draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True)), **draw(ACTIONS)}
        | ({"args": args} if (args := draw(conditions())) else {})
        for _ in range(draw(st.integers(0, 6)))
    ]
    default = draw(st.sampled_from([{"defaultAction": "SCMP_ACT_ERRNO"}, {"defaultAction": "SCMP_ACT_ALLOW"},
                                    {"defaultAction": "SCMP_ACT_KILL_PROCESS"}]))  # fmt: skip
    return {**default, "syscalls": rules}


def _ambiguous(document: Mapping[str, Any]) -> bool:
    """Conditional rules of different actions for one syscall: libseccomp orders them its own way (a lint)."""
    actions: dict[str, set[tuple[object, ...]]] = {}
    unconditional: set[str] = set()
    default = action(document["defaultAction"], None)
    for rule in document["syscalls"]:
        if action(rule["action"], rule.get("errnoRet")) == default:
            continue  # skipped, as runtimes skip it
        for name in rule["names"]:
            if rule.get("args"):
                actions.setdefault(name, set()).add((rule["action"], rule.get("errnoRet")))
            else:
                unconditional.add(name)
    return any(len(each) > 1 and name not in unconditional for name, each in actions.items())


@settings(max_examples=150, deadline=None)
@given(document=documents())
def test_reader_agrees_with_the_filter_libseccomp_compiles(document: dict[str, Any]) -> None:
    assume(not _ambiguous(document))
    policy = OciFormat(HOST).parse(json.dumps(document), "drawn.json")
    agree(policy, Oracle(document), NAMES)


def test_a_mask_and_cuts_on_one_argument_leave_a_region_the_reader_finds() -> None:
    """Found by the property above: refused where arg0 & 1 == 1, arg0 == 1 or arg0 <= 2 (runc splits the rule per
    comparison), so read(4, ...) runs; setting the mask's bit on the values beside the cuts never reached 4."""
    document = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["read"],
                "action": "SCMP_ACT_ERRNO",
                "args": [
                    {"index": 0, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_LE"},
                ],
            },
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ],
    }
    policy = OciFormat(HOST).parse(json.dumps(document), "drawn.json")
    assert policy.syscalls is not None and policy.syscalls.allows("read")
    agree(policy, Oracle(document), NAMES)
