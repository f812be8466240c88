"""A seccomp document read with its consumers' semantics: read_seccomp_spec(document) -> SeccompReading (oci, k8s).

The format is the runtime-spec's `linux.seccomp` object (config-linux.md) and Docker's superset of it
(moby profiles/seccomp: `comment`, `includes`, `excludes`, `archMap`, the old `name`). Consumers decode it with
Go's encoding/json, which ignores unknown keys, and hand it to libseccomp through runc or crun, which skip
rules whose action is the default one and names libseccomp does not know (runc also splits a rule that
compares one argument twice into one rule per comparison). libseccomp keeps the first unconditional rule of
a syscall, and an unconditional rule overrides conditional ones.
"""

import difflib
import re
from collections.abc import Mapping, Sequence

from generators.abis import LIBSECCOMP_ABIS, libseccomp_knows
from generators.interface import (
    UNRESTRICTED,
    LintFinding,
    ListMode,
    NameSet,
    Place,
    PolicyPart,
    SyscallFilter,
)
from generators.seccomp.json_lines import JsonPath, render_path
from generators.seccomp.reading import (
    IGNORED_BY,
    KNOWN_KEYS,
    Decider,
    Dialect,
    IncludeContext,
    ReadRule,
    SeccompReading,
    finding_order,
    json_type,
    name_set,
    namespace_set,
    refusal_of,
)
from generators.seccomp.spec import (
    ACTIONS,
    DOCKER_ARCH_NAMES,
    DOCKER_DEFAULT_CAPABILITIES,
    EPERM,
    ERRNO_ACTIONS,
    FILTER_FLAGS,
    MAX_ARGUMENT_INDEX,
    OPERATORS,
    RUNNING_ACTIONS,
    UINT64_MAX,
    ArgCondition,
    scmp_arch,
)
from profiler import abi, syscalls
from profiler.errors import PolicyParseError


