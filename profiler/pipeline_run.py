"""`profiler run` as a function a notebook calls: a policy of any kind profiler reads, as a Confinement, enforced
or audited. (The run half of profiler/pipeline.py, which it joins once that module is on main.)

    run_policy(paths)             the Policy and unit settings of --policy: traces or a profile (a drop-in is
                                  generated from them on the fly), our JSON profile, an OCI profile, a unit
    confinement_of(policy, ...)   what the launcher applies, by the kernel's names
    run(paths, argv, ...)         enforce (refusals answered and named) or audit (recorded and compared)
"""

import dataclasses
import errno
import grp
import json
import os
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generators import diff
from generators.correction import correction
from generators.interface import ListMode, NameSet, Policy, PolicyFormat, RenderOptions
from generators.json_profile import SCHEMA_NAME as PROFILE_SCHEMA
from generators.json_profile import parse_profile
from generators.profile import NAMESPACE_TYPES, Profile, build_profile
from generators.systemd import SystemdFormat
from generators.systemd_sandbox import UnitSandbox, read_unit_sandbox
from profiler import abi, trace
from profiler.enforcement.confinement import (
    ALL_CAPABILITIES,
    Account,
    Answer,
    Capabilities,
    Confinement,
    FileSystem,
    ProtectHome,
    ProtectSystem,
    SeccompRules,
    SyscallList,
)
from profiler.enforcement.launcher import Command, Refusal, launch, refusal_lines
from profiler.errors import EnforcementError, ProfilerError, WorkloadError
from profiler.recorder import User, resolve_program

ROOT_NAMES = ("root", "0")


@dataclass(frozen=True, slots=True)
class RunPolicy:
    policy: Policy
    sandbox: UnitSandbox  # a unit's settings beside the lists (defaults for other formats)
    described: str  # how the report names it: demo.trace.json (a drop-in generated from it), unit.service


