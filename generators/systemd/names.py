"""systemd's names: its setting names, ABI names, namespace types, address families, capabilities and errnos.

Each table is systemd 252's, and each reader of a name (family_name, capability_bit, errno_name) takes what
systemd takes: the tables say where in systemd's source they come from.
"""

import errno
import re
from collections.abc import Iterable, Sequence

from generators.abis import exists_on
from generators.profile import NAMESPACE_TYPES
from generators.sandbox import MANAGED_TREES
from profiler import abi

# SystemCallArchitectures= identifiers of systemd 252 (seccomp_arch_from_string), as libseccomp ABI names.
SYSTEMD_ARCHITECTURES: dict[str, str] = {
    "x86": "x86",
    "x86-64": "x86_64",
    "x32": "x32",
    "arm": "arm",
    "arm64": "aarch64",
    "mips": "mips",
    "mips-le": "mipsel",
    "mips64": "mips64",
    "mips64-le": "mipsel64",
    "mips64-n32": "mips64n32",
    "mips64-le-n32": "mipsel64n32",
    "ppc": "ppc",
    "ppc64": "ppc64",
    "ppc64-le": "ppc64le",
    "s390": "s390",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "parisc": "parisc",
    "parisc64": "parisc64",
}


_SYSTEMD_NAMES = {abi_name: name for name, abi_name in SYSTEMD_ARCHITECTURES.items()}
NATIVE_ARCHITECTURE = "native"


# RestrictNamespaces= names systemd 252 accepts; profiler's namespace types are the same names.
NAMESPACE_NAMES: tuple[str, ...] = tuple(NAMESPACE_TYPES.values())


# NAMESPACE_FLAGS_ALL of systemd 252 (src/basic/namespace-util.h) leaves out time: a unit that permits these seven
# types loads no namespace filter at all, so time namespaces stay allowed too (seccomp_restrict_namespaces).
ALL_NAMESPACES = tuple(name for name in NAMESPACE_NAMES if name != "time")


# systemd's address family table comes from glibc's <sys/socket.h>: every family but AF_UNSPEC, and aliases.
SYSTEMD_FAMILIES: tuple[str, ...] = abi.ADDRESS_FAMILIES[1:]


FAMILY_ALIASES: dict[str, str] = {"AF_LOCAL": "AF_UNIX", "AF_FILE": "AF_UNIX", "AF_ROUTE": "AF_NETLINK"}


_FAMILIES_BY_UPPER_NAME = {name.upper(): name for name in SYSTEMD_FAMILIES}


# Capability sets are 64-bit masks; systemd accepts a capability as a name or as a number below 64.
CAPABILITY_MASK_BITS = 64


ALL_CAPABILITIES = (1 << CAPABILITY_MASK_BITS) - 1


ERRNO_MAX = 4095


# A user name as systemd 252 takes it without a warning (valid_user_group_name() in src/basic/user-util.c, strict).
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}")


# Sandboxing settings that refuse syscalls (EPERM) and take capabilities out of the bounding set on their own,
# whatever SystemCallFilter= and CapabilityBoundingSet= say (systemd 252: unit_patch_contexts() in
# src/core/unit.c, and the apply_protect_*() filters of src/core/execute.c).
OVERRIDING_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PrivateDevices": (("@raw-io",), ("CAP_MKNOD", "CAP_SYS_RAWIO")),
    "ProtectClock": (("@clock",), ("CAP_SYS_TIME", "CAP_WAKE_ALARM")),
    "ProtectHostname": (("sethostname", "setdomainname"), ()),
    "ProtectKernelLogs": (("syslog",), ("CAP_SYSLOG",)),
    "ProtectKernelModules": (("@module",), ("CAP_SYS_MODULE",)),
    "ProtectKernelTunables": (("_sysctl",), ()),
}


# Settings that load a seccomp filter; each turns no-new-privileges on for a user without CAP_SYS_ADMIN
# (context_has_no_new_privileges() in src/core/execute.c; systemd.exec(5)), as do the syscall, ABI, family
# and namespace restrictions.
SECCOMP_SWITCHES = (
    *OVERRIDING_SETTINGS,
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "RestrictSUIDSGID",
)


