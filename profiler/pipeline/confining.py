"""`profiler run` as functions a notebook calls: the policy read, turned into what the launcher applies (by the
kernel's names), enforced or audited.

    run_policy(paths)            what `run --policy` names: traces or a profile (the drop-in generate writes for
                                 them, read back), our JSON profile, an OCI profile, or a unit with its drop-ins
    confinement_of(policy)       what the launcher applies for it: a Confinement
    run(policy, argv)            enforce (each refusal answered and named) or audit (recorded and compared)

The one reading of a unit is the systemd reader's (Policy, its sandbox settings among them); what `run` does not
apply of it is named (RunPolicy.not_applied), so that nobody takes a run for the whole unit.
"""

import dataclasses
import errno
import grp
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from profiler import abi, files, trace
from profiler.errors import EnforcementError, OptionError, PolicyParseError, WorkloadError
from profiler.pipeline import load_drift_side, load_profile, read_policy, schema_of

if TYPE_CHECKING:
    from generators.interface import NameSet, Policy, PolicyFormat, SandboxSettings, SettingLine
    from generators.profile import Profile
    from profiler.enforcement.audit import Audited
    from profiler.enforcement.confinement import Account, Confinement, FileSystem, SeccompRules
    from profiler.enforcement.launcher import Command
    from profiler.enforcement.report import RunReport

# The sandboxing settings run applies whole: the mounts of a namespace of its own, a network namespace.
_APPLIED = frozenset(
    {"PrivateTmp", "PrivateDevices", "PrivateNetwork", "ProtectSystem", "ProtectHome", "ReadWritePaths"}
)
# The directories systemd makes and leaves writable under ProtectSystem=strict (generators.sandbox.MANAGED_TREES):
# run leaves those that are there writable, and makes none and chowns none (systemd chowns one that is there, and
# all in it, to the service's user: what generate writes such a line for is a directory the runs made).
_MANAGED = frozenset({"StateDirectory", "CacheDirectory", "LogsDirectory", "RuntimeDirectory"})
# The settings whose syscalls and capabilities run takes away (Policy.overrides), and what else they do.
_PARTLY_APPLIED = {
    "ProtectKernelTunables": "the read-only /proc/sys, /sys and the like",
    "ProtectKernelModules": "the hidden module directories",
    "ProtectKernelLogs": "the hidden /proc/kmsg and /dev/kmsg",
    "ProtectClock": "the closed clock devices",
    "ProtectHostname": "the UTS namespace of its own",
}


@dataclass(frozen=True, slots=True)
class RunPolicy:
    policy: "Policy"
    described: str  # how the report names it: unit.service, the drop-in generated from demo.trace.json

    @property
    def not_applied(self) -> tuple[str, ...]:
        """Key=value (file:line) of each confining setting of the policy that run does not apply, or not whole."""
        sandbox, named = self.policy.sandbox, {}
        missing = {each.at.key: each.path for each in _managed_directories(sandbox) if not os.path.isdir(each.path)}
        for at in (*sandbox.levels, *sandbox.entries, *sandbox.unmodeled):
            where = f"{at.key}={sandbox.value(at.key) or at.value} ({at.source}:{at.line})"
            if at.key in _MANAGED and at.key in missing:
                named[at.key] = f"{where}: left writable where it is, not made ({missing[at.key]} is not there)"
            elif at.key not in _APPLIED and at.key not in _MANAGED:
                partly = _PARTLY_APPLIED.get(at.key)
                named[at.key] = where + (f": its syscalls and capabilities only, not {partly}" if partly else "")
        dynamic = self.policy.dynamic_user
        if dynamic is not None:  # beside User=, not among the sandbox's levels
            named[dynamic.key] = f"{dynamic.where}: {_dynamic_user(self.policy.user)}"
        return tuple(named[key] for key in sorted(named))