def _schema(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    schema = document.get("schema") if isinstance(document, dict) else None
    return schema if isinstance(schema, str) else None


def _generated(profile: Profile, described: str) -> RunPolicy:
    """The systemd drop-in `generate` writes for the profile, read back: what `run` enforces is what would ship."""
    with tempfile.TemporaryDirectory(prefix="profiler-run-") as directory:
        dropin = Path(directory) / "generated.conf"
        dropin.write_text(SystemdFormat().render(profile, RenderOptions(comments=False)))
        policy = SystemdFormat().read(dropin)
        sandbox = read_unit_sandbox(dropin)
    overrides = tuple(dataclasses.replace(each, source=described, line=0) for each in policy.overrides)
    return RunPolicy(dataclasses.replace(policy, source=described, overrides=overrides), sandbox, described)


def run_policy(paths: Sequence[Path], policy_format: PolicyFormat | None = None) -> RunPolicy:
    """What --policy names, read; PolicyParseError or TraceFormatError (one line) when it cannot be."""
    if not paths:
        raise ProfilerError("no policy given: --policy names a unit, an OCI profile, a profile or traces")
    first = paths[0]
    schema = _schema(trace.read_input(first, "policy")) if policy_format is None else None
    if schema == trace.SCHEMA_NAME:
        profile = build_profile([(str(path), trace.load(path)) for path in paths])
        return _generated(profile, f"the drop-in generated from {', '.join(map(str, paths))}")
    if len(paths) > 1:
        raise ProfilerError("several --policy files: only traces combine; give one unit, OCI profile or profile")
    if schema == PROFILE_SCHEMA:
        return _generated(parse_profile(trace.read_input(first, "profile"), str(first)), f"the drop-in for {first}")
    policy = diff.read_policy(first, policy_format)
    sandbox = read_unit_sandbox(first) if policy.format is PolicyFormat.SYSTEMD else UnitSandbox()
    return RunPolicy(policy, sandbox, str(first))


# --- Policy to Confinement -------------------------------------------------------------------------------------------


def _allowed(names: NameSet, universe: Sequence[str]) -> frozenset[str] | None:
    if names.unrestricted:
        return None
    return frozenset(name for name in universe if names.allows(name))


def _labels(policy: Policy) -> dict[str, str]:
    """The settings the report names as refusing: a unit's, or the rules of a seccomp profile."""
    if policy.format is PolicyFormat.SYSTEMD:
        return {
            "syscalls": "SystemCallFilter=",
            "families": "RestrictAddressFamilies=",
            "namespaces": "RestrictNamespaces=",
            "abis": "SystemCallArchitectures=",
        }
    where = f"the seccomp profile {policy.source}"
    return {
        "syscalls": where,
        "families": f"{where} (socket rules)",
        "namespaces": f"{where} (namespace rules)",
        "abis": f"{where} (architectures)",
    }


def _errno_checked(name: str | None, source: str) -> str | None:
    if name is not None and not (name.isdigit() or isinstance(getattr(errno, name, None), int)):
        raise EnforcementError(f"{source}: errno {name} is not one this system knows")
    return name if name is None or not name.isdigit() else errno.errorcode.get(int(name), name)


def seccomp_rules(policy: Policy) -> SeccompRules:
    labels = _labels(policy)
    syscall_list = None
    if policy.syscalls is not None:
        rules = policy.syscalls
        answer = Answer(_errno_checked(rules.default_errno, policy.source), labels["syscalls"])
        syscall_list = SyscallList(
            rules.rules.mode is ListMode.ALLOW,
            rules.rules.names,
            answer,
            tuple(
                (name, Answer(_errno_checked(value, policy.source), labels["syscalls"])) for name, value in rules.errnos
            ),
        )
    namespaces = policy.namespaces
    return SeccompRules(
        # RestrictNamespaces= answers clone3 itself (SeccompRules), so its override is not a second rule.
        overrides=tuple(
            (name, Answer(each.errno, each.where))
            for each in policy.overrides
            if not each.setting.startswith("RestrictNamespaces=")
            for name in sorted(each.syscalls)
        ),
        families=_allowed(policy.address_families, abi.ADDRESS_FAMILIES),
        family_answer=Answer("EAFNOSUPPORT", labels["families"]),
        namespaces=None
        if namespaces.unrestricted
        else frozenset(flag for flag, kind in NAMESPACE_TYPES.items() if namespaces.allows(kind)),
        namespace_answer=Answer("EPERM", labels["namespaces"]),
        syscalls=syscall_list,
        abis=policy.architectures,
        abi_answer=Answer(None, labels["abis"]),
    )


def account_of(spec: str | None) -> Account | None:
    """The user to run as, or None to stay profiler's own (root); WorkloadError for an unknown or empty one."""
    if spec is not None and spec in ROOT_NAMES:
        return None
    user = User.lookup(spec) if spec is not None else None
    return Account(user.name, user.uid, user.gid, user.home) if user is not None else None


def _with_group(account: Account | None, group: str | None) -> Account | None:
    if account is None or group is None:
        return account
    try:
        gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError):
        raise WorkloadError(f"unknown group {group!r} (Group=): give a name from /etc/group or a numeric gid") from None
    return dataclasses.replace(account, gid=gid)


def confinement_of(chosen: RunPolicy, user: str | None = None) -> Confinement:
    """What the launcher applies for a policy; --user takes the place of the policy's user."""
    policy, sandbox = chosen.policy, chosen.sandbox
    account = _with_group(account_of(user if user is not None else policy.user), sandbox.group)
    taken = frozenset(name for each in policy.overrides for name in each.capabilities)
    bounding = (_allowed(policy.capability_bounding, abi.CAPABILITIES) or ALL_CAPABILITIES) - taken
    rules = seccomp_rules(policy)
    ambient = policy.ambient_capabilities & bounding
    # The kernel loads a filter for a process without CAP_SYS_ADMIN only under no_new_privs; systemd turns it
    # on in that case too (Policy.no_new_privileges_implied_by).
    implied = account is not None and rules.filters and "CAP_SYS_ADMIN" not in ambient
    return Confinement(
        account=account,
        capabilities=Capabilities(bounding, ambient),
        no_new_privileges=policy.no_new_privileges is True or bool(policy.no_new_privileges_implied_by) or implied,
        seccomp=rules,
        private_network=sandbox.private_network,
        file_system=FileSystem(
            private_tmp=sandbox.private_tmp,
            private_devices=sandbox.private_devices,
            protect_system=ProtectSystem(sandbox.protect_system),
            protect_home=ProtectHome(sandbox.protect_home),
            read_write_paths=tuple(
                path.lstrip("-+")
                for path in sandbox.read_write_paths
                if os.path.exists(path.lstrip("-+")) or not path.startswith("-")
            ),
        ),
        source=chosen.described,
    )


