"""Classifying capability checks by their kernel call path, on paths seen on Linux 6.18."""

import pytest

from profiler.capability_paths import asking_function, asks_about_initial_namespace, classify, clean_frames
from profiler.trace import CheckClass

CHOWN = (
    "cap_capable",
    "security_capable",
    "capable_wrt_inode_uidgid",
    "setattr_prepare",
    "ext4_setattr",
    "notify_change",
    "chown_common",
    "do_fchownat",
    "__x64_sys_fchownat",
)
MMAP = ("cap_capable", "security_vm_enough_memory_mm", "__mmap_region", "do_mmap", "vm_mmap_pgoff")
SECCOMP = ("cap_capable", "security_capable", "ns_capable_noaudit", "seccomp_prepare_filter", "do_seccomp")
PS = (
    "cap_capable",
    "security_capable",
    "ptrace_has_cap",
    "__ptrace_may_access",
    "ptrace_may_access",
    "do_task_stat",
    "proc_single_show",
)
GDB = ("cap_capable", "security_capable", "ptrace_has_cap", "__ptrace_may_access", "ptrace_attach")


@pytest.mark.parametrize(
    ("frames", "granted", "expected"),
    [
        (CHOWN, True, CheckClass.NEEDED),
        (CHOWN, False, CheckClass.DENIED),
        (MMAP, True, CheckClass.PROBE),
        (MMAP, False, CheckClass.PROBE),
        (SECCOMP, False, CheckClass.PROBE),
        (PS, False, CheckClass.PROBE),
        (GDB, True, CheckClass.NEEDED),
        (None, True, CheckClass.NEEDED),
    ],
    ids=["chown", "chown-refused", "mmap", "mmap-unprivileged", "seccomp", "ps", "ptrace-attach", "no-stack"],
)
def test_the_call_path_decides_the_class(frames: tuple[str, ...] | None, granted: bool, expected: CheckClass) -> None:
    assert classify(granted, frames, None) is expected


def test_the_options_decide_where_the_probe_sees_them() -> None:
    assert classify(True, CHOWN, noaudit=True) is CheckClass.PROBE
    assert classify(True, MMAP, noaudit=False) is CheckClass.NEEDED


def test_the_asking_function_is_the_first_outside_the_capability_machinery() -> None:
    assert asking_function(CHOWN) == "setattr_prepare"
    assert asking_function(MMAP) == "security_vm_enough_memory_mm"
    assert asking_function(("cap_capable", "capable")) is None


def test_stored_frames_lose_offsets_and_syscall_entry() -> None:
    symbols = [
        "bpf_prog_83b3cd2b2beb4f0c_raw_tracepoint__cap_capable+0x2f1",
        "bpf_trace_run5+0x97",
        "cap_capable+0x83",
        "setattr_prepare+0x115",
        "do_syscall_64+0x71",
        "entry_SYSCALL_64_after_hwframe+0x76",
    ]
    assert clean_frames(symbols) == ("cap_capable", "setattr_prepare")


def test_the_tracepoint_iterator_of_several_programs_is_a_tracer_frame() -> None:
    # Seen on this kernel when two programs (two recordings) are attached to cap_capable at once.
    symbols = ["bpf_prog_1_cap_capable+0x10", "bpf_trace_run5+0x97", "__traceiter_cap_capable+0x3c", "cap_capable"]
    assert clean_frames([*symbols, "packet_create+0x5d"]) == ("cap_capable", "packet_create")


def test_memory_accounting_always_names_the_initial_namespace() -> None:
    assert asks_about_initial_namespace(MMAP) and not asks_about_initial_namespace(CHOWN)
