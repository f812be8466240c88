"""How much attack surface an allowed but unused item leaves: the table that ranks excess, most dangerous first.

The ranks follow what the kernel lets a process do with an item, and the documented choices of the
confinement tools people already trust: systemd's @privileged, @module, @raw-io, @reboot, @swap, @mount,
@debug, @clock, @cpu-emulation and @setuid groups (`systemd-analyze syscall-filter`), the syscalls and
capabilities Docker's default profile refuses, and the capabilities known to lead to full root
(Spengler, "False Boundaries and Arbitrary Code Execution").

    CRITICAL  runs code in the kernel, replaces it, or reaches any memory, file or process: root-equivalent
    HIGH      changes what other processes see or are (mounts, namespaces, identities), or a large kernel
              surface with a record of privilege escalations
    MEDIUM    a narrower privilege, or network reach a compromised service could abuse
    LOW       everything else: ordinary syscalls, or a denial of service at worst

An entry says why in a few words; the report prints it beside each candidate. Items not in a table rank LOW.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from profiler import abi


class Danger(IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Rating:
    danger: Danger
    why: str


def _rate(danger: Danger, why: str, *names: str) -> dict[str, Rating]:
    return dict.fromkeys(names, Rating(danger, why))


SYSCALL_DANGER: Mapping[str, Rating] = {
    **_rate(Danger.CRITICAL, "loads code into the kernel", "init_module", "finit_module"),
    **_rate(Danger.CRITICAL, "loads a kernel to replace the running one", "kexec_load", "kexec_file_load"),
    **_rate(Danger.CRITICAL, "loads programs into the kernel", "bpf"),
    **_rate(Danger.CRITICAL, "reaches hardware I/O ports directly", "iopl", "ioperm"),
    **_rate(
        Danger.CRITICAL,
        "reads and writes the memory of other processes",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
    ),
    **_rate(Danger.CRITICAL, "opens files by handle, around path checks (the 'shocker' escape)", "open_by_handle_at"),
    **_rate(Danger.HIGH, "unloads kernel modules", "delete_module"),
    **_rate(Danger.HIGH, "reboots or halts the machine", "reboot"),
    **_rate(Danger.HIGH, "changes the machine's swap", "swapon", "swapoff"),
    **_rate(
        Danger.HIGH,
        "changes the mount tree: hides or replaces files",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "move_mount",
        "open_tree",
        "mount_setattr",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
    ),
    **_rate(Danger.HIGH, "creates or joins namespaces, which opens capability-checked kernel code", "unshare", "setns"),
    **_rate(Danger.HIGH, "takes a file descriptor from another process", "pidfd_getfd"),
    **_rate(Danger.HIGH, "stalls kernel accesses to user memory: a standard aid to exploit races", "userfaultfd"),
    **_rate(Danger.HIGH, "the kernel keyring: not namespaced, a record of bugs", "keyctl", "add_key", "request_key"),
    **_rate(
        Danger.HIGH,
        "io_uring: work seccomp never sees, a large kernel surface",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    ),
    **_rate(
        Danger.HIGH, "kernel performance events: a large surface that can leak kernel addresses", "perf_event_open"
    ),
    **_rate(Danger.HIGH, "reads or clears the kernel log", "syslog"),
    **_rate(Danger.MEDIUM, "changes the root directory", "chroot"),
    **_rate(
        Danger.MEDIUM,
        "sets the system clock",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
    ),
    **_rate(Danger.MEDIUM, "renames the host", "sethostname", "setdomainname"),
    **_rate(Danger.MEDIUM, "switches process accounting", "acct"),
    **_rate(Danger.MEDIUM, "manages disk quotas", "quotactl", "quotactl_fd"),
    **_rate(Danger.MEDIUM, "watches or blocks file access system-wide", "fanotify_init", "fanotify_mark"),
    **_rate(Danger.MEDIUM, "a profiling interface of old kernels", "lookup_dcookie"),
    **_rate(Danger.MEDIUM, "hangs up the terminal", "vhangup"),
    **_rate(Danger.MEDIUM, "compares kernel objects of other processes", "kcmp"),
    **_rate(Danger.MEDIUM, "acts on the memory of another process", "process_madvise"),
    **_rate(Danger.MEDIUM, "can switch off address-space randomisation", "personality"),
    **_rate(Danger.MEDIUM, "edits the x86 descriptor tables: rarely needed, historically buggy", "modify_ldt"),
    **_rate(Danger.MEDIUM, "changes the process's capabilities", "capset"),
    **_rate(
        Danger.MEDIUM,
        "changes the process's user or groups",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setfsuid",
        "setfsgid",
        "setgroups",
    ),
    **_rate(Danger.MEDIUM, "creates device nodes", "mknod", "mknodat"),
    **_rate(Danger.MEDIUM, "looks up file handles for open_by_handle_at", "name_to_handle_at"),
    **_rate(
        Danger.MEDIUM,
        "moves the memory of this or other processes between NUMA nodes",
        "mbind",
        "set_mempolicy",
        "move_pages",
        "migrate_pages",
    ),
}

CAPABILITY_DANGER: Mapping[str, Rating] = {
    **_rate(Danger.CRITICAL, "the catch-all administrator capability: equivalent to root", "CAP_SYS_ADMIN"),
    **_rate(Danger.CRITICAL, "loads kernel modules", "CAP_SYS_MODULE"),
    **_rate(Danger.CRITICAL, "raw device and I/O port access: reaches kernel memory", "CAP_SYS_RAWIO"),
    **_rate(Danger.CRITICAL, "traces any process and rewrites its memory", "CAP_SYS_PTRACE"),
    **_rate(Danger.CRITICAL, "loads BPF programs into the kernel", "CAP_BPF"),
    **_rate(Danger.CRITICAL, "reboots or loads a new kernel", "CAP_SYS_BOOT"),
    **_rate(Danger.CRITICAL, "reads any file, and opens files by handle outside its root", "CAP_DAC_READ_SEARCH"),
    **_rate(Danger.CRITICAL, "changes the LSM policy (AppArmor, SELinux, Smack)", "CAP_MAC_ADMIN"),
    **_rate(Danger.HIGH, "overrides the LSM policy", "CAP_MAC_OVERRIDE"),
    **_rate(Danger.HIGH, "bypasses file permission checks", "CAP_DAC_OVERRIDE"),
    **_rate(Danger.HIGH, "bypasses owner checks: changes the mode of any file", "CAP_FOWNER"),
    **_rate(Danger.HIGH, "gives any file to any user", "CAP_CHOWN"),
    **_rate(Danger.HIGH, "becomes any user", "CAP_SETUID"),
    **_rate(Danger.HIGH, "joins any group", "CAP_SETGID"),
    **_rate(Danger.HIGH, "grants capabilities to program files", "CAP_SETFCAP"),
    **_rate(Danger.HIGH, "passes capabilities on and changes securebits", "CAP_SETPCAP"),
    **_rate(Danger.HIGH, "reconfigures the network: interfaces, routes, firewall", "CAP_NET_ADMIN"),
    **_rate(Danger.HIGH, "raw and packet sockets: forges and sniffs traffic", "CAP_NET_RAW"),
    **_rate(Danger.HIGH, "creates device nodes, such as one for a disk", "CAP_MKNOD"),
    **_rate(Danger.HIGH, "observes other processes and the kernel through perf", "CAP_PERFMON"),
    **_rate(Danger.HIGH, "configures or switches off auditing", "CAP_AUDIT_CONTROL"),
    **_rate(Danger.MEDIUM, "checkpoint and restore: chooses PIDs, reads others' mappings", "CAP_CHECKPOINT_RESTORE"),
    **_rate(Danger.MEDIUM, "reads the kernel log and kernel addresses", "CAP_SYSLOG"),
    **_rate(Danger.MEDIUM, "clears the immutable and append-only flags", "CAP_LINUX_IMMUTABLE"),
    **_rate(Danger.MEDIUM, "sets the system clock", "CAP_SYS_TIME"),
    **_rate(Danger.MEDIUM, "signals any process", "CAP_KILL"),
    **_rate(Danger.MEDIUM, "changes the root directory", "CAP_SYS_CHROOT"),
    **_rate(Danger.MEDIUM, "bypasses System V IPC permissions", "CAP_IPC_OWNER"),
    **_rate(Danger.MEDIUM, "keeps set-user-ID bits on files it changes", "CAP_FSETID"),
    **_rate(Danger.MEDIUM, "hangs up terminals", "CAP_SYS_TTY_CONFIG"),
}

_NAMED_FAMILY_DANGER: Mapping[str, Rating] = {
    **_rate(Danger.HIGH, "raw link-layer frames: sniffs and forges traffic, a record of bugs", "AF_PACKET"),
    **_rate(Danger.HIGH, "talks to kernel subsystems (routing, firewall, audit): a large surface", "AF_NETLINK"),
    **_rate(Danger.HIGH, "the kernel crypto API: a record of bugs", "AF_ALG"),
    **_rate(Danger.HIGH, "IPsec key management", "AF_KEY"),
    **_rate(Danger.HIGH, "express data path sockets bound to network devices", "AF_XDP"),
    **_rate(Danger.HIGH, "the channel between virtual machines and their host", "AF_VSOCK"),
    **_rate(Danger.MEDIUM, "network access: reaches other hosts", "AF_INET", "AF_INET6"),
}
# Every other family but AF_UNIX is a protocol most services never open: where the kernel has it, socket()
# loads its module on demand, and that rarely used code is where many socket privilege escalations were found
# (AF_RDS, AF_TIPC, AF_LLC, AF_CAN...).
FAMILY_DANGER: Mapping[str, Rating] = {
    **_rate(
        Danger.MEDIUM,
        "a rarely used protocol family whose module socket() loads on demand",
        *(name for name in abi.ADDRESS_FAMILIES[2:] if name not in _NAMED_FAMILY_DANGER),  # past AF_UNSPEC, AF_UNIX
    ),
    **_NAMED_FAMILY_DANGER,
}

NAMESPACE_DANGER: Mapping[str, Rating] = {
    **_rate(Danger.HIGH, "gives an unprivileged process capabilities over kernel code", "user"),
    **_rate(Danger.MEDIUM, "a new network stack, configurable inside a user namespace", "net"),
    **_rate(Danger.MEDIUM, "a mount tree of its own, mountable inside a user namespace", "mnt"),
}

# The 32-bit entry points a 64-bit kernel also runs: a second syscall table few services need.
ABI_DANGER: Mapping[str, Rating] = _rate(
    Danger.MEDIUM, "a second syscall entry point and table, where several escalations were found", "x86", "x32", "arm"
)

UNRATED = Rating(Danger.LOW, "")


def rating(table: Mapping[str, Rating], name: str) -> Rating:
    """The rating of a name in one of the tables above; LOW without a reason for names not in it."""
    return table.get(name, UNRATED)
