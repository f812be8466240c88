"""record, generate, check, diff and explain as functions a notebook calls, and the loading of their inputs.

    record_target(command, ...)  what `record` records: a command, a running process or a cgroup
    recorder_program(...)        the eBPF program `record` would load, as `record --ebpf` prints it
    record(target, output)       a recording, saved: RecordedTrace
    load_profile(paths)          the profile of one component from trace files
    load_drift_side(path)        the profile of a trace, or of a file `generate --format json` wrote
    read_policy(path)            a deployed policy, its format given or told by its file name
    lint(paths)                  policies read for their lint findings alone: what `profiler lint` reports
    render_options(format, ...)  RenderOptions, with the options the format does not take refused
    generate(traces, format)     the policy text
    compare(traces, policy)      Comparison: what `check` and `diff --policy` report
    drift(old, new)              Drift: what `diff OLD NEW` reports
    explain(traces, item)        where an item came from, as `profiler explain` prints it
    run_policy(paths)            what `run --policy` names: traces or a profile (the drop-in generate writes for them,
                                 read back), our JSON profile, an OCI profile, or a unit with its sandbox settings
    confinement_of(policy)       what the launcher applies for it, by the kernel's names
    run(policy, argv)            enforce (each refusal answered and named) or audit (recorded and compared)

Every bad input is a ProfilerError of one line; OptionError is an option that does not fit the others, named as
the command line names it. The generators are imported on use: `show` and `record` never load them; the recorder
is too, so that what reads traces works where BCC is not installed.
"""

import dataclasses
import errno
import grp
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from profiler import abi, files, trace
from profiler.errors import (
    ComponentError,
    EnforcementError,
    OptionError,
    OutputError,
    PolicyParseError,
    WorkloadError,
)

if TYPE_CHECKING:
    from generators.comparison import Comparison, Drift
    from generators.interface import NameSet, Policy, PolicyFormat, RenderOptions
    from generators.profile import Profile
    from generators.systemd.run_settings import UnitSandbox
    from profiler.enforcement.confinement import Account, Confinement, SeccompRules
    from profiler.enforcement.launcher import Command
    from profiler.enforcement.report import RunReport
    from profiler.recording.session import Recording
    from profiler.recording.targets import Target


def _check_record_target(command: Sequence[str], pid: int | None, cgroup: Path | None, user: str | None) -> None:
    chosen = [name for name, given in (("COMMAND", command), ("--pid", pid), ("--cgroup", cgroup)) if given]
    if len(chosen) != 1:
        raise OptionError("give exactly one of COMMAND (after --), --pid or --cgroup")
    if user is not None and not command:
        raise OptionError("--user applies to a COMMAND only")


def record_target(
    command: Sequence[str] = (), *, pid: int | None = None, cgroup: Path | None = None, user: str | None = None
) -> "Target":
    """What `profiler record` records: a command (run as user, when given), a running process and its descendants,
    or a cgroup v2 directory. OptionError unless exactly one is given, or for a user without a command."""
    from profiler.recording import targets

    _check_record_target(command, pid, cgroup, user)
    if command:
        return targets.CommandTarget(tuple(command), targets.User.lookup(user) if user is not None else None)
    if pid is not None:
        return targets.PidTarget(pid)
    assert cgroup is not None
    return targets.CgroupTarget(cgroup)


def recorder_program(
    command: Sequence[str] = (),
    *,
    pid: int | None = None,
    cgroup: Path | None = None,
    user: str | None = None,
    paths: bool = True,
) -> str:
    """The eBPF program that recording this target would load, with the #defines for this kernel: what
    `record --ebpf` prints. The target is checked as record_target checks it, and not looked up."""
    from profiler.recording import kernel_features, tracer

    _check_record_target(command, pid, cgroup, user)
    return tracer.program_source(kernel_features.probe(), tracer.TableSizes(), cgroup is not None, paths)


@dataclass(frozen=True, slots=True)
class RecordedTrace:
    recording: "Recording"  # the trace, and the status profiler exits with
    path: Path  # the trace file as asked for (or the default name), relative to the working directory
    saved: trace.SavedTrace  # where it is: elsewhere, with why, when it could not be written there


