"""The `profiler` command: a thin click front over the library; every error is one line and exit 2."""

import contextlib
import gc
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from generators import reports
from generators.interface import PolicyFormat
from generators.oci_runtimes import OCI_RUNTIMES
from generators.reports.interface import ReportFormat
from profiler import __version__, explore, files, pipeline, show, trace
from profiler.errors import OptionError, ProfilerError
from profiler.escaping import visible
from profiler.files import write_text_atomically
from profiler.pipeline import confining

if TYPE_CHECKING:  # a command loads what it uses: show and schema load no generator
    from generators.comparison import Comparison


def fail(message: str) -> NoReturn:
    """The message as one line on stderr (escaped: it can quote a path or an argument), and exit status 2."""
    click.echo(f"profiler: error: {visible(message)}", err=True)
    sys.exit(2)


def _usage_message(error: click.ClickException) -> str:
    """click's message in our form: lower case, one line, with where the usage is described."""
    message = " ".join(error.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    context = error.ctx if isinstance(error, click.UsageError) else None
    if context is None:
        return message
    # The root's name is how it was started (main under click's test runner, python -m profiler.cli): the command
    # people type is profiler.
    path: list[str] = []
    while context.parent is not None:
        path.insert(0, context.info_name or "")
        context = context.parent
    path.insert(0, "profiler")
    command = f"{path[-1]}: " if len(path) > 1 else ""
    return f"{command}{message} (see {' '.join(path)} --help)"


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # `profiler` alone: the help is what was asked for
    except click.ClickException as error:
        fail(_usage_message(error))


class _Command(click.Command):
    """Every command turns any ProfilerError into one line on stderr and exit status 2, in this one place; an
    OptionError (an option that does not fit the others) is reported as usage."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OptionError as error:
            raise click.UsageError(str(error), ctx) from None
        except ProfilerError as error:
            fail(str(error))
        except KeyboardInterrupt:  # before a recording starts, or while reading files: nothing to save
            click.echo("profiler: interrupted", err=True)
            sys.exit(130)


class _Group(click.Group):
    """click's usage errors (an unknown option, a missing argument, a bad value) as one line and exit 2, like
    every other error, rather than click's four lines of usage, hint and message."""

    command_class = _Command

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="profiler")
@click.pass_context
def main(context: click.Context) -> None:
    """Learn the syscalls, capabilities and socket families a component really uses."""
    if context.invoked_subcommand != "record":
        # The other commands read traces into hundreds of thousands of objects, none in a cycle, and end within
        # seconds: the cyclic collector would walk them again and again for nothing (a third of generate's time
        # on a trace of 10,000 processes).
        gc.disable()
        context.call_on_close(gc.enable)  # for callers that go on, as tests do


def _positive(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):  # nan and inf would never end it
        raise click.BadParameter(f"must be a finite number of seconds more than 0, not {value}")
    return value


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Trace file [default: COMPONENT-TIME.trace.json]."
)
@click.option("--component", help="Name of the component recorded [default: the program's name].")
@click.option("--user", help="Run the command as this user (name or uid): services run unprivileged.")
@click.option("--force", is_flag=True, help="Overwrite an existing trace file.")
@click.option("--pid", type=click.IntRange(min=1), help="Attach to a running process and its descendants.")
@click.option("--cgroup", type=click.Path(path_type=Path), help="Attach to every process in a cgroup v2 directory.")
@click.option("--duration", type=float, callback=_positive, help="End the recording after this many seconds.")
@click.option("--ebpf", is_flag=True, help="Print the eBPF program that would be loaded, and exit.")
@click.option(
    "--no-paths",
    "no_paths",
    is_flag=True,
    help="Do not record file accesses and kernel interfaces (the sandboxing settings then stay open).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def record(
    output: Path | None,
    component: str | None,
    user: str | None,
    force: bool,
    pid: int | None,
    cgroup: Path | None,
    duration: float | None,
    ebpf: bool,
    no_paths: bool,
    command: tuple[str, ...],
) -> None:
    """Record what COMMAND (or a running process, or a cgroup) uses, into a trace file.

    \b
      profiler record [-o FILE] [--component NAME] [--user USER] -- COMMAND [ARG...]
      profiler record [-o FILE] (--pid PID | --cgroup PATH) [--duration SECONDS]

    The command's stdin, stdout and stderr pass through (on a terminal, through a terminal of its own) and
    its exit status becomes profiler's. Ctrl-C ends the recording early; the trace is still saved. However
    the recording ends, no process the command started is left running.
    """
    if ebpf:
        click.echo(pipeline.recorder_program(command, pid=pid, cgroup=cgroup, user=user, paths=not no_paths))
        return
    target = pipeline.record_target(command, pid=pid, cgroup=cgroup, user=user)
    recorded = pipeline.record(
        target,
        output,
        component=component,
        duration_s=duration,
        overwrite=force,
        status_line=sys.stderr.isatty(),
        paths=not no_paths,
    )
    if recorded.saved.failures:
        fail(f"{'; '.join(recorded.saved.failures)}; the trace was saved to {recorded.saved.path} instead")
    click.echo(f"profiler: {show.short_summary(recorded.recording.trace)}", err=True)
    click.echo(f"profiler: trace saved to {recorded.path}", err=True)
    sys.exit(recorded.recording.exit_status)


