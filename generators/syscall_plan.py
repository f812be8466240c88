"""The calls a workload makes without its program asking, stated once: every format, explain, diff and check read them.

A policy that allows exactly what the traces saw still breaks in known ways, where it is deployed or on other
hosts, that the traces cannot show. Each Rule names its syscalls, says why in one sentence, cites the source it
rests on, says when it applies (Trigger) and what a policy without its syscalls does (Consequence):

    Consequence.NEED         the workload breaks where the policy is deployed: generate always adds the syscalls,
                             and check fails, naming the rule, on a policy that refuses them
    Consequence.PORTABILITY  the workload may break on another host or C library: generate adds them unless
                             --no-portability, and check warns

    Trigger.ALWAYS   whatever the runs did
    Trigger.SEEN     when the runs made one of the rule's `when` syscalls
    Trigger.ENOSYS   when the policy answers one of `when`, which the runs made, with ENOSYS: the program then
                     falls back to the rule's syscalls (systemd's RestrictNamespaces= answers clone3 so, as do
                     `generate --args` and Docker's default profile)
    Trigger.UNSEEN   the rule's own syscalls, where the runs did not make them: refused with ENOSYS, not EPERM

An OCI runtime also works in the container between loading its filter and the exec (generators/oci_runtimes.py):
its calls are a need of every profile that runtime loads.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from generators.oci_runtimes import RuntimeCall, runtime_calls, runtime_reason
from generators.profile import Profile
from profiler import syscalls


class Trigger(Enum):
    ALWAYS = "always"
    SEEN = "seen"
    ENOSYS = "enosys"
    UNSEEN = "unseen"


class Consequence(StrEnum):
    NEED = "need"
    PORTABILITY = "portability"


@dataclass(frozen=True, slots=True)
class Rule:
    """Syscalls a policy must allow (or, for Trigger.UNSEEN, answer with ENOSYS) though the program did not ask."""

    syscalls: tuple[str, ...]
    why: str  # one sentence, for the comment beside each syscall
    source: str  # what it rests on: kernel, C library or consumer source
    trigger: Trigger
    consequence: Consequence
    when: tuple[str, ...] = ()  # the syscalls of Trigger.SEEN and Trigger.ENOSYS


# Answered by the vDSO on x86_64 and aarch64 when the clocksource allows (vdso(7)).
VDSO_SYSCALLS = ("clock_gettime", "clock_getres", "gettimeofday", "time", "getcpu")
NEVER_RETURN = ("exit", "exit_group", "rt_sigreturn")
# Syscalls that sleep until a time and, interrupted by a stop, set a restart block instead of failing.
RESTARTABLE_SLEEPS = ("clock_nanosleep", "clock_nanosleep_time64", "futex", "futex_time64", "nanosleep", "poll")
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

RULES: tuple[Rule, ...] = (
    Rule(
        ("exit_group",),
        "never returns, so a filter must not refuse it: every process ends with it",
        "glibc 2.36 _exit (sysdeps/unix/sysv/linux/_exit.c) loops on exit_group and exit, then crashes, when they fail",
        Trigger.ALWAYS,
        Consequence.NEED,
    ),
    Rule(
        ("exit",),
        "never returns, so a filter must not refuse it: every thread ends with it",
        "glibc 2.36 start_thread (nptl/pthread_create.c) loops on exit when it fails: the thread spins forever",
        Trigger.SEEN,
        Consequence.NEED,
        ("clone", "clone3"),
    ),
    Rule(
        ("rt_sigreturn",),
        "never returns, so a filter must not refuse it: a signal handler returns through it",
        "the kernel's signal frame (arch/x86/kernel/signal.c); the C library's restorer calls rt_sigreturn",
        Trigger.SEEN,
        Consequence.NEED,
        ("rt_sigaction",),
    ),
    Rule(
        NEVER_RETURN,
        "never returns, so a filter must not refuse it",
        "exit ends a thread, exit_group a process; rt_sigreturn returns from a signal handler",
        Trigger.ALWAYS,
        Consequence.PORTABILITY,
    ),
    Rule(
        ("restart_syscall",),
        "a process stopped and continued (SIGSTOP and SIGCONT, docker pause, a debugger) in a timed sleep resumes "
        "it through restart_syscall",
        "kernel set_restart_fn: hrtimer_nanosleep (kernel/time/hrtimer.c), posix_cpu_nsleep, alarm_timer_nsleep, "
        "futex_wait with a timeout (kernel/futex/waitwake.c), do_restart_poll (fs/select.c)",
        Trigger.SEEN,
        Consequence.NEED,
        RESTARTABLE_SLEEPS,
    ),
    Rule(
        ("clone",),
        "the C library falls back to clone when clone3 answers ENOSYS",
        "glibc 2.36 __clone_internal (sysdeps/unix/sysv/linux/clone-internal.c), used by pthread_create and "
        "posix_spawn",
        Trigger.ENOSYS,
        Consequence.NEED,
        ("clone3",),
    ),
    Rule(
        ("faccessat",),
        "the C library falls back to faccessat when faccessat2 answers ENOSYS",
        "glibc 2.36 faccessat (sysdeps/unix/sysv/linux/faccessat.c)",
        Trigger.ENOSYS,
        Consequence.NEED,
        ("faccessat2",),
    ),
    Rule(
        VDSO_SYSCALLS,
        "answered by the vDSO where the clocksource allows",
        "vdso(7): a real syscall where the clocksource has no vDSO support, common in VMs",
        Trigger.ALWAYS,
        Consequence.PORTABILITY,
    ),
    Rule(
        LIBC_PROBED,
        "the C library tries it first and falls back to an older call only on ENOSYS",
        "glibc 2.36 (clone3, close_range, faccessat2), coreutils (statx, copy_file_range), Go (pidfd_open), "
        "systemd (openat2)",
        Trigger.UNSEEN,
        Consequence.PORTABILITY,
    ),
)


# Syscalls a program falls back from when a policy answers them with ENOSYS: answered so, they are not refused,
# and the fallback is what the policy must allow.
FALLS_BACK = frozenset(name for rule in RULES if rule.trigger is Trigger.ENOSYS for name in rule.when)


@dataclass(frozen=True, slots=True)
class Addition:
    """A syscall allowed though the runs did not make it, and the rule (or runtime) that asks for it."""

    name: str
    why: str
    consequence: Consequence
    because: tuple[str, ...] = ()  # the syscalls the runs made that triggered it
    runtime: str | None = None  # the OCI runtime that calls it, for the runtime's calls


@dataclass(frozen=True, slots=True)
class SyscallPlan:
    allowed: tuple[str, ...]  # sorted: what was seen, plus the additions
    additions: tuple[Addition, ...]  # what is allowed though unseen, sorted by name
    enosys: tuple[str, ...]  # unseen syscalls refused with ENOSYS rather than the default errno
    regardless: frozenset[str] = frozenset()  # allowed whatever the traces say: never uncertain
    runtime: tuple[tuple[str, str], ...] = ()  # (name, why) of every call the runtimes make, seen or not

    @property
    def added(self) -> tuple[tuple[str, str], ...]:
        """(name, why) of each syscall allowed though unseen."""
        return tuple((each.name, each.why) for each in self.additions)

    def needs(self) -> tuple[Addition, ...]:
        return tuple(each for each in self.additions if each.consequence is Consequence.NEED)


def _triggered_by(
    rule: Rule, seen: frozenset[str], answered_enosys: frozenset[str], portability: bool
) -> tuple[str, ...] | None:
    """The syscalls the runs made that trigger the rule (empty where it needs none), or None when it does not apply."""
    if rule.consequence is Consequence.PORTABILITY and not portability:
        return None
    match rule.trigger:
        case Trigger.ALWAYS | Trigger.UNSEEN:
            return ()
        case Trigger.SEEN:
            made = tuple(name for name in rule.when if name in seen)
        case Trigger.ENOSYS:
            made = tuple(name for name in rule.when if name in seen and name in answered_enosys)
    return made or None


def plan_syscalls(
    profile: Profile,
    portability: bool,
    *,
    answered_enosys: Iterable[str] = (),
    runtimes: tuple[str, ...] = (),
) -> SyscallPlan:
    """The syscall part of a policy for the profile's native ABI.

    answered_enosys: the syscalls the policy answers with ENOSYS whatever its allow-list says (systemd's
    RestrictNamespaces= answers clone3 so), which trigger the fallbacks of Trigger.ENOSYS rules.
    runtimes: the OCI runtimes that load the policy, whose own calls it must allow.
    """
    seen = profile.syscall_names()
    refused = frozenset(answered_enosys)

    def on_abi(names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in seen and syscalls.syscall_number(profile.native_abi, name)]

    additions: dict[str, Addition] = {}
    enosys: list[str] = []
    regardless: set[str] = set()
    for rule in RULES:
        because = _triggered_by(rule, seen, refused, portability)
        if because is None:
            continue
        if rule.trigger is Trigger.UNSEEN:
            enosys += on_abi(rule.syscalls)
            continue
        if rule.trigger is Trigger.ALWAYS or rule.consequence is Consequence.NEED:
            regardless.update(rule.syscalls)
        for name in on_abi(rule.syscalls):
            additions.setdefault(name, Addition(name, rule.why, rule.consequence, because))
    by_syscall: dict[str, list[RuntimeCall]] = {}
    for call in runtime_calls(runtimes):
        by_syscall.setdefault(call.syscall, []).append(call)
    runtime_why = {name: runtime_reason(calls) for name, calls in sorted(by_syscall.items())}
    regardless.update(runtime_why)
    for name in on_abi(runtime_why):
        runtime = ", ".join(call.runtime for call in by_syscall[name])
        additions.setdefault(name, Addition(name, runtime_why[name], Consequence.NEED, runtime=runtime))
    return SyscallPlan(
        allowed=tuple(sorted(seen | set(additions))),
        additions=tuple(additions[name] for name in sorted(additions)),
        enosys=tuple(sorted(set(enosys) - set(additions))),
        regardless=frozenset(regardless),
        runtime=tuple(runtime_why.items()),
    )