def record(
    target: "Target",
    output: Path | None = None,
    *,
    component: str | None = None,
    duration_s: float | None = None,
    overwrite: bool = False,
    status_line: bool = False,
    paths: bool = True,
) -> RecordedTrace:
    """Record a run of the target and save its trace: at output (checked before recording starts), else under a
    name of the component and the time. status_line: show the recording's progress on stderr, a terminal. paths:
    record file accesses and kernel uses (`record --no-paths` does not)."""
    from profiler.recording import session

    # libbcc compiles in the kernel headers directory and stays there where it cannot return (the working directory
    # is gone): where the trace goes is fixed before the recording starts.
    try:
        directory = Path.cwd()
    except FileNotFoundError:
        raise OutputError("the working directory no longer exists: cd to one, or give -o an absolute path") from None
    if output is not None:
        files.check_output(directory / output, overwrite=overwrite)
    options = session.RecordOptions(component=component, duration_s=duration_s, paths=paths)
    try:
        result = session.record(target, options, session.print_status if status_line else None)
    finally:
        if status_line:
            sys.stderr.write("\r\033[K")
    path = output or Path(session.default_trace_name(result.trace.run.component))
    return RecordedTrace(result, path, trace.save_or_rescue(result.trace, directory / path, overwrite=overwrite))


def load_profile(paths: Sequence[Path], component: str | None = None) -> "Profile":
    """The profile of one component from trace files."""
    from generators.profile import build_profile

    return build_profile([(str(path), trace.load(path)) for path in paths], component)


def _schema_of(data: bytes) -> object:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None  # the reader that follows says what is wrong, in one line
    return document.get("schema") if isinstance(document, dict) else None


def load_drift_side(path: Path, component: str | None = None) -> "Profile":
    """OLD or NEW of a drift: a trace file, or a profile that `generate --format json` wrote."""
    from generators import json_profile
    from generators.profile import build_profile

    data = files.read_input(path, "trace")
    if _schema_of(data) != json_profile.SCHEMA_NAME:
        return build_profile([(str(path), trace.parse(data, str(path)))], component)
    profile = json_profile.parse_profile(data, str(path))
    if component is not None and profile.component != component:
        raise ComponentError(f"{path}: a profile of {profile.component}, not of {component}")
    return profile


def policy_suffixes() -> Mapping[str, "PolicyFormat"]:
    """File name endings of the policies people deploy; anything else needs its format named."""
    from generators.interface import PolicyFormat

    return {
        **dict.fromkeys((".service", ".socket", ".mount", ".swap", ".conf"), PolicyFormat.SYSTEMD),
        ".json": PolicyFormat.OCI,
        **dict.fromkeys((".yaml", ".yml"), PolicyFormat.K8S),
    }


def read_policy(path: Path, policy_format: "PolicyFormat | None" = None) -> "Policy":
    """Read a deployed policy; without a format, its file name tells (PolicyParseError when it cannot)."""
    from generators import formats

    if policy_format is None:
        policy_format = policy_suffixes().get(path.suffix)
        if policy_format is None:
            raise PolicyParseError(
                f"{path}: cannot tell the policy format from the file name; give --policy-format systemd, oci or k8s"
            )
    return formats.reader(policy_format).read(path)


def lint(paths: Sequence[Path], policy_format: "PolicyFormat | None" = None) -> tuple["Policy", ...]:
    """Each policy as read, with its lint findings: the same as the lint of a comparison, with no trace.

    A drop-in whose unit is beside its directory (NAME.service.d/10-x.conf and NAME.service) is read as systemd
    reads it, with the unit and its other drop-ins, and that unit once however many of its files are given:
    alone it would lack the settings it adds to (pre-commit passes each changed file).
    """
    from generators.interface import PolicyFormat

    def as_loaded(path: Path) -> Path:
        unit = path.parent.with_name(path.parent.name.removesuffix(".d"))
        systemd = policy_format in (None, PolicyFormat.SYSTEMD)
        if systemd and path.suffix == ".conf" and path.parent.suffix == ".d" and unit.is_file():
            return unit
        return path

    return tuple(read_policy(path, policy_format) for path in dict.fromkeys(map(as_loaded, paths)))


