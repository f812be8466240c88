"""`profiler run --audit`: the command started as enforcement starts it (its user, its namespaces and mounts) but
with nothing the policy's filters refuse (no seccomp filter, the whole bounding set, no no_new_privs), under the
recorder, whose trace the pipeline compares with the policy; the paths its mounts and its user refused are
watched as in an enforced run.
"""

import dataclasses
from dataclasses import dataclass

from profiler.enforcement.confinement import ALL_CAPABILITIES, Capabilities, Confinement, SeccompRules
from profiler.enforcement.launcher import Command, load_watch, start_unfiltered
from profiler.enforcement.refusals import ConnectRefusal, PathRefusal, connect_refusals, path_refusals
from profiler.recording import session
from profiler.recording.command import Child
from profiler.recording.targets import CommandTarget, User
from profiler.recording.terminal_relay import ChildTerminal


@dataclass(frozen=True, slots=True)
class Audited:
    recording: session.Recording
    path_refusals: tuple[PathRefusal, ...]  # refused in the audited run too: an audit applies the mounts
    connect_refusals: tuple[ConnectRefusal, ...]  # and the private network
    unwatched: str | None  # why paths were not watched
    uncounted: int  # refusals the watch saw and could not keep: its table was full


def unfiltered(confinement: Confinement) -> Confinement:
    """What an audit applies of a confinement: its user (with its ambient capabilities), namespaces and mounts."""
    capabilities = Capabilities(ALL_CAPABILITIES, confinement.capabilities.ambient)
    return dataclasses.replace(confinement, capabilities=capabilities, no_new_privileges=False, seccomp=SeccompRules())


def audit(confinement: Confinement, command: Command, user: User | None, *, watch_refusals: bool = True) -> Audited:
    """Record the command run as the confinement's user, in its namespaces and mounts, unfiltered."""
    applied = unfiltered(confinement)
    watch, unwatched = load_watch() if watch_refusals else (None, None)

    def spawn(terminal: ChildTerminal | None, environment: dict[str, str]) -> Child:
        started = dataclasses.replace(command, environment=environment)
        return start_unfiltered(applied, started, terminal, watch)

    try:
        target = CommandTarget(command.argv, user, command.program)
        recording = session.record(target, session.RecordOptions(component="audited"), spawn=spawn)
        paths = path_refusals(confinement, watch.failed_path_calls()) if watch is not None else ()
        connects = connect_refusals(confinement, watch.unreachable_connects()) if watch is not None else ()
        uncounted = watch.dropped() if watch is not None else 0
    finally:
        if watch is not None:
            watch.close()
    return Audited(recording, paths, connects, unwatched, uncounted)