def _dynamic_user(name: str | None) -> str:
    """Who runs the command of a DynamicUser=yes policy, in place of the user systemd allocates at start."""
    from generators.sandbox import NOBODY
    from profiler.recording.targets import User

    try:
        static = User.lookup(name).name if name else None
    except WorkloadError:
        static = None
    if static is not None:
        return f"no user allocated at start: as {static}, the static user of that name, as systemd does"
    return f"no user allocated at start: as {NOBODY}, who owns no file, unless --user names another"


def _generated(profile: "Profile", described: str) -> RunPolicy:
    """The systemd drop-in `generate` writes for the profile, read back: what `run` enforces is what would ship."""
    import tempfile

    from generators import formats
    from generators.interface import PolicyFormat, RenderOptions

    with tempfile.TemporaryDirectory(prefix="profiler-run-") as directory:
        dropin = Path(directory) / "generated.conf"
        dropin.write_text(formats.renderer(PolicyFormat.SYSTEMD).render(profile, RenderOptions(comments=False)))
        policy = formats.reader(PolicyFormat.SYSTEMD).read(dropin)
    overrides = tuple(dataclasses.replace(each, source=described, line=0) for each in policy.overrides)

    # The temporary file is gone once run reports: a line is named by the drop-in it is a line of, as `generate
    # --no-comments` writes it.
    def named(line: "SettingLine") -> "SettingLine":
        implied = line.implied_by.replace(str(dropin), described) if line.implied_by else None
        return dataclasses.replace(line, source=described, implied_by=implied)

    sandbox = policy.sandbox
    renamed = dataclasses.replace(
        policy,
        source=described,
        overrides=overrides,
        sandbox=dataclasses.replace(
            sandbox,
            levels=tuple(map(named, sandbox.levels)),
            entries=tuple(map(named, sandbox.entries)),
            unmodeled=tuple(map(named, sandbox.unmodeled)),
        ),
        dynamic_user=named(policy.dynamic_user) if policy.dynamic_user else None,
    )
    return RunPolicy(renamed, described)


def run_policy(paths: Sequence[Path], policy_format: "PolicyFormat | None" = None) -> RunPolicy:
    """What --policy names, read; PolicyParseError or TraceFormatError (one line) when it cannot be."""
    from generators import json_profile

    if not paths:
        raise OptionError("no policy given: --policy names a unit, an OCI profile, a profile or traces")
    first = paths[0]
    schema = schema_of(files.read_input(first, "policy")) if policy_format is None else None
    if schema == trace.SCHEMA_NAME:
        return _generated(load_profile(paths), f"the drop-in generated from {', '.join(map(str, paths))}")
    if len(paths) > 1:
        raise OptionError("several --policy files: only traces combine; give one unit, OCI profile or profile")
    if schema == json_profile.SCHEMA_NAME:
        return _generated(load_drift_side(first), f"the drop-in generated from {first}")
    policy = read_policy(first, policy_format)
    for finding in policy.findings:
        # A value systemd ignores would leave the command open where its author meant to close it, or (a managed
        # directory named absolute or with a .., as /etc or ../../etc) point out of the tree: not guessed.
        # (A user or group it cannot take is not found by name: one line there.)
        if finding.rule in _APPLIED | _MANAGED:
            raise PolicyParseError(
                f"{finding.source}:{finding.line}: {finding.message}; fix it, or take it out: run does not start "
                "a command under a setting it cannot read"
            )
    return RunPolicy(policy, str(first))


def _allowed(names: "NameSet", universe: Sequence[str]) -> frozenset[str] | None:
    if names.unrestricted:
        return None
    return frozenset(name for name in universe if names.allows(name))


def _labels(policy: "Policy") -> dict[str, str]:
    """The settings the report names as refusing: a unit's, or the rules of a seccomp profile."""
    from generators.interface import PolicyFormat

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
    """An errno by name, as the policy gave it (a number is named); EnforcementError for one this system lacks."""
    if name is None:
        return None
    if name.isdigit():
        return errno.errorcode.get(int(name), name)
    if not isinstance(getattr(errno, name, None), int):
        raise EnforcementError(f"{source}: errno {name} is not one this system knows")
    return name


