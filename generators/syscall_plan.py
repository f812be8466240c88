"""Which syscalls a generated policy allows, and which it refuses with ENOSYS, for every format alike.

The traces say what the workload called; a policy that allows exactly that breaks in two known ways on
other hosts, so portability (on by default) adds:
- syscalls the vDSO usually answers in user space, which become real syscalls where the clocksource has
  no vDSO (common in VMs): the trace cannot have seen them;
- syscalls that never return (exit, exit_group, rt_sigreturn), which a filter must never refuse;
- for syscalls the C library probes and falls back from when the kernel lacks them, ENOSYS instead of
  EPERM when they are unseen: a newer libc then degrades to the old call instead of failing.
"""

from dataclasses import dataclass

from generators.profile import Profile
from profiler import syscalls

# Answered by the vDSO on x86_64 and aarch64 when the clocksource allows (vdso(7)).
VDSO_SYSCALLS = ("clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu")
NEVER_RETURN = ("exit", "exit_group", "rt_sigreturn")
# Newer syscalls that glibc (clone3 2.34, faccessat2 2.33, close_range 2.34, fchmodat2 2.39), coreutils
# (statx, copy_file_range), Go (pidfd_open) or systemd (openat2) try first and replace when the kernel
# answers ENOSYS, but not when it answers EPERM.
LIBC_PROBED = (
    "clone3",
    "close_range",
    "copy_file_range",
    "epoll_pwait2",
    "faccessat2",
    "fchmodat2",
    "openat2",
    "pidfd_open",
    "pidfd_send_signal",
    "statx",
)


@dataclass(frozen=True, slots=True)
class SyscallPlan:
    allowed: tuple[str, ...]  # sorted: what was seen, plus the additions
    added: tuple[tuple[str, str], ...]  # (name, why) of what is allowed though unseen, sorted
    enosys: tuple[str, ...]  # unseen syscalls refused with ENOSYS rather than the default errno
    regardless: frozenset[str] = frozenset()  # allowed whatever the traces say: never uncertain


def plan_syscalls(profile: Profile, portability: bool) -> SyscallPlan:
    """The syscall part of a policy for the profile's native ABI."""
    seen = profile.syscall_names()

    def unseen_on_abi(names: tuple[str, ...]) -> list[str]:
        return [name for name in names if name not in seen and syscalls.syscall_number(profile.native_abi, name)]

    added = [(name, "never returns, so a filter must not refuse it") for name in unseen_on_abi(NEVER_RETURN)]
    enosys: list[str] = []
    regardless = set(NEVER_RETURN)
    if portability:
        added += [(name, "answered by the vDSO where the clocksource allows") for name in unseen_on_abi(VDSO_SYSCALLS)]
        enosys = unseen_on_abi(LIBC_PROBED)
        regardless.update(VDSO_SYSCALLS)
    return SyscallPlan(
        allowed=tuple(sorted(seen | {name for name, _ in added})),
        added=tuple(sorted(added)),
        enosys=tuple(sorted(enosys)),
        regardless=frozenset(regardless),
    )
