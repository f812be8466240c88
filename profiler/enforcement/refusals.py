"""The refusals of a run that are not its seccomp filter's: capability checks the confinement failed, path calls
its mounts or its user failed, connections its private network had no route for, each named after the setting
that caused it. What the refusal watch saw and the policy did not cause (a check in a user namespace, a file
missing on the host too, a lookup that is only a question) is not a refusal.
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass

from profiler import abi, capability_paths
from profiler.enforcement import mounts
from profiler.enforcement.confinement import Confinement
from profiler.enforcement.supervisor import Refusal
from profiler.recording.refusal_watch import DeniedCapability, FailedPathCall, UnreachableConnect

_OPENS = frozenset({"open", "openat", "openat2"})
_LOOKUPS = frozenset(
    {"stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2", "readlink", "readlinkat"}
)
# What a call does to its path, where its name does not say it plainly.
_OPERATIONS = dict.fromkeys(("stat", "lstat", "newfstatat", "statx"), "stat of")
_OPERATIONS |= dict.fromkeys(("access", "faccessat", "faccessat2"), "access of")
_OPERATIONS |= dict.fromkeys(("execve", "execveat"), "exec of")
_OPERATIONS |= {"readlinkat": "readlink of", "mkdirat": "mkdir of", "unlinkat": "unlink of", "creat": "write to"}
_FILE_PERMISSIONS = frozenset({"CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH"})


@dataclass(frozen=True, slots=True)
class CapabilityRefusal:
    capability: str
    program: str
    count: int
    setting: str
    asked_by: str | None  # the kernel function that checked it: inet_create for a raw socket


@dataclass(frozen=True, slots=True)
class PathRefusal:
    operation: str  # write to, read of, exec of, mkdir of...
    path: str
    syscall: str
    program: str
    count: int
    errno: str
    setting: str


@dataclass(frozen=True, slots=True)
class ConnectRefusal:
    address: str
    program: str
    count: int
    setting: str


def connect_refusals(confinement: Confinement, unreachable: Iterable[UnreachableConnect]) -> tuple[ConnectRefusal, ...]:
    """The connections a private network refused: it has no route but its loopback's (ENETUNREACH)."""
    if not confinement.private_network:
        return ()  # the host's own network had no route: not the policy's doing
    return tuple(
        sorted(
            (ConnectRefusal(each.address, each.program, each.count, "PrivateNetwork=yes") for each in unreachable),
            key=lambda each: (-each.count, each.address, each.program),
        )
    )


def capability_refusals(confinement: Confinement, denied: Iterable[DeniedCapability]) -> tuple[CapabilityRefusal, ...]:
    counts: dict[tuple[str, str, str, str | None], int] = {}
    for check in denied:
        name = abi.capability_name(check.capability)
        if name is None or capability_paths.is_noaudit_path(check.frames):
            continue  # a noaudit check is a question, not a need: its refusal changes nothing
        if name in _FILE_PERMISSIONS and confinement.account is not None and confinement.account.uid != 0:
            continue  # a user asks to pass a file's permissions at each refusal of them: named as that path
        setting = confinement.capabilities.refused_by(name, confinement.account)
        if setting is not None:
            key = (name, check.program, setting, capability_paths.asking_function(check.frames))
            counts[key] = counts.get(key, 0) + check.count
    return tuple(
        CapabilityRefusal(name, program, count, setting, asked_by)
        for (name, program, setting, asked_by), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    )


def path_refusals(
    confinement: Confinement, failed: Iterable[FailedPathCall], seccomp_refusals: Iterable[Refusal] = ()
) -> tuple[PathRefusal, ...]:
    """The failed path calls the confinement caused; a call the filter refused itself is named there already."""
    answered = {(each.program, each.syscall, each.answer.errno) for each in seccomp_refusals}
    found = []
    for call in failed:
        if (call.program, call.syscall, call.errno) in answered:
            continue
        setting = _setting_of(confinement, call)
        if setting is not None:
            operation = _operation(call)
            found.append(PathRefusal(operation, call.path, call.syscall, call.program, call.count, call.errno, setting))
    return tuple(sorted(found, key=lambda each: (-each.count, each.path, each.operation, each.program)))


def _setting_of(confinement: Confinement, call: FailedPathCall) -> str | None:
    file_system, account = confinement.file_system, confinement.account
    on_host = os.path.lexists(call.path)  # profiler's side of the mounts is the host's
    if call.syscall in _LOOKUPS or call.errno == "ENOENT":
        # A lookup that fails is most often a question (a PATH search, a check before use), and a missing file
        # everyday: named only where a setting hid what the host has.
        return mounts.hidden_by(file_system, call.path) if on_host else None
    if call.errno == "EROFS":
        return mounts.read_only_by(file_system, call.path)
    hidden = mounts.hidden_by(file_system, call.path)
    if hidden is not None and (on_host or os.path.lexists(os.path.dirname(call.path))):
        return hidden  # a file to make where the host has its directory
    if account is not None and account.uid != 0:
        return f"User={account.name} (the file's permissions)"
    # Root is refused a file's permissions only without CAP_DAC_OVERRIDE: named there, as a capability.
    return None


def _operation(call: FailedPathCall) -> str:
    if call.syscall in _OPERATIONS:
        return _OPERATIONS[call.syscall]
    if call.syscall in _OPENS:
        if call.open_flags is None:
            return "open of"
        writes = call.open_flags & os.O_ACCMODE != os.O_RDONLY or call.open_flags & (os.O_CREAT | os.O_TRUNC)
        return "write to" if writes else "read of"
    return f"{call.syscall} of"
