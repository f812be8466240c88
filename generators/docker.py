"""The docker format: the `docker run` flags that confine a container to a profile, as a small sh script.

container_privileges(profile, min_runs)   the capabilities to add back after dropping all, and whether
                                          no-new-privileges can be set (Kubernetes uses them too)
DockerFormat.render                       `exec docker run FLAGS "$@"`, each flag explained in a comment
"""

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from generators.evidence_text import describe_evidence
from generators.interface import PolicyFormat, Renderer, RenderOptions
from generators.policy_names import check_profile_names
from generators.profile import CapabilityPath, CapabilityUse, Profile, merge_evidence
from profiler.errors import ProfilerError
from profiler.escaping import visible
from profiler.trace import CapabilitySource, CheckClass

# What no_new_privileges changes for the seccomp profile, whichever format sets it.
SECCOMP_AND_NO_NEW_PRIVILEGES = (
    "runc and crun then load the seccomp filter just before the exec; without it they load the filter before "
    "dropping privileges and make more calls under it (capset, setgroups, prctl...), which the OCI profile allows "
    "as the runtime's either way unless generated with --runtime none"
)


@dataclass(frozen=True, slots=True)
class ContainerPrivileges:
    """What a container runtime should grant: None for capabilities when the traces cannot tell."""

    capabilities: tuple[tuple[str, str], ...] | None  # (name without CAP_, as Docker and Kubernetes write it, why)
    no_new_privileges: bool
    notes: tuple[str, ...]  # what a reader should know: each a sentence


def _where(paths: Iterable[CapabilityPath]) -> str:
    """Where a capability was checked: the distinct syscalls and asking functions, such as "fchownat via
    setattr_prepare"."""
    places = []
    for path in paths:
        place = (path.syscall or "outside a syscall") + (f" via {path.via}" if path.via else "")
        if place not in places:
            places.append(place)
    return ", ".join(places)


def _use_text(use: CapabilityUse, classification: CheckClass, profile: Profile, min_runs: int) -> str:
    paths = [path for path in use.paths if path.classification is classification]
    evidence = merge_evidence(path.evidence for path in paths)
    return f"in {_where(paths)}: {describe_evidence(evidence, profile, min_runs)}"


def container_privileges(profile: Profile, min_runs: int) -> ContainerPrivileges:
    """Drop every capability, add back those the traces needed; no-new-privileges unless it would take them.

    Reasons and notes are escaped visibly (comments hold no control character); NotANameError where the profile
    holds a name that is not one."""
    check_profile_names(profile)
    notes: list[str] = []
    if not profile.capabilities_known:
        blind = [run.source for run in profile.runs if run.capability_source is CapabilitySource.NONE]
        notes.append(
            f"Capabilities are left as the runtime's defaults: the kernel could not report capability checks in "
            f"{', '.join(blind)}. Record on a kernel with the capability tracepoint or kprobes to learn them."
        )
        return ContainerPrivileges(None, True, tuple(notes))
    needed = [use for use in profile.capabilities if use.needed]
    added = tuple(
        (
            use.name.removeprefix("CAP_"),
            visible(
                _use_text(
                    CapabilityUse(use.name, tuple(path for path in use.paths if path.initial_user_ns)),
                    CheckClass.NEEDED,
                    profile,
                    min_runs,
                )
            ),
        )
        for use in needed
    )
    for use in profile.capabilities:
        if use.needed_in_user_namespace_only:
            notes.append(
                f"{use.name} is not added: it was needed only inside a user namespace the workload created, where "
                f"the bounding set does not apply ({_use_text(use, CheckClass.NEEDED, profile, min_runs)})."
            )
    for name in profile.denied_capabilities():
        use = next(use for use in profile.capabilities if use.name == name)
        notes.append(
            f"{name} was attempted and refused in the traces, so it is not added (granting it would change what "
            f"the workload does): {_use_text(use, CheckClass.DENIED, profile, min_runs)}."
        )
    no_new_privileges = not (profile.recorded_unprivileged and needed)
    if not no_new_privileges:
        users = ", ".join(sorted({f"{run.user} (uid {run.uid})" for run in profile.runs}))
        notes.append(
            f"No-new-privileges is left off: the runs ran as {users} and still used "
            f"{', '.join(use.name for use in needed)}, which a non-root process holds only through a set-user-ID "
            "program, file capabilities or ambient capabilities. Docker and Kubernetes raise no ambient "
            "capabilities for a non-root user, and no-new-privileges stops the other two."
        )
    return ContainerPrivileges(added, no_new_privileges, tuple(visible(note) for note in notes))


def seccomp_file_name(component: str) -> str:
    """The default file of the OCI profile: the component's name made a plain file name (no path, no control)."""
    return (re.sub(r"[^A-Za-z0-9_.-]+", "-", component).strip("-.") or "profile") + ".seccomp.json"


class DockerFormat(Renderer):
    """Every flag is quoted for sh (shlex.quote) and every comment escaped visibly, so that nothing recorded
    (a capability name holding `$(...)`, a newline in a path) runs as a command when the script runs."""

    format = PolicyFormat.DOCKER

    def render(self, profile: Profile, options: RenderOptions) -> str:
        privileges = container_privileges(profile, options.min_runs)
        seccomp_file = options.seccomp_file or seccomp_file_name(profile.component)
        if not seccomp_file.isprintable():
            raise ProfilerError(
                f"the seccomp file '{visible(seccomp_file)}' holds characters that are not printable (or bytes that "
                "are not UTF-8): give a plain file name"
            )
        flags: list[tuple[str, str]] = []
        if privileges.capabilities is not None:
            flags.append(
                (
                    "--cap-drop=ALL",
                    "--cap-drop=ALL, then --cap-add for each capability the traces needed"
                    + ("" if privileges.capabilities else " (none)"),
                )
            )
            flags += [(f"--cap-add={name}", f"--cap-add={name}: {why}") for name, why in privileges.capabilities]
        if privileges.no_new_privileges:
            flags.append(
                (
                    "--security-opt=no-new-privileges",
                    "no-new-privileges: set-user-ID programs and file capabilities cannot raise privileges; "
                    + SECCOMP_AND_NO_NEW_PRIVILEGES,
                )
            )
        flags.append(
            (
                f"--security-opt=seccomp={seccomp_file}",
                f"seccomp={seccomp_file}: the OCI profile of `profiler generate --format oci`; docker reads it "
                "from this path when the container starts",
            )
        )
        runs = len(profile.runs)
        lines = ["#!/bin/sh"]
        if options.comments:
            sources = ", ".join(run.source for run in profile.runs)
            comments = [
                f"docker run flags for {profile.component}, generated by profiler from {runs} "
                f"run{'s' if runs != 1 else ''} ({sources}): give IMAGE and its arguments to this script",
                *(why for _, why in flags),
                *privileges.notes,
            ]
            lines += [f"# {visible(comment)}" for comment in comments]
        lines.append("exec docker run \\")
        lines += [f"  {shlex.quote(flag)} \\" for flag, _ in flags]
        lines.append('  "$@"')
        return "\n".join(lines) + "\n"
