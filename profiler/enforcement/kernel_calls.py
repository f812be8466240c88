"""The calls the launcher makes that Python's os module lacks, through libc, each raising OSError on failure."""

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

# include/uapi/linux/prctl.h
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# include/uapi/linux/mount.h
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# include/uapi/linux/capability.h
_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}
# The unified syscall table (since 5.x every ABI has the same number)
_SYS_PIDFD_GETFD = 438


def _check(result: int, what: str) -> int:
    if result < 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")
    return result


def prctl(option: int, argument: int = 0, third: int = 0, what: str = "prctl") -> int:
    return _check(_libc.prctl(option, argument, third, 0, 0), what)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def capset(permitted: int, effective: int, inheritable: int) -> None:
    """Set this thread's capability sets (masks of capability numbers)."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", _CAPABILITY_VERSION_3, 0))
    words = []
    for shift in (0, 32):
        words += [(effective >> shift) & 0xFFFFFFFF, (permitted >> shift) & 0xFFFFFFFF]
        words.append((inheritable >> shift) & 0xFFFFFFFF)
    data = ctypes.create_string_buffer(struct.pack("=6I", *words))
    _check(_libc.syscall(_SYS_CAPSET[os.uname().machine], header, data), "capset")


def permitted_capabilities() -> int:
    """This thread's permitted set, as a mask (from /proc, which shows what capget would)."""
    with open("/proc/thread-self/status") as status:
        for line in status:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    raise OSError(0, "no CapPrm line in /proc/thread-self/status")


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A copy of another process's file descriptor (Linux 5.6; needs ptrace access to it)."""
    return _check(_libc.syscall(_SYS_PIDFD_GETFD, pidfd, target_fd, 0), "pidfd_getfd")
