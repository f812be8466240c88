"""Reading the kernel call path of a capability check: is it a noaudit probe, and which function asked?

The capability:cap_capable tracepoint does not carry the CAP_OPT_NOAUDIT option, so a check such as the
CAP_SYS_ADMIN that security_vm_enough_memory_mm makes on every mmap of a root process looks like a real
use. The kernel asks noaudit through a handful of functions; finding one on the stack tells them apart.
"""

from collections.abc import Sequence

from profiler.trace import CheckClass

# Functions that check a capability with CAP_OPT_NOAUDIT (Linux 6.x: kernel/capability.c,
# security/commoncap.c, mm/util.c, kernel/kallsyms.c, lib/vsprintf.c); any *_noaudit caller is one too.
NOAUDIT_FUNCTIONS: frozenset[str] = frozenset(
    {
        "security_vm_enough_memory_mm",
        "__vm_enough_memory",
        "cap_vm_enough_memory",
        "kallsyms_show_value",
        "restricted_pointer",
    }
)

# ptrace_may_access checks noaudit when its caller passes PTRACE_MODE_NOAUDIT, as reading
# /proc/PID/stat does (do_task_stat): the caller, not the function, decides.
NOAUDIT_PTRACE_CALLERS: frozenset[str] = frozenset({"do_task_stat"})
PTRACE_ACCESS_FUNCTIONS: frozenset[str] = frozenset({"ptrace_may_access", "__ptrace_may_access", "ptrace_has_cap"})

# These check against &init_user_ns itself, whatever namespace the process is in: where /proc/kallsyms
# hides data symbols (no CONFIG_KALLSYMS_ALL), the namespace they name tells which one is initial.
INITIAL_NAMESPACE_CHECKERS: frozenset[str] = frozenset(
    {
        "security_vm_enough_memory_mm",
        "__vm_enough_memory",
        "cap_vm_enough_memory",
    }
)

# The capability machinery itself: the function that asked is the first frame outside it.
CAPABILITY_MACHINERY: frozenset[str] = frozenset(
    {
        "cap_capable",
        "security_capable",
        "ns_capable_common",
        "ns_capable",
        "ns_capable_noaudit",
        "ns_capable_setid",
        "capable",
        "has_ns_capability",
        "has_capability",
        "has_ns_capability_noaudit",
        "has_capability_noaudit",
        "file_ns_capable",
        "capable_wrt_inode_uidgid",
        "privileged_wrt_inode_uidgid",
        "cap_vm_enough_memory",
        "sk_ns_capable",
        "sk_capable",
        "sk_net_capable",
        "netlink_ns_capable",
        "netlink_capable",
        "netlink_net_capable",
        "bpf_capable",
        "perfmon_capable",
        "checkpoint_restore_ns_capable",
        "ptrace_has_cap",
        "bpf_token_capable",
    }
)

# Frames of the eBPF program and the tracepoint that ran it, on top of a stack taken from a raw tracepoint
# (__traceiter_NAME where several programs are attached to one tracepoint: two recordings at once).
TRACER_FRAME_PREFIXES = (
    "bpf_prog_",
    "bpf_trace_run",
    "__bpf_trace_",
    "perf_trace_",
    "trace_call_bpf",
    "__traceiter_",
)

# Frames of the syscall entry, the same on every stack, dropped when a stack is stored.
ENTRY_FRAMES: frozenset[str] = frozenset(
    {
        "do_syscall_64",
        "entry_SYSCALL_64_after_hwframe",
        "entry_SYSCALL_64",
        "x64_sys_call",
        "do_int80_syscall_32",
        "do_fast_syscall_32",
        "entry_SYSENTER_compat_after_hwframe",
        "entry_SYSCALL_compat_after_hwframe",
        "el0_svc",
        "el0t_64_sync_handler",
        "el0t_64_sync",
        "el0_svc_common",
        "do_el0_svc",
        "invoke_syscall",
    }
)


def is_noaudit_path(frames: Sequence[str]) -> bool:
    """Whether the call path shows a check made with CAP_OPT_NOAUDIT."""
    names = set(frames)
    if names & NOAUDIT_FUNCTIONS or any(frame.endswith("_noaudit") for frame in frames):
        return True
    return bool(names & PTRACE_ACCESS_FUNCTIONS and names & NOAUDIT_PTRACE_CALLERS)


def classify(granted: bool, frames: Sequence[str] | None, noaudit: bool | None) -> CheckClass:
    """The class of a check from its result and what is known of its options.

    noaudit is the option itself where the probe sees it (kprobe); otherwise (None) the call path decides.
    With neither, the check counts as a real one: an unneeded capability in a policy is safer than a
    service that breaks.
    """
    if noaudit is None:
        noaudit = frames is not None and is_noaudit_path(frames)
    if noaudit:
        return CheckClass.PROBE
    return CheckClass.NEEDED if granted else CheckClass.DENIED


def asks_about_initial_namespace(frames: Sequence[str]) -> bool:
    """Whether the check on this path is always made against the initial user namespace."""
    return not INITIAL_NAMESPACE_CHECKERS.isdisjoint(frames)


def asking_function(frames: Sequence[str]) -> str | None:
    """The first function on the path outside the capability machinery: setattr_prepare for a chown."""
    return next((frame for frame in frames if frame not in CAPABILITY_MACHINERY), None)


def clean_frames(symbols: Sequence[str]) -> tuple[str, ...]:
    """Frames as stored in a trace: names without offsets, without the tracer's own frames on top
    (bpf_prog_<tag>_..., bpf_trace_run5, which differ between loads) and the syscall entry frames."""
    names = [symbol.split("+", 1)[0] for symbol in symbols]
    while names and names[0].startswith(TRACER_FRAME_PREFIXES):
        names.pop(0)
    return tuple(name for name in names if name not in ENTRY_FRAMES)