# --- run -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WouldRefuse:
    """What enforcement would have refused in an audited run, and the line that lets it."""

    kind: str  # syscall, capability, address family, ...
    name: str
    programs: tuple[str, ...]
    count: int
    refused: str  # how the policy refuses it
    paths: tuple[str, ...]  # kernel paths of a capability check


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_status: int  # the command's
    audit: bool
    policy: str
    refusals: tuple[Refusal, ...] = ()  # enforced: what the filter refused
    would_refuse: tuple[WouldRefuse, ...] = ()  # audited: what enforcement would have refused
    fix: str | None = None  # audited: the lines to add, in the policy's format
    not_applied: tuple[str, ...] = ()  # settings of the policy that run does not apply
    startup_s: float | None = None

    @property
    def refused_anything(self) -> bool:
        return bool(self.refusals or self.would_refuse)

    def lines(self) -> list[str]:
        """The report for people, one line per item."""
        out = []
        if self.audit:
            for each in self.would_refuse:
                paths = f" via {', '.join(each.paths)}" if each.paths else ""
                out.append(
                    f"would refuse: {each.kind} {each.name} by {', '.join(each.programs)}, {each.count}x{paths}: "
                    f"{each.refused}"
                )
            if self.fix:
                out += ["fix:", *("  " + line for line in self.fix.splitlines())]
            if not self.would_refuse:
                out.append(f"audit: {self.policy} would refuse nothing this run did")
        else:
            out += refusal_lines(self.refusals)
            if self.exit_status == 128 + signal.SIGSYS and not any(each.answer.errno is None for each in self.refusals):
                out.append("the command was killed by SIGSYS, not by profiler's filter: by a filter of its own?")
        return out

    def json(self) -> str:
        document = {
            "policy": self.policy,
            "mode": "audit" if self.audit else "enforce",
            "exit_status": self.exit_status,
            "refused": [
                {
                    "syscall": each.syscall,
                    "program": each.program,
                    "count": each.count,
                    "errno": each.answer.errno,
                    "setting": each.answer.setting,
                    "abi": each.abi,
                }
                for each in self.refusals
            ],
            "would_refuse": [dataclasses.asdict(each) for each in self.would_refuse],
            "fix": self.fix,
            "not_applied": list(self.not_applied),
        }
        return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def _command(argv: Sequence[str], account: Account | None) -> Command:
    environment = dict(os.environ)
    if account is not None:
        environment.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    return Command(tuple(argv), resolve_program(tuple(argv)), environment, os.getcwd())


def _audit(chosen: RunPolicy, argv: Sequence[str], user: str | None) -> RunResult:
    from profiler import recorder

    policy = chosen.policy
    spec = user if user is not None else policy.user
    account = account_of(spec)
    target = recorder.CommandTarget(tuple(argv), User.lookup(account.name) if account else None)
    recording = recorder.record(target, recorder.RecordOptions(component="audited"))
    profile = build_profile([("the audited run", recording.trace)])
    comparison = diff.compare(profile, policy)
    would = tuple(
        WouldRefuse(
            item.need.kind.label,
            item.need.name,
            item.need.evidence.programs,
            item.need.evidence.count,
            item.refused,
            tuple(f"{path.syscall or '?'} via {path.via or '?'}" for path in item.need.paths),
        )
        for item in comparison.missing
    )
    fixed = correction(comparison)
    return RunResult(
        recording.exit_status,
        True,
        chosen.described,
        would_refuse=would,
        fix=fixed.text if fixed else None,
        not_applied=chosen.sandbox.not_applied,
    )


def run(chosen: RunPolicy, argv: Sequence[str], *, audit: bool = False, user: str | None = None) -> RunResult:
    """Run a command confined by a policy (run_policy), or audited against it; the result says what was, or
    would have been, refused."""
    if audit:
        return _audit(chosen, argv, user)
    confinement = confinement_of(chosen, user)
    from profiler.terminal_relay import TerminalRelay

    relay = TerminalRelay.open()
    try:
        enforced = launch(confinement, _command(argv, confinement.account), relay)
    finally:
        if relay is not None:
            relay.close()
    return RunResult(
        enforced.exit_status,
        False,
        chosen.described,
        refusals=enforced.refusals,
        not_applied=chosen.sandbox.not_applied,
        startup_s=enforced.startup_s,
    )
