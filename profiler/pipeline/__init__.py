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

`profiler run` is profiler.pipeline.confining: the policy read, turned into what the launcher applies, enforced
or audited.

Every bad input is a ProfilerError of one line; OptionError is an option that does not fit the others, named as
the command line names it. The generators are imported on use: `show` and `record` never load them; the recorder
is too, so that what reads traces works where BCC is not installed.
"""

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from profiler import files, trace
from profiler.errors import ComponentError, OptionError, OutputError, PolicyParseError

if TYPE_CHECKING:
    from generators.comparison import Comparison, Drift
    from generators.interface import Policy, PolicyFormat, RenderOptions
    from generators.profile import Profile
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


def schema_of(data: bytes) -> object:
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
    if schema_of(data) != json_profile.SCHEMA_NAME:
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