NO_RUNTIME = "none"  # the runtime to name for a profile loaded by none of the OCI runtimes profiler knows


def runtimes(runtime: str | None) -> tuple[str, ...] | None:
    """The OCI runtimes a runtime option names: None when not given (every one), () for NO_RUNTIME."""
    if runtime is None:
        return None
    return () if runtime == NO_RUNTIME else (runtime,)


def render_options(
    policy_format: "PolicyFormat",
    *,
    comments: bool = True,
    groups: bool = False,
    argument_filters: bool = False,
    portability: bool = True,
    min_runs: int = 1,
    seccomp_file: str | None = None,
    namespace: str | None = None,
    runtime: str | None = None,
    base_profile: str | None = None,
    command_lines: bool = False,
) -> "RenderOptions":
    """The options of generate; OptionError for one the format does not take, or two that exclude each other."""
    from generators.interface import RenderOptions
    from generators.oci_runtimes import OCI_RUNTIMES

    chosen = runtimes(runtime)
    options = RenderOptions(
        comments=comments,
        groups=groups,
        argument_filters=argument_filters,
        portability=portability,
        min_runs=min_runs,
        seccomp_file=seccomp_file,
        namespace=namespace,
        runtimes=() if base_profile else OCI_RUNTIMES if chosen is None else chosen,
        base_profile=base_profile,
        command_lines=command_lines,
    )
    misuse = options.misuse(policy_format)
    if misuse is None and runtime is not None and base_profile is not None:
        misuse = "--base-profile holds the runtime's calls: give it or --runtime, not both"
    if misuse is not None:
        raise OptionError(misuse)
    return options


def generate(
    traces: Sequence[Path], policy_format: "PolicyFormat", options: "RenderOptions", component: str | None = None
) -> str:
    """The policy of the traces' component in one format."""
    from generators import formats

    return formats.renderer(policy_format).render(load_profile(traces, component), options)


def compare(
    traces: Sequence[Path],
    policy: Path,
    policy_format: "PolicyFormat | None" = None,
    *,
    runtime: str | None = None,
    component: str | None = None,
    min_runs: int = 1,
    portability: bool = True,
) -> "Comparison":
    """The traces against a deployed policy: what `check` and `diff --policy` report."""
    from generators import compare as comparing
    from generators.interface import PolicyFormat

    deployed = read_policy(policy, policy_format)
    if runtime is not None and deployed.format is PolicyFormat.SYSTEMD:
        raise OptionError("--runtime applies to seccomp profiles (oci, k8s): systemd starts units itself")
    profile = load_profile(traces, component)
    return comparing.compare(profile, deployed, portability=portability, min_runs=min_runs, runtimes=runtimes(runtime))


def drift(old: Path, new: Path, component: str | None = None) -> "Drift":
    """What NEW (a trace, or a profile of generate --format json) started to need that OLD did not, and stopped."""
    from generators import compare as comparing

    return comparing.drift(load_drift_side(old, component), load_drift_side(new, component))


def explain(
    traces: Sequence[Path], item: str, component: str | None = None, *, min_runs: int = 1, portability: bool = True
) -> str:
    """Where ITEM (a syscall, capability, address family or namespace type) came from, for people."""
    from generators.reports import explain as explaining

    return explaining.explain(load_profile(traces, component), item, min_runs=min_runs, portability=portability)


# --- run ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunPolicy:
    policy: "Policy"
    sandbox: "UnitSandbox"  # a unit's settings beside the lists (defaults for other formats)
    described: str  # how the report names it: unit.service, the drop-in generated from demo.trace.json


def _generated(profile: "Profile", described: str) -> RunPolicy:
    """The systemd drop-in `generate` writes for the profile, read back: what `run` enforces is what would ship."""
    import tempfile

    from generators import formats
    from generators.interface import PolicyFormat, RenderOptions
    from generators.systemd.run_settings import read_unit_sandbox

    with tempfile.TemporaryDirectory(prefix="profiler-run-") as directory:
        dropin = Path(directory) / "generated.conf"
        dropin.write_text(formats.renderer(PolicyFormat.SYSTEMD).render(profile, RenderOptions(comments=False)))
        policy = formats.reader(PolicyFormat.SYSTEMD).read(dropin)
        sandbox = read_unit_sandbox(dropin)
    overrides = tuple(dataclasses.replace(each, source=described, line=0) for each in policy.overrides)
    return RunPolicy(dataclasses.replace(policy, source=described, overrides=overrides), sandbox, described)