def seccomp_rules(policy: "Policy") -> "SeccompRules":
    """The seccomp side of a policy, with each refusal named after the setting that makes it."""
    from generators.interface import ListMode
    from generators.profile import NAMESPACE_TYPES
    from profiler.enforcement.confinement import Answer, SeccompRules, SyscallList

    labels = _labels(policy)
    syscall_list = None
    if policy.syscalls is not None:
        rules = policy.syscalls
        syscall_list = SyscallList(
            rules.rules.mode is ListMode.ALLOW,
            rules.rules.names,
            Answer(_errno_checked(rules.default_errno, policy.source), labels["syscalls"]),
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


def account_of(spec: str | None) -> "Account | None":
    """The user to run as, or None to stay profiler's own (root); WorkloadError for an unknown or empty one."""
    from profiler.enforcement.confinement import Account
    from profiler.recording.targets import User

    user = User.lookup(spec) if spec is not None else None
    return Account(user.name, user.uid, user.gid, user.home) if user is not None and user.uid != 0 else None


def _account_of_policy(policy: "Policy", user: str | None) -> "Account | None":
    """--user, else the policy's user; under DynamicUser=yes, where this host has no user of that name, nobody:
    the user that owns no file, as the runs generate writes DynamicUser=yes for ran (systemd allocates a user of
    its own at start, which run does not)."""
    from generators.sandbox import NOBODY

    if user is not None:
        return account_of(user)
    try:
        return account_of(policy.user)
    except WorkloadError:
        dynamic = policy.dynamic_user
        if dynamic is None:
            raise
    try:
        return account_of(NOBODY)
    except WorkloadError:
        raise WorkloadError(
            f"{dynamic.where}: systemd allocates the user {policy.user!r} at start, which run does not, and this "
            f"host has no {NOBODY} to run as instead: give --user, a user that owns no file"
        ) from None


def _with_group(account: "Account | None", group: str | None) -> "Account | None":
    if account is None or group is None:
        return account
    try:
        gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
    except (KeyError, OverflowError):
        raise WorkloadError(f"unknown group {group!r} (Group=): give a name from /etc/group or a numeric gid") from None
    return dataclasses.replace(account, gid=gid)


def confinement_of(chosen: RunPolicy, user: str | None = None) -> "Confinement":
    """What the launcher applies for a policy; --user takes the place of the policy's user."""
    from profiler.enforcement.confinement import ALL_CAPABILITIES, Capabilities, Confinement

    policy = chosen.policy
    account = _with_group(_account_of_policy(policy, user), policy.group)
    allowed = _allowed(policy.capability_bounding, abi.CAPABILITIES) or ALL_CAPABILITIES
    taken = tuple(
        (name, each.where) for each in policy.overrides for name in sorted(each.capabilities) if name in allowed
    )
    bounding = allowed - {name for name, _ in taken}
    rules = seccomp_rules(policy)
    ambient = policy.ambient_capabilities & bounding
    # The kernel loads a filter for a process without CAP_SYS_ADMIN only under no_new_privs; systemd turns it
    # on in that case too (Policy.no_new_privileges_implied_by).
    implied = account is not None and rules.filters and "CAP_SYS_ADMIN" not in ambient
    return Confinement(
        account=account,
        capabilities=Capabilities(bounding, ambient, taken),
        no_new_privileges=policy.no_new_privileges is True or bool(policy.no_new_privileges_implied_by) or implied,
        seccomp=rules,
        private_network=policy.sandbox.value("PrivateNetwork") == "yes",
        file_system=_file_system(policy.sandbox),
        source=chosen.described,
    )


def _file_system(sandbox: "SandboxSettings") -> "FileSystem":
    from profiler.enforcement.confinement import FileSystem, ProtectHome, ProtectSystem

    # '-' and '+' dropped (a missing path is left alone anyway); a relative path is a finding that stops the run.
    # A symbolic link is followed, as systemd follows it: what becomes writable is the directory it points to.
    writable = [os.path.realpath(entry.value) for entry in sandbox.entries_of("ReadWritePaths")]
    managed = [each.resolved() for each in _managed_directories(sandbox) if os.path.isdir(each.path)]
    return FileSystem(
        private_tmp=sandbox.value("PrivateTmp") == "yes",
        private_devices=sandbox.value("PrivateDevices") == "yes",
        protect_system=ProtectSystem(sandbox.value("ProtectSystem") or ProtectSystem.NO),
        protect_home=ProtectHome(sandbox.value("ProtectHome") or ProtectHome.NO),
        read_write_paths=tuple(dict.fromkeys([*writable, *managed])),
    )


@dataclass(frozen=True, slots=True)
class _ManagedDirectory:
    """A StateDirectory=, CacheDirectory=, LogsDirectory= or RuntimeDirectory= entry and the directory it names: of
    NAME:LINK the NAME, which systemd makes LINK a symlink to."""

    at: "SettingLine"
    tree: str  # /var/lib
    path: str  # /var/lib/NAME

    def resolved(self) -> str:
        """The directory as it resolves: a symlink on the way that leads out of its tree (/var/lib/NAME to /etc)
        would make run open what the line does not name, and systemd refuses to start such a unit
        (238/STATE_DIRECTORY, measured for a /var/lib/NAME that is a symlink). One that stays in the tree is
        followed, as DynamicUser=yes leaves NAME a symlink to private/NAME."""
        from generators.sandbox import is_under

        tree, resolved = os.path.realpath(self.tree), os.path.realpath(self.path)
        if resolved == tree or not is_under(resolved, tree):
            raise EnforcementError(
                f"{self.at.key}={self.at.value} ({self.at.source}:{self.at.line}): {self.path} leads to {resolved}, "
                f"out of {self.tree}: make it a directory there, or take the line out"
            )
        return resolved


def _managed_directories(sandbox: "SandboxSettings") -> list[_ManagedDirectory]:
    from generators.sandbox import MANAGED_TREES

    return [
        _ManagedDirectory(entry, tree, posixpath.join(tree, entry.value.split(":", 1)[0]))
        for tree, key in MANAGED_TREES.items()
        for entry in sandbox.entries_of(key)
    ]


def _command(argv: Sequence[str], account: "Account | None") -> "Command":
    from profiler.enforcement.launcher import Command
    from profiler.recording.targets import resolve_program

    environment = dict(os.environ)
    if account is not None:
        environment.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    return Command(tuple(argv), resolve_program(tuple(argv)), environment, os.getcwd())


def _audit(chosen: RunPolicy, argv: Sequence[str], user: str | None, watch: bool) -> "RunReport":
    from generators import compare as comparing
    from generators import formats
    from generators.profile import build_profile
    from profiler.enforcement.audit import audit
    from profiler.enforcement.report import RunReport, WouldRefuse
    from profiler.recording.targets import User

    confinement = confinement_of(chosen, user)
    account = confinement.account
    audited = audit(
        confinement,
        _command(argv, account),
        User.lookup(str(account.uid)) if account else None,
        watch_refusals=watch,
    )
    recording = audited.recording
    comparison = comparing.compare(build_profile([("the audited run", recording.trace)]), chosen.policy)
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
    paths = tuple(
        WouldRefuse(
            "path",
            f"{each.operation} {each.path}",
            (each.program,),
            each.count,
            f"{each.errno} from {each.setting} (refused in this run too: an audit applies the mounts and the user)",
            (),
        )
        for each in audited.path_refusals
    )
    connects = tuple(
        WouldRefuse(
            "connect",
            each.address,
            (each.program,),
            each.count,
            f"ENETUNREACH from {each.setting} (refused in this run too: an audit applies the namespaces)",
            (),
        )
        for each in audited.connect_refusals
    )
    fixed = formats.correction(comparison)
    fix = "\n".join(filter(None, [fixed.text.rstrip("\n") if fixed else None, *_writable_lines(chosen, audited)]))
    return RunReport(
        recording.exit_status,
        True,
        chosen.described,
        would_refuse=would + paths + connects,
        fix=fix + "\n" if fix else None,
        not_applied=chosen.not_applied,
        unwatched=audited.unwatched,
        uncounted=audited.uncounted,
    )


# What each refused call would have done to its path, had the mount let it: what the writable roots are made of.
_WRITES_BY_SYSCALL = {
    **dict.fromkeys(("mkdir", "mkdirat", "mknod", "mknodat", "symlink", "symlinkat"), "create"),
    **dict.fromkeys(("link", "linkat"), "link"),
    **dict.fromkeys(("unlink", "unlinkat", "rmdir"), "delete"),
    **dict.fromkeys(("rename", "renameat", "renameat2"), "rename"),
    **dict.fromkeys(("chmod", "fchmodat", "chown", "lchown", "fchownat"), "chmod"),
    "truncate": "write",
}


def _writable_lines(chosen: RunPolicy, audited: "Audited") -> list[str]:
    """The lines that let the writes a read-only mount refused, as generate would write them for those writes
    (the fewest paths, a directory systemd manages where it is one): a unit's only."""
    from generators.interface import PolicyFormat
    from generators.profile import Evidence, FileNeed
    from generators.sandbox import SandboxPlan, writable_roots
    from generators.systemd.sandbox import sandbox_lines
    from profiler.trace import FileOp

    if chosen.policy.format is not PolicyFormat.SYSTEMD:
        return []
    needs = []
    for each in audited.path_refusals:
        if each.errno != "EROFS" or not each.path.startswith("/"):
            continue
        op = _WRITES_BY_SYSCALL.get(each.syscall)
        if op is None and each.operation == "write to":
            op = "write" if os.path.lexists(each.path) else "create"
        if op is not None:
            needs.append(FileNeed(each.path, FileOp(op), None, Evidence((0,), each.count, (each.program,), None)))
    roots = writable_roots(needs, chosen.policy.sandbox.value("PrivateTmp") == "yes")
    # The lines generate writes for these roots, but for its empty assignments: a correction adds to the unit.
    plan = SandboxPlan(settings=(), writable=roots, files=tuple(needs))
    lines = [f"{key}={value}" for key, value, _ in sandbox_lines(plan) if value]
    return ["[Service]", *lines] if lines else []


def run(
    chosen: RunPolicy, argv: Sequence[str], *, audit: bool = False, user: str | None = None, watch: bool = True
) -> "RunReport":
    """Run a command confined by a policy (run_policy), or audited against it; the report says what was, or
    would have been, refused. watch: enforced, name the capabilities and paths refused too, not only the calls
    the seccomp filter refused (through eBPF)."""
    from profiler.enforcement.launcher import launch
    from profiler.enforcement.report import RunReport
    from profiler.recording.terminal_relay import TerminalRelay

    if audit:
        return _audit(chosen, argv, user, watch)
    confinement = confinement_of(chosen, user)
    relay = TerminalRelay.open()
    try:
        enforced = launch(confinement, _command(argv, confinement.account), relay, watch_refusals=watch)
    finally:
        if relay is not None:
            relay.close()
    return RunReport(
        enforced.exit_status,
        False,
        chosen.described,
        refusals=enforced.refusals,
        capability_refusals=enforced.capability_refusals,
        path_refusals=enforced.path_refusals,
        connect_refusals=enforced.connect_refusals,
        unwatched=enforced.unwatched,
        uncounted=enforced.uncounted,
        not_applied=chosen.not_applied,
        startup_s=enforced.startup_s,
    )