@main.command("show")
@click.argument("traces", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "csv", "json"]),
    default="text",
    show_default=True,
    help="text to read; csv (one --table) or json (every table, or one --table) for other tools.",
)
@click.option("--table", type=click.Choice([each.value for each in explore.Table]), help="The table to export.")
def show_command(traces: tuple[Path, ...], output_format: str, table: str | None) -> None:
    """Print a readable summary of each TRACE: process tree, syscalls, capabilities, families.

    With --format csv or json, export the tables of profiler.explore instead: one row per recorded fact,
    and a run column naming the trace it came from.
    """
    chosen = explore.Table(table) if table else None
    if output_format == "text" and chosen is not None:
        raise click.UsageError("--table applies to --format csv and json")
    if output_format == "csv" and chosen is None:
        raise click.UsageError("--format csv writes one table: give --table NAME")
    loaded = [(str(path), trace.load(path)) for path in traces]
    if output_format == "text":
        click.echo(show.render_summaries(loaded), nl=False)
    elif chosen is not None and output_format == "csv":
        click.echo(explore.to_csv(explore.tables(loaded), chosen), nl=False)
    else:
        click.echo(explore.to_json(explore.tables(loaded), [chosen] if chosen else list(explore.Table)), nl=False)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the trace file format."""
    click.echo(json.dumps(trace.json_schema(), indent=2))


# --- generate, explain, diff, check ---------------------------------------------------------------------------------

_traces_argument = click.argument("traces", nargs=-1, required=True, type=click.Path(path_type=Path))
_component_option = click.option("--component", help="The component to use when the traces hold several.")
_min_runs_option = click.option(
    "--min-runs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Mark items seen in fewer runs as uncertain.",
)
_portability_option = click.option(
    "--no-portability",
    is_flag=True,
    help="Leave out what other hosts need though the traces did not show it (vDSO fallbacks; ENOSYS for the "
    "syscalls the C library probes).",
)
_report_option = click.option(
    "--format",
    "report_format",
    type=click.Choice([each.value for each in ReportFormat]),
    default=ReportFormat.TEXT.value,
    show_default=True,
    help="text for a terminal, markdown for a pull-request comment, json for other tools, sarif for code scanning "
    "(each finding at its policy's file and line).",
)
_runtime_option = click.option(
    "--runtime",
    type=click.Choice([*OCI_RUNTIMES, pipeline.NO_RUNTIME]),
    help="oci, k8s: the OCI runtime that starts the container, whose own calls between loading the filter "
    "and the exec a seccomp profile must allow; none: only the workload's [default: both crun and runc].",
)


_policy_format_option = click.option(
    "--policy-format",
    type=click.Choice([PolicyFormat.SYSTEMD.value, PolicyFormat.OCI.value, PolicyFormat.K8S.value]),
    help="The format of POLICY [default: from its name: .service/.conf systemd, .json oci, .yaml k8s].",
)


@main.command()
@_traces_argument
@click.option(
    "--format",
    "policy_format",
    type=click.Choice([each.value for each in PolicyFormat]),
    required=True,
    help="systemd drop-in, OCI seccomp JSON, k8s SeccompProfile, docker run flags, or the json profile.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to this file [default: stdout].")
@_component_option
@_min_runs_option
@click.option("--groups", is_flag=True, help="systemd: write @groups where a group is wholly used.")
@click.option("--args", "argument_filters", is_flag=True, help="oci, k8s: filter socket() and clone() arguments.")
@click.option("--seccomp-file", help="docker: the OCI profile the flags load [default: COMPONENT.seccomp.json].")
@click.option("--namespace", help="k8s: the namespace of the SeccompProfile [default: the one kubectl applies it in].")
@_runtime_option
@click.option(
    "--base-profile",
    help="k8s: name the operator's base profile of the runtime's calls (baseProfileName) instead of listing them.",
)
@_portability_option
@click.option("--no-comments", is_flag=True, help="Leave out the comments that say where each item came from.")
@click.option(
    "--command-lines",
    is_flag=True,
    help="Name each run by its whole command line, not only its program (arguments can hold secrets, and "
    "policies get committed).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def generate(
    traces: tuple[Path, ...],
    policy_format: str,
    output: Path | None,
    component: str | None,
    min_runs: int,
    groups: bool,
    argument_filters: bool,
    seccomp_file: str | None,
    namespace: str | None,
    runtime: str | None,
    base_profile: str | None,
    no_portability: bool,
    no_comments: bool,
    command_lines: bool,
    force: bool,
) -> None:
    """Generate the tightest policy that lets every TRACE run, in one format."""
    chosen = PolicyFormat(policy_format)
    options = pipeline.render_options(
        chosen,
        comments=not no_comments,
        groups=groups,
        argument_filters=argument_filters,
        portability=not no_portability,
        min_runs=min_runs,
        seccomp_file=seccomp_file,
        namespace=namespace,
        runtime=runtime,
        base_profile=base_profile,
        command_lines=command_lines,
    )
    text = pipeline.generate(traces, chosen, options, component)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text_atomically(output, text, overwrite=force)


@main.command("explain")
@_traces_argument
@click.argument("item")
@_component_option
@_min_runs_option
@_portability_option
def explain_command(
    traces: tuple[Path, ...], item: str, component: str | None, min_runs: int, no_portability: bool
) -> None:
    """Print where ITEM came from: a syscall, capability, address family or namespace type.

    \b
      profiler explain TRACE... openat
      profiler explain TRACE... CAP_CHOWN
      profiler explain TRACE... AF_NETLINK
    """
    click.echo(pipeline.explain(traces, item, component, min_runs=min_runs, portability=not no_portability), nl=False)


@main.command("diff")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--policy", type=click.Path(path_type=Path), help="The deployed policy to compare the traces with.")
@_policy_format_option
@_runtime_option
@_report_option
@_component_option
@_min_runs_option
@_portability_option
def diff_command(
    inputs: tuple[Path, ...],
    policy: Path | None,
    policy_format: str | None,
    runtime: str | None,
    report_format: str,
    component: str | None,
    min_runs: int,
    no_portability: bool,
) -> None:
    """Compare TRACEs with a deployed POLICY, or OLD with NEW.

    \b
      profiler diff --policy POLICY TRACE...   what the policy misses and what it allows unused
      profiler diff OLD NEW                    what NEW started to need, and stopped using
                                               (each a trace, or a profile of generate --format json)

    Exits 0 whatever it finds; `profiler check` is the one that fails on drift.
    """
    report = reports.report(ReportFormat(report_format))
    if policy is None:
        for given, name in ((policy_format, "--policy-format"), (runtime, "--runtime")):
            if given is not None:
                raise click.UsageError(f"{name} applies to --policy")
        if len(inputs) != 2:
            raise click.UsageError("give --policy POLICY TRACE..., or exactly two inputs: OLD NEW")
        click.echo(report.drift(pipeline.drift(inputs[0], inputs[1], component)), nl=False)
        return
    comparison = _compare(inputs, policy, policy_format, runtime, component, min_runs, no_portability)
    click.echo(report.comparison(comparison), nl=False)


@main.command()
@_traces_argument
@click.option("--policy", type=click.Path(path_type=Path), required=True, help="The deployed policy.")
@_policy_format_option
@_runtime_option
@click.option("--strict", is_flag=True, help="Fail also when the policy allows what no trace used.")
@_report_option
@_component_option
@_min_runs_option
@_portability_option
def check(
    traces: tuple[Path, ...],
    policy: Path,
    policy_format: str | None,
    runtime: str | None,
    strict: bool,
    report_format: str,
    component: str | None,
    min_runs: int,
    no_portability: bool,
) -> None:
    """Check that POLICY allows everything the TRACEs need, for CI.

    Exit status: 0 when nothing is missing, 1 when something is (with --strict, also when anything is
    in excess), 2 when an input cannot be read.
    """
    comparison = _compare(traces, policy, policy_format, runtime, component, min_runs, no_portability)
    click.echo(reports.report(ReportFormat(report_format)).comparison(comparison), nl=False)
    sys.exit(0 if comparison.passed(strict) else 1)


@main.command()
@click.argument("policies", metavar="POLICY...", nargs=-1, required=True, type=click.Path(path_type=Path))
@_policy_format_option
@_report_option
def lint(policies: tuple[Path, ...], policy_format: str | None, report_format: str) -> None:
    """Lint POLICY files without traces: what their consumer ignores or reads differently from how it looks.

    The same findings as the lint section of `profiler diff --policy` and `check`, for pre-commit and editors.
    Exit status: 0 when no policy has a finding, 1 when one has, 2 when a policy cannot be read.
    """
    read = pipeline.lint(policies, PolicyFormat(policy_format) if policy_format else None)
    click.echo(reports.report(ReportFormat(report_format)).lint(read), nl=False)
    sys.exit(1 if any(policy.findings for policy in read) else 0)


def _compare(
    traces: tuple[Path, ...],
    policy: Path,
    policy_format: str | None,
    runtime: str | None,
    component: str | None,
    min_runs: int,
    no_portability: bool,
) -> "Comparison":
    return pipeline.compare(
        traces,
        policy,
        PolicyFormat(policy_format) if policy_format else None,
        runtime=runtime,
        component=component,
        min_runs=min_runs,
        portability=not no_portability,
    )


@main.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--policy",
    "policies",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="A unit, an OCI profile, a profile, or traces (repeat for several).",
)
@click.option("--audit", is_flag=True, help="Refuse nothing; report what the policy would have refused.")
@click.option("--report", type=click.Path(path_type=Path), help="Write the report as JSON to this file.")
@click.option("--force", is_flag=True, help="Overwrite an existing report file.")
@click.option("--user", help="Run the command as this user (name or uid) instead of the policy's.")
@click.option(
    "--no-watch",
    is_flag=True,
    help="Name only the calls the seccomp filter refused (or, audited, what the recording shows), not the "
    "capabilities, paths and connections refused (watched through eBPF, which takes about half a second to start "
    "and slows every syscall on the host).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run_command(
    policies: tuple[Path, ...],
    audit: bool,
    report: Path | None,
    force: bool,
    user: str | None,
    no_watch: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND confined by POLICY, without a container engine; or audit it against POLICY first.

    \b
      profiler run --policy POLICY [--audit] [--report FILE] [--user USER] -- COMMAND [ARG...]

    Enforced, the exit status is the command's, and each call, capability and path the policy refused is named
    at the end.
    With --audit: 0 when the policy would refuse nothing the run did, 1 when it would, 2 on bad input.
    """
    if not command:
        raise click.UsageError("no command given: write it after --, as in: profiler run --policy unit.service -- ls /")
    if report is not None:
        files.check_output(report, overwrite=force)
    chosen = confining.run_policy(policies)
    for setting in chosen.not_applied:
        click.echo(visible(f"profiler: not applied: {setting}"), err=True)
    result = confining.run(chosen, command, audit=audit, user=user, watch=not no_watch)
    for line in result.lines():
        click.echo(visible(line), err=True)
    if report is not None:
        write_text_atomically(report, result.json(), overwrite=force)
    if audit:
        sys.exit(1 if result.would_refuse else 0)
    sys.exit(result.exit_status)


if __name__ == "__main__":
    main()
