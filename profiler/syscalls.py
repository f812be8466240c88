"""Syscall names and numbers per ABI, from libseccomp's tables (never from a table of ours)."""

import functools
import platform
from types import ModuleType
from typing import Any

from profiler.errors import LibseccompMissingError, UnknownAbiError, UnsupportedArchitectureError

# ABI names are libseccomp's architecture names; the key is what `uname -m` prints.
NATIVE_ABIS: dict[str, str] = {"x86_64": "x86_64", "aarch64": "aarch64", "i686": "x86", "armv7l": "arm"}
# The 32-bit ABI a 64-bit kernel also runs (a compat process), by native ABI.
COMPAT_ABIS: dict[str, str] = {"x86_64": "x86", "aarch64": "arm"}
# x32 syscalls are x86_64 numbers with this bit set; the kernel reports them as such.
X32_SYSCALL_BIT = 0x40000000


@functools.cache
def _seccomp() -> ModuleType:
    try:
        import seccomp
    except ImportError as error:
        raise LibseccompMissingError(
            "the libseccomp Python module is missing: install Debian's python3-seccomp "
            "and create the virtual environment with --system-site-packages (make install does both)"
        ) from error
    return seccomp  # type: ignore[no-any-return]


def _arch(abi: str) -> Any:
    try:
        return getattr(_seccomp().Arch, abi.upper())
    except AttributeError:
        raise UnknownAbiError(f"libseccomp does not know the ABI {abi!r}") from None


def native_abi() -> str:
    """The ABI of this machine's kernel, as libseccomp names it."""
    machine = platform.machine()
    try:
        return NATIVE_ABIS[machine]
    except KeyError:
        raise UnsupportedArchitectureError(
            f"unsupported architecture {machine!r}: profiler knows {sorted(NATIVE_ABIS)}"
        ) from None


@functools.cache
def libseccomp_version() -> str:
    """Version of the libseccomp library that names syscalls, such as "2.5.4"."""
    import ctypes.util  # with subprocess, shutil and tempfile: only a recording and some messages ask for it

    library = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")

    class Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    library.seccomp_version.restype = ctypes.POINTER(Version)
    version = library.seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


@functools.cache
def syscall_name(abi: str, number: int) -> tuple[str | None, str | None]:
    """(name, None) for a known syscall, or (None, reason) for a number libseccomp cannot name."""
    if number < 0:
        return None, f"{number} is not a syscall number (the kernel reports it for a task outside a syscall)"
    try:
        name = _seccomp().resolve_syscall(_arch(abi), number)
    except (ValueError, OverflowError):  # OverflowError: past libseccomp's int, where no syscall is
        return None, f"libseccomp {libseccomp_version()} knows no syscall {number} on {abi}"
    return name.decode(), None


def naming_abi(image_abi: str, number: int) -> str:
    """The table that names a number an image of this ABI made: x32's for an x86_64 number with the x32 bit."""
    return "x32" if image_abi == "x86_64" and number >= 0 and number & X32_SYSCALL_BIT else image_abi


def image_syscall_name(image_abi: str, number: int) -> tuple[str | None, str | None]:
    """syscall_name for a number an image of this ABI made."""
    return syscall_name(naming_abi(image_abi, number), number)


# Bounded: names come from untrusted policy files, and a file of millions of distinct names must not grow a cache
# of millions of entries per ABI; every real name on every ABI fits many times over.
@functools.lru_cache(maxsize=1 << 15)
def syscall_number(abi: str, name: str) -> int | None:
    """Number of a syscall on an ABI, or None where the ABI has no such syscall."""
    if not name.isascii() or "\0" in name:
        return None  # the binding encodes names as ASCII (a UnicodeEncodeError), and C would stop at a NUL
    number: int = _seccomp().resolve_syscall(_arch(abi), name)
    # libseccomp answers -1 for an unknown name and a negative pseudo-number for a syscall
    # that exists on other ABIs only (socketcall on x86_64).
    return number if number >= 0 else None


# Above every syscall number of the ABIs libseccomp 2.5 knows (their highest is in the 450s).
_HIGHEST_NUMBER = 1024


@functools.cache
def direct_syscall_number(abi: str, name: str) -> int | None:
    """The number the kernel reports when a program makes this very call, or None where the ABI has none.

    Where an ABI also multiplexes a call, libseccomp resolves its name to the multiplexer (socket to socketcall
    on 32-bit x86), but since Linux 4.3 programs may call socket (359) directly; the tracer needs that number.
    """
    number = syscall_number(abi, name)
    if number is None or syscall_name(abi, number)[0] == name:
        return number
    return next((each for each in range(_HIGHEST_NUMBER) if syscall_name(abi, each)[0] == name), None)
