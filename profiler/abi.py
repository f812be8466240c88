"""Names of the Linux ABI numbers a trace records: capabilities, address families, socket types, namespaces."""

import signal

# From linux-libc-dev 6.1:
#   grep -E '^#define CAP_[A-Z_]+\s+[0-9]+' /usr/include/linux/capability.h | awk '{print $2}'
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# From glibc 2.36 and the kernel's include/linux/socket.h (AF_DECnet is only PF_DECnet in glibc):
#   grep -E '^#define PF_[A-Za-z0-9_]+\s+[0-9]+' /usr/include/x86_64-linux-gnu/bits/socket.h
ADDRESS_FAMILIES: tuple[str, ...] = (
    "AF_UNSPEC",
    "AF_UNIX",
    "AF_INET",
    "AF_AX25",
    "AF_IPX",
    "AF_APPLETALK",
    "AF_NETROM",
    "AF_BRIDGE",
    "AF_ATMPVC",
    "AF_X25",
    "AF_INET6",
    "AF_ROSE",
    "AF_DECnet",
    "AF_NETBEUI",
    "AF_SECURITY",
    "AF_KEY",
    "AF_NETLINK",
    "AF_PACKET",
    "AF_ASH",
    "AF_ECONET",
    "AF_ATMSVC",
    "AF_RDS",
    "AF_SNA",
    "AF_IRDA",
    "AF_PPPOX",
    "AF_WANPIPE",
    "AF_LLC",
    "AF_IB",
    "AF_MPLS",
    "AF_CAN",
    "AF_TIPC",
    "AF_BLUETOOTH",
    "AF_IUCV",
    "AF_RXRPC",
    "AF_ISDN",
    "AF_PHONET",
    "AF_IEEE802154",
    "AF_CAIF",
    "AF_ALG",
    "AF_NFC",
    "AF_VSOCK",
    "AF_KCM",
    "AF_QIPCRTR",
    "AF_SMC",
    "AF_XDP",
    "AF_MCTP",
)

SOCKET_TYPES: dict[int, str] = {
    1: "SOCK_STREAM",
    2: "SOCK_DGRAM",
    3: "SOCK_RAW",
    4: "SOCK_RDM",
    5: "SOCK_SEQPACKET",
    6: "SOCK_DCCP",
    10: "SOCK_PACKET",
}
SOCKET_TYPE_MASK = 0xF
# O_NONBLOCK and O_CLOEXEC on x86_64 and aarch64 (they differ on alpha, mips, parisc and sparc).
SOCKET_TYPE_FLAGS: dict[int, str] = {0o4000: "SOCK_NONBLOCK", 0o2000000: "SOCK_CLOEXEC"}

# include/uapi/linux/sched.h. CLONE_NEWTIME shares its bit with the exit signal of clone(), so it only
# means a namespace where the kernel reports the flags without CSIGNAL (task_newtask, clone3, unshare).
NAMESPACE_FLAGS: dict[int, str] = {
    0x00000080: "CLONE_NEWTIME",
    0x00020000: "CLONE_NEWNS",
    0x02000000: "CLONE_NEWCGROUP",
    0x04000000: "CLONE_NEWUTS",
    0x08000000: "CLONE_NEWIPC",
    0x10000000: "CLONE_NEWUSER",
    0x20000000: "CLONE_NEWPID",
    0x40000000: "CLONE_NEWNET",
}
NAMESPACE_FLAG_MASK = sum(NAMESPACE_FLAGS)


def capability_name(number: int) -> str | None:
    """CAP_* name of a capability number, or None for one this table does not know."""
    return CAPABILITIES[number] if 0 <= number < len(CAPABILITIES) else None


def capability_number(name: str) -> int | None:
    """Number of a CAP_* name (case-insensitive, CAP_ prefix optional), or None."""
    upper = name.upper()
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    try:
        return CAPABILITIES.index(upper)
    except ValueError:
        return None


def address_family_name(number: int) -> str | None:
    """AF_* name of an address family number, or None for one this table does not know."""
    return ADDRESS_FAMILIES[number] if 0 <= number < len(ADDRESS_FAMILIES) else None


def address_family_number(name: str) -> int | None:
    """Number of an AF_* name, or None."""
    try:
        return ADDRESS_FAMILIES.index(name)
    except ValueError:
        return None


def socket_type_names(raw_type: int) -> tuple[str, ...]:
    """The socket type and its flags, as names: 0x80001 is ("SOCK_STREAM", "SOCK_CLOEXEC")."""
    base = raw_type & SOCKET_TYPE_MASK
    names = [SOCKET_TYPES.get(base, f"SOCK_TYPE_{base}")]
    names += [name for bit, name in SOCKET_TYPE_FLAGS.items() if raw_type & bit]
    unknown = raw_type & ~SOCKET_TYPE_MASK & ~sum(SOCKET_TYPE_FLAGS)
    if unknown:
        names.append(f"0x{unknown:x}")
    return tuple(names)


def namespace_flag_names(flags: int) -> tuple[str, ...]:
    """The CLONE_NEW* names set in a clone, clone3, unshare or setns flag word."""
    return tuple(name for bit, name in NAMESPACE_FLAGS.items() if flags & bit)


def signal_name(number: int) -> str:
    """SIG* name of a signal number; real-time signals as SIGRTMIN+n."""
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"SIG{number}"