def run_policy(paths: Sequence[Path], policy_format: "PolicyFormat | None" = None) -> RunPolicy:
    """What --policy names, read; PolicyParseError or TraceFormatError (one line) when it cannot be."""
    from generators import json_profile
    from generators.interface import PolicyFormat
    from generators.systemd.run_settings import UnitSandbox, read_unit_sandbox

    if not paths:
        raise OptionError("no policy given: --policy names a unit, an OCI profile, a profile or traces")
    first = paths[0]
    schema = _schema_of(files.read_input(first, "policy")) if policy_format is None else None
    if schema == trace.SCHEMA_NAME:
        return _generated(load_profile(paths), f"the drop-in generated from {', '.join(map(str, paths))}")
    if len(paths) > 1:
        raise OptionError("several --policy files: only traces combine; give one unit, OCI profile or profile")
    if schema == json_profile.SCHEMA_NAME:
        return _generated(load_drift_side(first), f"the drop-in generated from {first}")
    policy = read_policy(first, policy_format)
    sandbox = read_unit_sandbox(first) if policy.format is PolicyFormat.SYSTEMD else UnitSandbox()
    return RunPolicy(policy, sandbox, str(first))


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
    from profiler.enforcement.confinement import (
        ALL_CAPABILITIES,
        Capabilities,
        Confinement,
        FileSystem,
        ProtectHome,
        ProtectSystem,
    )

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
            # A leading '-' lets a missing path be ignored; '+' (relative to RootDirectory=) is the same path here.
            read_write_paths=tuple(
                path.lstrip("-+")
                for path in sandbox.read_write_paths
                if os.path.exists(path.lstrip("-+")) or not path.startswith("-")
            ),
        ),
        source=chosen.described,
    )


def _command(argv: Sequence[str], account: "Account | None") -> "Command":
    from profiler.enforcement.launcher import Command
    from profiler.recording.targets import resolve_program

    environment = dict(os.environ)
    if account is not None:
        environment.update(HOME=account.home, USER=account.name, LOGNAME=account.name)
    return Command(tuple(argv), resolve_program(tuple(argv)), environment, os.getcwd())


def _audit(chosen: RunPolicy, argv: Sequence[str], user: str | None) -> "RunReport":
    from generators import compare as comparing
    from generators import formats
    from generators.profile import build_profile
    from profiler.enforcement.report import RunReport, WouldRefuse
    from profiler.recording.session import RecordOptions, record
    from profiler.recording.targets import CommandTarget, User

    account = account_of(user if user is not None else chosen.policy.user)
    target = CommandTarget(tuple(argv), User.lookup(account.name) if account else None)
    recording = record(target, RecordOptions(component="audited"))
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
    fixed = formats.correction(comparison)
    return RunReport(
        recording.exit_status,
        True,
        chosen.described,
        would_refuse=would,
        fix=fixed.text if fixed else None,
        not_applied=chosen.sandbox.not_applied,
    )


def run(chosen: RunPolicy, argv: Sequence[str], *, audit: bool = False, user: str | None = None) -> "RunReport":
    """Run a command confined by a policy (run_policy), or audited against it; the report says what was, or
    would have been, refused."""
    from profiler.enforcement.launcher import launch
    from profiler.enforcement.report import RunReport
    from profiler.recording.terminal_relay import TerminalRelay

    if audit:
        return _audit(chosen, argv, user)
    confinement = confinement_of(chosen, user)
    relay = TerminalRelay.open()
    try:
        enforced = launch(confinement, _command(argv, confinement.account), relay)
    finally:
        if relay is not None:
            relay.close()
    return RunReport(
        enforced.exit_status,
        False,
        chosen.described,
        refusals=enforced.refusals,
        not_applied=chosen.sandbox.not_applied,
        startup_s=enforced.startup_s,
    )