class _SeccompReader:
    """One read of one document: validation errors raise, lint findings accumulate."""

    def __init__(
        self,
        source: str,
        lines: Mapping[JsonPath, int],
        at: JsonPath,
        dialect: Dialect,
        context: IncludeContext,
    ):
        self.source, self.lines, self.at, self.dialect, self.context = source, lines, at, dialect, context
        self.findings: list[LintFinding] = []
        self.first_conditional: JsonPath | None = None  # the first rule with includes or excludes

    # -- reporting --

    def line(self, path: JsonPath) -> int | None:
        while path:
            line = self.lines.get(self.at + path)
            if line is not None:
                return line
            path = path[:-1]
        return self.lines.get(self.at)

    def fail(self, path: JsonPath, message: str) -> PolicyParseError:
        line = self.line(path)
        where = f"{self.source}:{line}" if line else self.source
        return PolicyParseError(f"{where}: {render_path(self.at + path)}: {message}")

    def lint(self, path: JsonPath, message: str, rule: str | None = None) -> None:
        """A finding at path; its rule is the top-level key it is under (syscalls, archMap) unless named."""
        rule = rule or (str(path[0]) if path else "document")
        self.findings.append(
            LintFinding(self.source, self.line(path), f"{render_path(self.at + path)}: {message}", rule)
        )

    # -- validation --

    def mapping(self, value: object, path: JsonPath, kind: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, not {json_type(value)}")
        known = KNOWN_KEYS[(self.dialect, kind)]
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"has the key {key!r}, which is not a string")
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.lint((*path, key), f"unknown key {key!r}{hint}: {IGNORED_BY[self.dialect]}", "unknown-key")
        return value

    def choice(self, value: object, path: JsonPath, allowed: Sequence[str], what: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(path, f"{value!r} is not a seccomp {what} ({', '.join(allowed)}); runtimes refuse it")
        return value

    def strings(self, value: object, path: JsonPath) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(path, "must be a list of strings")
        return value

    def unsigned(self, value: object, path: JsonPath, maximum: int = UINT64_MAX) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
            raise self.fail(path, f"must be an integer from 0 to {maximum}, not {value!r}")
        return value

    # -- the document --

    def read(self, document: object) -> SeccompReading:
        top = self.mapping(document, (), "top")
        if "defaultAction" not in top:
            raise self.fail((), "no defaultAction: runtimes refuse the profile (Docker reads {} as no filter at all)")
        default_action = self.choice(top["defaultAction"], ("defaultAction",), ACTIONS, "action")
        if default_action == "SCMP_ACT_NOTIFY":
            raise self.fail(("defaultAction",), "SCMP_ACT_NOTIFY as the default action: runc refuses the profile")
        default_errno = self.errno_ret(top, "defaultErrnoRet", default_action, ())
        self.check_top(top)
        architectures = self.architectures(top)
        raw_rules = top.get("syscalls", [])
        if not isinstance(raw_rules, list):
            raise self.fail(("syscalls",), f"must be a list of rules, not {json_type(raw_rules)}")
        by_name: dict[str, list[ReadRule]] = {}
        for index, raw in enumerate(raw_rules):
            for name, rule in self.rule(raw, ("syscalls", index), default_action, default_errno):
                by_name.setdefault(name, []).append(rule)
        decide = Decider(default_action, default_errno, by_name)
        if self.first_conditional is not None:
            self.lint_includes(self.first_conditional)
        self.lint_conflicts(by_name)
        syscall_filter = self.syscall_filter(decide, default_action, default_errno)
        families = self.families(decide, architectures)
        return SeccompReading(
            syscall_filter,
            architectures,
            families,
            namespace_set(decide),
            tuple(sorted(self.findings, key=finding_order)),
            str(top["baseProfileName"]) if top.get("baseProfileName") else None,
            self.places(top),
        )

    def places(self, top: Mapping[str, object]) -> tuple[tuple[PolicyPart, tuple[Place, ...]], ...]:
        """The lines that decide each part: what no rule allows, defaultAction refuses; families and namespace
        types are arguments of socket and clone rules; archMap or architectures choose the ABIs."""

        def at(*keys: str) -> tuple[Place, ...]:
            return tuple(Place(self.source, self.line((key,))) for key in keys if key in top)

        rules = at("defaultAction", "syscalls")
        return (
            (PolicyPart.SYSCALLS, rules),
            (PolicyPart.ARCHITECTURES, at("architectures", "archMap")),
            (PolicyPart.ADDRESS_FAMILIES, rules),
            (PolicyPart.NAMESPACES, rules),
        )

    def errno_ret(self, holder: Mapping[str, object], key: str, action: str, path: JsonPath) -> int | None:
        if key not in holder:
            return EPERM if action in ERRNO_ACTIONS else None
        if action not in ERRNO_ACTIONS:
            raise self.fail((*path, key), f"{action} takes no errno; the runtime-spec requires runtimes to fail")
        number = self.unsigned(holder[key], (*path, key))
        if number == 0:
            self.lint((*path, key), "errno 0 makes the syscall return 0 (success) without running it")
        return number

    def check_top(self, top: Mapping[str, object]) -> None:
        for flag_index, flag in enumerate(self.strings(top.get("flags", []), ("flags",))):
            self.choice(flag, ("flags", flag_index), FILTER_FLAGS, "filter flag")
        for key in ("listenerPath", "listenerMetadata", "baseProfileName"):
            if key in top and not isinstance(top[key], str):
                raise self.fail((key,), "must be a string")
        if "comment" in top and not (
            isinstance(top["comment"], str)
            or (isinstance(top["comment"], list) and all(isinstance(each, str) for each in top["comment"]))
        ):
            self.lint(("comment",), "a comment should be a string or a list of strings: runtimes ignore it anyway")
        if top.get("baseProfileName"):
            self.lint(
                ("baseProfileName",),
                f"the Security Profiles Operator adds the rules of {top['baseProfileName']!r}, which this file "
                "does not show: profiler reads this profile's own rules only, and leaves the runtime's calls to it",
            )
        if "disabled" in top and not isinstance(top["disabled"], bool):
            raise self.fail(("disabled",), "must be true or false")
        if top.get("disabled") is True:
            self.lint(("disabled",), "the Security Profiles Operator does not install a disabled profile")

    def architectures(self, top: Mapping[str, object]) -> frozenset[str]:
        """The ABIs the filter covers: the native one (runtimes never remove it) and those it lists."""
        known = {scmp_arch(name): name for name in LIBSECCOMP_ABIS}  # each ABI's constant, read back by this table
        listed = {
            self.choice(name, ("architectures", index), [*known, "SCMP_ARCH_NATIVE"], "architecture")
            for index, name in enumerate(self.strings(top.get("architectures", []), ("architectures",)))
        }
        if "archMap" in top:
            if "architectures" in top:
                raise self.fail(("archMap",), "architectures and archMap together: Docker refuses the profile")
            listed |= self.arch_map(top["archMap"], list(known))
        native = self.context.native_abi
        return frozenset({native} | {known.get(name, native) for name in listed})  # SCMP_ARCH_NATIVE is native

    def arch_map(self, value: object, known: list[str]) -> set[str]:
        if not isinstance(value, list):
            raise self.fail(("archMap",), f"must be a list, not {json_type(value)}")
        chosen: set[str] = set()
        for index, raw in enumerate(value):
            entry = self.mapping(raw, ("archMap", index), "archMap")
            main = self.choice(entry.get("architecture"), ("archMap", index, "architecture"), known, "architecture")
            subs = entry.get("subArchitectures") or []
            subs = [
                self.choice(sub, ("archMap", index, "subArchitectures", sub_index), known, "architecture")
                for sub_index, sub in enumerate(self.strings(subs, ("archMap", index, "subArchitectures")))
            ]
            if main == scmp_arch(self.context.native_abi):
                chosen |= {main, *subs}
        self.lint(
            ("archMap",),
            f"Docker, podman and CRI-O use the entry of the host's architecture (read here for "
            f"{self.context.native_abi}); containerd ignores archMap and filters the native ABI only",
        )
        return chosen

    def rule(
        self, raw: object, path: JsonPath, default_action: str, default_errno: int | None
    ) -> list[tuple[str, ReadRule]]:
        entry = self.mapping(raw, path, "rule")
        if "action" not in entry:
            raise self.fail(path, "a rule without an action: runtimes refuse the profile")
        action = self.choice(entry["action"], (*path, "action"), ACTIONS, "action")
        errno_ret = self.errno_ret(entry, "errnoRet", action, path)
        names = self.strings(entry.get("names", []), (*path, "names"))
        if "name" in entry:
            if "names" in entry:
                raise self.fail((*path, "name"), "name and names together: Docker refuses the profile")
            if not isinstance(entry["name"], str):
                raise self.fail((*path, "name"), "must be a string")
            names = [entry["name"]]
            self.lint((*path, "name"), "only Docker reads the old name key; containerd ignores it: write names")
        if not names:
            self.lint(path, "a rule without names does nothing")
        if "comment" in entry and not isinstance(entry["comment"], str):
            raise self.fail((*path, "comment"), "must be a string: Docker refuses the profile otherwise")
        raw_args = entry.get("args") or []
        if not isinstance(raw_args, list):
            raise self.fail((*path, "args"), f"must be a list, not {json_type(raw_args)}")
        conditions = tuple(self.condition(raw_arg, (*path, "args", index)) for index, raw_arg in enumerate(raw_args))
        if not self.included(entry, path):
            return []
        for index, name in enumerate(names):
            if not libseccomp_knows(name):
                self.lint((*path, "names", index), f"libseccomp {syscalls.libseccomp_version()} knows no syscall "
                          f"{name!r} on any architecture: runtimes skip it")  # fmt: skip
        if (action, errno_ret) == (default_action, default_errno):
            return []  # runc, crun and youki skip a rule that does what the default does
        if action == "SCMP_ACT_NOTIFY":
            if "write" in names:
                raise self.fail((*path, "names"), "SCMP_ACT_NOTIFY on write: runc refuses the profile")
            self.lint(path, "SCMP_ACT_NOTIFY leaves the decision to the agent at listenerPath: read as allowed")
        if action == "SCMP_ACT_TRACE":
            self.lint(path, "SCMP_ACT_TRACE fails with ENOSYS unless a ptrace tracer handles it: read as refused")
        indexes = [condition.index for condition in conditions]
        if len(set(indexes)) < len(indexes):
            self.lint(
                (*path, "args"),
                "compares an argument more than once: runc then makes each comparison a rule of its own, so the "
                "call matches when any one holds (or), not all (and)",
            )
            rules = [ReadRule(action, errno_ret, (condition,), self.line(path)) for condition in conditions]
        else:
            rules = [ReadRule(action, errno_ret, conditions, self.line(path))]
        return [(name, rule) for name in names if libseccomp_knows(name) for rule in rules]

    def condition(self, raw: object, path: JsonPath) -> ArgCondition:
        entry = self.mapping(raw, path, "arg")
        for key in ("index", "value", "op"):
            if key not in entry:
                raise self.fail(path, f"an argument comparison without {key}: runtimes refuse the profile")
        return ArgCondition(
            self.unsigned(entry["index"], (*path, "index"), MAX_ARGUMENT_INDEX),
            self.choice(entry["op"], (*path, "op"), OPERATORS, "comparison"),
            self.unsigned(entry["value"], (*path, "value")),
            self.unsigned(entry.get("valueTwo", 0), (*path, "valueTwo")),
        )

    def included(self, entry: Mapping[str, object], path: JsonPath) -> bool:
        """Docker's includes/excludes, for the capabilities, ABI and kernel of the context."""
        verdict = True
        for key in ("includes", "excludes"):
            if key not in entry:
                continue
            self.first_conditional = self.first_conditional or path
            condition = self.mapping(entry[key], (*path, key), "condition")
            caps = set(self.strings(condition.get("caps", []), (*path, key, "caps")))
            arches = set(self.strings(condition.get("arches", []), (*path, key, "arches")))
            kernel = condition.get("minKernel")
            at_least = True
            if kernel is not None:
                numbers = re.fullmatch(r"(\d+)\.(\d+)", kernel) if isinstance(kernel, str) else None
                if numbers is None:
                    raise self.fail((*path, key, "minKernel"), f"{kernel!r} is not a kernel version such as 5.8")
                at_least = self.context.kernel >= (int(numbers.group(1)), int(numbers.group(2)))
            arch = DOCKER_ARCH_NAMES.get(self.context.native_abi, self.context.native_abi)
            if key == "includes":
                verdict &= (
                    (not arches or arch in arches)
                    and caps <= self.context.capabilities
                    and (kernel is None or at_least)
                )
            else:
                verdict &= not (arch in arches or caps & self.context.capabilities or (kernel is not None and at_least))
        return verdict

    def lint_includes(self, path: JsonPath) -> None:
        context = self.context
        capabilities = (
            "Docker's default capabilities"
            if context.capabilities == DOCKER_DEFAULT_CAPABILITIES
            else ", ".join(sorted(context.capabilities)) or "no capability"
        )
        self.lint(
            path,
            "includes/excludes: Docker, podman and CRI-O keep or drop these rules by the container's capabilities "
            f"and the host's ABI and kernel (read here for {capabilities}, {context.native_abi}, Linux "
            f"{context.kernel[0]}.{context.kernel[1]}); containerd ignores both keys and applies every such rule",
        )

    def lint_conflicts(self, by_name: Mapping[str, list[ReadRule]]) -> None:
        for name, rules in sorted(by_name.items()):
            unconditional = [rule for rule in rules if not rule.conditions]
            if not unconditional:
                actions = sorted({rule.action + (f"({rule.errno_ret})" if rule.errno_ret else "") for rule in rules})
                if len(actions) > 1:
                    self.findings.append(
                        LintFinding(
                            self.source,
                            rules[0].line,
                            f"{name}: conditional rules with different actions ({', '.join(actions)}): where a call "
                            "matches more than one, libseccomp's choice depends on the order it gives their "
                            "comparisons, not on the file's; profiler reads the first in the file",
                            "conditional-conflict",
                        )
                    )
                continue
            first = unconditional[0]
            for later in rules:
                if later is first or (later.action, later.errno_ret) == (first.action, first.errno_ret):
                    continue
                kept = f"{first.action}" + (f" (line {first.line})" if first.line else "")
                shadowed = "its conditions are never checked" if later.conditions else "it is ignored"
                self.findings.append(
                    LintFinding(
                        self.source,
                        later.line,
                        f"{name}: {later.action} has no effect: libseccomp keeps the first unconditional rule of a "
                        f"syscall, {kept}, so {shadowed}",
                        "shadowed-rule",
                    )
                )

    def syscall_filter(self, decide: "Decider", default_action: str, default_errno: int | None) -> SyscallFilter:
        names = sorted(decide.by_name)
        allowed = frozenset(name for name in names if decide.runs(name))
        refused = [name for name in names if name not in allowed]
        baseline: str | None
        if default_action in RUNNING_ACTIONS:
            # A deny-list: the runtime-spec's default errno is EPERM, and each refused syscall says its own.
            rules, baseline = NameSet(ListMode.DENY, frozenset(refused)), "EPERM"
        else:
            rules, baseline = NameSet(ListMode.ALLOW, allowed), refusal_of(default_action, default_errno)
        errnos = tuple(
            (name, refusal) for name in refused if (refusal := refusal_of(*decide.refusal(name))) != baseline
        )
        return SyscallFilter(rules, baseline, errnos)

    def families(self, decide: "Decider", architectures: frozenset[str]) -> NameSet:
        numbers = range(1, len(abi.ADDRESS_FAMILIES))
        allowed = {abi.ADDRESS_FAMILIES[number] for number in numbers if decide.runs("socket", {0: number})}
        limited = len(allowed) < len(numbers)
        if limited and "x86" in architectures and decide.runs("socketcall"):
            self.lint(
                ("syscalls",),
                "socketcall is allowed for 32-bit x86 programs, and passes socket()'s arguments in memory where "
                "seccomp cannot see them: the socket family limits do not hold for those programs",
            )
            return UNRESTRICTED
        return name_set(allowed, abi.ADDRESS_FAMILIES[1:])


def read_seccomp_spec(
    document: object,
    *,
    source: str,
    lines: Mapping[JsonPath, int],
    at: JsonPath = (),
    dialect: Dialect = Dialect.OCI,
    context: IncludeContext | None = None,
) -> SeccompReading:
    """Read a seccomp document (the OCI object, or the spec of an SPO SeccompProfile found at `at`)."""
    return _SeccompReader(source, lines, at, dialect, context or IncludeContext.docker_defaults()).read(document)
