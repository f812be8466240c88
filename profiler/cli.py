"""The `profiler` command: a thin click front over the library; every error is one line and exit 2."""

import functools
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from profiler import __version__, show, trace
from profiler.errors import OutputError, ProfilerError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    click.echo(f"profiler: error: {message}", err=True)
    sys.exit(2)


def one_line_errors(command: F) -> F:
    """Turns any ProfilerError into one line on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ProfilerError as error:
            fail(str(error))
        except KeyboardInterrupt:  # before a recording starts, or while reading files: nothing to save
            click.echo("profiler: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="profiler")
def main() -> None:
    """Learn the syscalls, capabilities and socket families a component really uses."""


def _positive(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0 seconds")
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
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@one_line_errors
def record(
    output: Path | None,
    component: str | None,
    user: str | None,
    force: bool,
    pid: int | None,
    cgroup: Path | None,
    duration: float | None,
    ebpf: bool,
    command: tuple[str, ...],
) -> None:
    """Record what COMMAND (or a running process, or a cgroup) uses, into a trace file.

    \b
      profiler record [-o FILE] [--component NAME] [--user USER] -- COMMAND [ARG...]
      profiler record [-o FILE] (--pid PID | --cgroup PATH) [--duration SECONDS]

    The command's stdin, stdout and stderr pass through and its exit status becomes profiler's.
    Ctrl-C ends the recording early; the trace is still saved.
    """
    # Imported here so that `profiler show` and friends work where BCC is not installed.
    from profiler import kernel_features, recorder, tracer

    targets = [name for name, given in (("COMMAND", command), ("--pid", pid), ("--cgroup", cgroup)) if given]
    if len(targets) != 1:
        raise click.UsageError("give exactly one of COMMAND (after --), --pid or --cgroup")
    if user is not None and not command:
        raise click.UsageError("--user applies to a COMMAND only")
    if ebpf:
        features = kernel_features.probe()
        click.echo(tracer.program_source(features, tracer.TableSizes(), cgroup is not None))
        return
    target: recorder.Target
    if command:
        target = recorder.CommandTarget(command, recorder.User.lookup(user) if user else None)
    elif pid is not None:
        target = recorder.PidTarget(pid)
    else:
        assert cgroup is not None
        target = recorder.CgroupTarget(cgroup)
    if output is not None and output.exists() and not force:
        raise OutputError(f"{output}: already exists; use --force to overwrite it or choose another -o")
    options = recorder.RecordOptions(component=component, duration_s=duration)
    on_status = recorder.print_status if sys.stderr.isatty() else None
    try:
        result = recorder.record(target, options, on_status)
    finally:
        if on_status:
            sys.stderr.write("\r\033[K")
    path = output or Path(recorder.default_trace_name(result.trace.run.component))
    try:
        result.trace.save(path, overwrite=force)
    except OutputError as error:
        rescue = Path(tempfile.gettempdir()) / recorder.default_trace_name(result.trace.run.component)
        result.trace.save(rescue, overwrite=True)
        fail(f"{error}; the trace was saved to {rescue} instead")
    click.echo(f"profiler: {show.short_summary(result.trace)}", err=True)
    click.echo(f"profiler: trace saved to {path}", err=True)
    sys.exit(result.exit_status)


@main.command("show")
@click.argument("traces", nargs=-1, required=True, type=click.Path(path_type=Path))
@one_line_errors
def show_command(traces: tuple[Path, ...]) -> None:
    """Print a readable summary of each TRACE: process tree, syscalls, capabilities, families."""
    loaded = [(str(path), trace.load(path)) for path in traces]
    click.echo(show.render_summaries(loaded), nl=False)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the trace file format."""
    click.echo(json.dumps(trace.json_schema(), indent=2))


if __name__ == "__main__":
    main()
