"""The syscall ABIs policies name: libseccomp's list, the syscall names it knows, and the ABIs a kernel also runs.

systemd's SystemCallArchitectures= and the runtime-spec's SCMP_ARCH_* constants each spell these names their own
way (generators.systemd.names, generators.seccomp.spec); the names here are libseccomp's, which a Policy holds.
"""

import functools
from collections.abc import Iterable

from profiler import syscalls
from profiler.errors import UnknownAbiError

# Every ABI libseccomp 2.5 names: a syscall name that systemd or an OCI runtime can resolve exists on one of them.
LIBSECCOMP_ABIS = (
    "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64", "mipsel64n32",
    "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64", "riscv64",
)  # fmt: skip


def syscall_number(abi_name: str, name: str) -> int | None:
    """The syscall's number on one ABI; None where it has none, or where this libseccomp build lacks the ABI."""
    try:
        return syscalls.syscall_number(abi_name, name)
    except UnknownAbiError:  # an ABI this libseccomp build does not know
        return None


def exists_on(name: str, abis: Iterable[str]) -> bool:
    """Whether the name is a syscall of one of the ABIs."""
    return any(syscall_number(each, name) is not None for each in abis)


@functools.lru_cache(maxsize=1 << 12)  # bounded: the names come from untrusted policies
def libseccomp_knows(name: str) -> bool:
    """Whether libseccomp resolves a syscall name at all: systemd, runc and crun skip a name it cannot resolve."""
    return exists_on(name, LIBSECCOMP_ABIS)


def kernel_abis(native_abi: str) -> tuple[str, ...]:
    """The ABIs a kernel of this native ABI runs, which a filter that names no architecture lets through: its
    compat ABI, and on x86_64 x32 too (x86_64 numbers with a high bit set, answered where the kernel was built
    with x32 support)."""
    compat = syscalls.COMPAT_ABIS.get(native_abi)
    return (native_abi, *([compat] if compat else []), *(("x32",) if native_abi == "x86_64" else ()))
