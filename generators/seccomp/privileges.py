"""What a container should be granted: capabilities to add back after dropping all, and no-new-privileges.

container_privileges(profile, min_runs)   the docker and k8s formats both write it, each in its own syntax
"""

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from generators.evidence import describe_evidence
from generators.policy_names import check_profile_names
from generators.profile import CapabilityPath, CapabilityUse, Profile, merge_evidence
from generators.sandbox import TEMPORARY_TREES, is_under, plan_sandbox, profile_facts
from profiler.escaping import visible
from profiler.trace import CapabilitySource, CheckClass

# What no_new_privileges changes for the seccomp profile, whichever format sets it.
SECCOMP_AND_NO_NEW_PRIVILEGES = (
    "runc and crun then load the seccomp filter just before the exec; without it they load the filter before "
    "dropping privileges and make more calls under it (capset, setgroups, prctl...), which the OCI profile allows "
    "as the runtime's either way unless generated with --runtime none"
)


@dataclass(frozen=True, slots=True)
class ContainerFilesystem:
    """A read-only root file system, and what must stay writable in it: the paths systemd's ReadWritePaths= and
    StateDirectory= would open (a volume each), and the temporary directories the runs used as their own."""

    writable: tuple[tuple[str, str], ...]  # (path, why), each a directory or file to mount writable
    tmpfs: tuple[str, ...]  # /tmp, /var/tmp: an empty tmpfs each


@dataclass(frozen=True, slots=True)
class ContainerPrivileges:
    """What a container runtime should grant: None for capabilities when the traces cannot tell."""

    capabilities: tuple[tuple[str, str], ...] | None  # (name without CAP_, as Docker and Kubernetes write it, why)
    no_new_privileges: bool
    notes: tuple[str, ...]  # what a reader should know: each a sentence
    filesystem: ContainerFilesystem | None = None  # None where the traces did not record files


def container_filesystem(profile: Profile, min_runs: int) -> ContainerFilesystem | None:
    """The read-only root and its writable paths, where every run recorded files; a path no line can hold safely
    (not printable) is covered by the directory above it."""
    if profile.sandbox is None:
        return None
    plan = plan_sandbox(profile.sandbox, profile_facts(profile, min_runs), {})
    writable = []
    for root in plan.writable:
        # A volume is a directory: one mounted on a file fails the container's start ("not a directory").
        path = root.path if root.directory else posixpath.dirname(root.path)
        while not path.isprintable():
            path = posixpath.dirname(path)
        written = sorted({write.path for write in root.writes})
        why = f"written: {', '.join(written[:3])}" + (f" (+{len(written) - 3} more)" if len(written) > 3 else "")
        why += "" if root.directory else f"; {root.path} is a file, mounted with its directory"
        writable.append((path, visible(f"{why}: {describe_evidence(root.evidence, profile, min_runs)}")))
    private = plan.value("PrivateTmp") == "yes"
    used = {tree for tree in TEMPORARY_TREES for need in profile.sandbox.files if is_under(need.path, tree)}
    return ContainerFilesystem(tuple(writable), tuple(sorted(used)) if private else ())


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
        return ContainerPrivileges(None, True, tuple(notes), container_filesystem(profile, min_runs))
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
    return ContainerPrivileges(
        added, no_new_privileges, tuple(visible(note) for note in notes), container_filesystem(profile, min_runs)
    )