# Each setting's values from the most open to the strictest; the first is what systemd does without the line.
LEVELS: dict[str, tuple[str, ...]] = {
    "ProtectSystem": ("no", "yes", "full", "strict"),
    "ProtectHome": ("no", "read-only", "tmpfs", "yes"),
    "ProtectProc": ("default", "ptraceable", "invisible", "noaccess"),
    "ProcSubset": ("all", "pid"),
    "RuntimeDirectoryPreserve": ("no", "restart", "yes"),
    "DevicePolicy": ("auto", "closed", "strict"),
}
BOOLEAN_SETTINGS = (
    "PrivateTmp",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectControlGroups",
    "ProtectClock",
    "ProtectHostname",
    "PrivateMounts",
    "MemoryDenyWriteExecute",
    "LockPersonality",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "PrivateNetwork",
    "PrivateUsers",
    "DynamicUser",
)
# Settings whose values are paths the plan holds as recorded, quoted for a unit line when written.
PATH_SETTINGS = ("DeviceAllow", "ExecPaths", "NoExecPaths")
# Settings that make what is below each of their paths read-only, inaccessible or empty, which check judges the
# runs' file accesses by though the plan never writes them.
HIDING_SETTINGS = ("ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem")
LIST_SETTINGS = (
    "ReadWritePaths",
    *MANAGED_TREES.values(),
    "IPAddressDeny",
    "IPAddressAllow",
    *PATH_SETTINGS,
    *HIDING_SETTINGS,
)
# The sandboxing settings the reader models (systemd.exec(5), systemd.resource-control(5)).
SANDBOX_SETTINGS = (*LEVELS, *BOOLEAN_SETTINGS, *LIST_SETTINGS, "UMask")
SETTINGS = (
    "SystemCallFilter",
    "SystemCallErrorNumber",
    "SystemCallArchitectures",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "NoNewPrivileges",
    "User",
    "Group",
    *dict.fromkeys([*SECCOMP_SWITCHES, *SANDBOX_SETTINGS]),
)


# Settings that confine a service and that profiler reads past without modelling them: named where a policy is
# applied (profiler run), so that nobody takes a run for the whole unit.
UNMODELED_CONFINING = re.compile(
    r"(Protect|Private|Restrict|Inaccessible|ReadOnly|ExecPaths|NoExecPaths|TemporaryFileSystem|Bind|Device|"
    r"IPAddress|MemoryDenyWriteExecute|LockPersonality|SecureBits|RemoveIPC|DynamicUser|SystemCallLog|"
    r"SupplementaryGroups|RootDirectory|RootImage|UMask|Personality|KeyringMode|NetworkNamespacePath|"
    r"IPCNamespacePath|ProcSubset|Limit).*"
)


_BOOLEANS = {"1": True, "yes": True, "y": True, "true": True, "t": True, "on": True}


_BOOLEANS |= {"0": False, "no": False, "n": False, "false": False, "f": False, "off": False}


_SHOWN_NAMES = 8


def effective_names(names: Iterable[str], abis: Sequence[str]) -> frozenset[str]:
    """The names that are syscalls on one of the ABIs: a filter's other names never match a call."""
    return frozenset(name for name in names if exists_on(name, abis))


def capability_bit(word: str) -> int | None:
    """systemd's capability_from_name: a number below 64, or a CAP_ name in any case."""
    if re.fullmatch(r"[0-9]+", word):
        return int(word) if int(word) < CAPABILITY_MASK_BITS else None
    upper = word.upper()
    return abi.CAPABILITIES.index(upper) if upper in abi.CAPABILITIES else None


def capability_names(mask: int) -> frozenset[str]:
    return frozenset(name for bit, name in enumerate(abi.CAPABILITIES) if mask >> bit & 1)


def family_name(word: str) -> str | None:
    """systemd's af_from_name: a family name in any case, or an alias, as the canonical AF_ name."""
    upper = word.upper()
    return FAMILY_ALIASES.get(upper) or _FAMILIES_BY_UPPER_NAME.get(upper)


def errno_name(text: str) -> str | None:
    """systemd's parse_errno: an errno name (any case) or a number up to 4095, as a name where one exists."""
    if re.fullmatch(r"[0-9]+", text):
        number = int(text)
        return errno.errorcode.get(number, str(number)) if number <= ERRNO_MAX else None
    upper = text.upper()
    return upper if upper.startswith("E") and isinstance(getattr(errno, upper, None), int) else None


def parse_boolean(text: str) -> bool | None:
    return _BOOLEANS.get(text.lower())


def systemd_architecture(abi_name: str) -> str:
    """systemd's name of a libseccomp ABI; an ABI systemd does not know keeps its own name."""
    return _SYSTEMD_NAMES.get(abi_name, abi_name)


def short_list(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_SHOWN_NAMES])
    return shown + (f" and {len(ordered) - _SHOWN_NAMES} more" if len(ordered) > _SHOWN_NAMES else "")
