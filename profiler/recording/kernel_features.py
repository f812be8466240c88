"""What the running kernel offers the tracer, found by probing tracefs, BTF and /proc, never by version."""

import os
import platform
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from profiler.errors import TracingError
from profiler.trace import CapabilitySource

TRACEFS_MOUNTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))

# Tracepoints the recorder cannot work without, as category/event.
REQUIRED_TRACEPOINTS = (
    "raw_syscalls/sys_enter",
    "task/task_newtask",
    "sched/sched_process_exec",
    "sched/sched_process_exit",
    "signal/signal_generate",
    "signal/signal_deliver",
)
CAPABILITY_TRACEPOINT = "capability/cap_capable"


class CapabilityProbe(StrEnum):
    """Which probe records capability checks: the best available, or one forced (tests use this)."""

    AUTO = "auto"
    TRACEPOINT = "tracepoint"
    KPROBE = "kprobe"


@dataclass(frozen=True, slots=True)
class KernelFeatures:
    tracefs: Path
    capability_source: CapabilitySource
    has_group_dead: bool  # sched_process_exit says when the last thread of a process exits
    has_btf: bool  # the syscall in progress can be read at a capability check
    init_user_ns: int | None  # address of init_user_ns, to tell checks against the initial namespace
    pid_max: int
    architecture: str
    # Syscalls with a syscalls:sys_exit_<name> tracepoint (some kernels have none for init_module, umount2...)
    syscall_exits: frozenset[str] = frozenset()


def require_root() -> None:
    if os.geteuid() != 0:
        raise TracingError("recording needs root (it loads eBPF programs): run profiler record with sudo")


def tracefs() -> Path:
    """The mounted tracefs, mounting it at /sys/kernel/tracing where nothing is mounted yet."""
    for mount in TRACEFS_MOUNTS:
        if (mount / "events").is_dir():
            return mount
    mount = TRACEFS_MOUNTS[0]
    result = subprocess.run(["mount", "-t", "tracefs", "nodev", str(mount)], capture_output=True, text=True)
    if result.returncode != 0 or not (mount / "events").is_dir():
        raise TracingError(
            f"tracefs is not mounted and mounting it at {mount} failed ({result.stderr.strip() or 'no events'}): "
            "this kernel needs CONFIG_FTRACE; mount it with: mount -t tracefs nodev /sys/kernel/tracing"
        )
    return mount


def kernel_headers() -> Path:
    """The kernel build directory BCC compiles against."""
    release = platform.release()
    build = Path("/lib/modules") / release / "build"
    if not (build / "include").is_dir():
        raise TracingError(
            f"no kernel headers at {build}: run `make install` (it installs Debian's linux-headers and links "
            f"them where none match), or install linux-headers-{release}"
        )
    return build


def _init_user_ns() -> int | None:
    """The address of init_user_ns, where /proc/kallsyms lists data symbols (CONFIG_KALLSYMS_ALL)."""
    try:
        symbols = Path("/proc/kallsyms").read_text()
    except OSError:
        return None
    end = symbols.find(" init_user_ns\n")
    if end < 0:
        return None
    address = symbols[symbols.rfind("\n", 0, end) + 1 :].split(" ", 1)[0]
    return int(address, 16) or None  # zero: addresses hidden by kptr_restrict


def probe(capability_probe: CapabilityProbe = CapabilityProbe.AUTO) -> KernelFeatures:
    """Check that recording can work here and find the optional features; raises TracingError if it cannot."""
    require_root()
    events = tracefs() / "events"
    missing = [tracepoint for tracepoint in REQUIRED_TRACEPOINTS if not (events / tracepoint).is_dir()]
    if missing:
        raise TracingError(
            f"this kernel lacks the tracepoints {', '.join(missing)} (CONFIG_FTRACE_SYSCALLS?): "
            "profiler cannot record here"
        )
    kernel_headers()
    has_tracepoint = (events / CAPABILITY_TRACEPOINT).is_dir()
    has_kprobes = (events.parent / "kprobe_events").exists()
    if capability_probe is CapabilityProbe.TRACEPOINT and not has_tracepoint:
        raise TracingError("this kernel has no capability:cap_capable tracepoint (it came in Linux 6.14)")
    if capability_probe is CapabilityProbe.KPROBE and not has_kprobes:
        raise TracingError("this kernel has no kprobes (CONFIG_KPROBES is off): use the cap_capable tracepoint")
    if capability_probe is CapabilityProbe.KPROBE or (not has_tracepoint and has_kprobes):
        source = CapabilitySource.KPROBE
    elif has_tracepoint:
        source = CapabilitySource.TRACEPOINT
    else:
        source = CapabilitySource.NONE
    exit_format = (events / "sched/sched_process_exit/format").read_text()
    return KernelFeatures(
        tracefs=events.parent,
        capability_source=source,
        has_group_dead="group_dead" in exit_format,
        has_btf=Path("/sys/kernel/btf/vmlinux").exists(),
        init_user_ns=_init_user_ns(),
        pid_max=int(Path("/proc/sys/kernel/pid_max").read_text()),
        architecture=platform.machine(),
        syscall_exits=frozenset(
            entry.name.removeprefix("sys_exit_") for entry in (events / "syscalls").glob("sys_exit_*")
        ),
    )
