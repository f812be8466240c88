"""What `profiler run` watches in a confined command besides its seccomp filter: the capability checks the kernel
denied and the path calls that failed read-only or for permission (EROFS, EACCES), or found nothing under /dev, the
homes and /tmp (ENOENT), by program, from the command's exec on (refusals.bpf.c). In the kernel's terms
(capability numbers, errnos, the path as the program named it); profiler.enforcement says which setting refused
each.
"""

import ctypes as ct
import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from profiler import capability_paths, syscalls
from profiler.recording.kernel_features import KernelFeatures
from profiler.recording.tracer import load_program
from profiler.trace import CapabilitySource

PATH_LEN = 256
ENTRIES = 4096
# The syscalls that name a path the kernel can refuse to write, read or look up: the argument that names it, and
# that of its open flags (an open writes or reads as they say).
PATH_ARGUMENTS: dict[str, tuple[int, int | None]] = {
    "open": (0, 1),
    "openat": (1, 2),
    "openat2": (1, None),
    "creat": (0, None),
    "truncate": (0, None),
    "mkdir": (0, None),
    "mkdirat": (1, None),
    "mknod": (0, None),
    "mknodat": (1, None),
    "rmdir": (0, None),
    "unlink": (0, None),
    "unlinkat": (1, None),
    "rename": (1, None),
    "renameat": (3, None),
    "renameat2": (3, None),
    "link": (1, None),
    "linkat": (3, None),
    "symlink": (1, None),
    "symlinkat": (2, None),
    "chmod": (0, None),
    "fchmodat": (1, None),
    "chown": (0, None),
    "lchown": (0, None),
    "fchownat": (1, None),
    "utimensat": (1, None),
    "setxattr": (0, None),
    "lsetxattr": (0, None),
    "removexattr": (0, None),
    "execve": (0, None),
    "execveat": (1, None),
    "chdir": (0, None),
    "stat": (0, None),
    "lstat": (0, None),
    "newfstatat": (1, None),
    "statx": (1, None),
    "access": (0, None),
    "faccessat": (1, None),
    "faccessat2": (1, None),
    "readlink": (0, None),
    "readlinkat": (1, None),
}
_KIND_CAPABILITY, _KIND_PATH, _KIND_CONNECT = 0, 1, 2
_SOCKADDR_LEN = 28  # as refusals.bpf.c reads it: a struct sockaddr_in6 (the char array stops at a 0 byte)


@dataclass(frozen=True, slots=True)
class DeniedCapability:
    program: str
    capability: int
    frames: tuple[str, ...]  # the kernel path of the check, innermost first (capability_paths.clean_frames)
    count: int


@dataclass(frozen=True, slots=True)
class FailedPathCall:
    program: str
    syscall: str
    errno: str  # EROFS, EACCES; ENOENT under /dev, /home, /root, /run/user, /tmp, /var/tmp
    path: str  # as the program named it (relative to its working directory or a directory it opened)
    open_flags: int | None  # of an open, whose flags say whether it writes
    count: int


@dataclass(frozen=True, slots=True)
class UnreachableConnect:
    """connect() calls that found no route to the address (ENETUNREACH)."""

    program: str
    address: str  # 192.0.2.1:80, [2001:db8::1]:443
    count: int


def program_source(features: KernelFeatures) -> str:
    connect = syscalls.direct_syscall_number(syscalls.native_abi(), "connect")
    defines: dict[str, object] = {
        "SELF_TGID": os.getpid(),
        "PATH_LEN": PATH_LEN,
        "ENTRIES": ENTRIES,
        "NR_CONNECT": connect if connect is not None else 0xFFFF,
    }
    switches = {
        "CAP_TRACEPOINT": features.capability_source is CapabilitySource.TRACEPOINT,
        "ARCH_X86_64": features.architecture == "x86_64",
        "ARCH_ARM64": features.architecture == "aarch64",
    }
    lines = [f"#define {name} {value}" for name, value in defines.items()]
    lines += [f"#define {name} 1" for name, enabled in switches.items() if enabled]
    source = resources.files("profiler.recording").joinpath("bpf", "refusals.bpf.c").read_text()
    return "\n".join(lines) + "\n" + source


class RefusalWatch:
    """The watch, loaded. arming() around the fork of the launcher's first process; then, at the end, what it saw.
    Capability checks are watched where the kernel has the cap_capable tracepoint (6.14)."""

    def __init__(self, features: KernelFeatures):
        self.watches_capabilities = features.capability_source is CapabilitySource.TRACEPOINT
        self._bpf: Any = load_program(program_source(features))
        table = self._bpf[b"path_arguments"]
        abi = syscalls.native_abi()
        for name, (path, flags) in PATH_ARGUMENTS.items():
            number = syscalls.direct_syscall_number(abi, name)
            if number is not None and number < len(table):
                table[ct.c_uint32(number)] = ct.c_uint32(path + 1 | (flags + 1 if flags is not None else 0) << 8)

    def __enter__(self) -> "RefusalWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._bpf.cleanup()

    @contextmanager
    def arming(self) -> Iterator[None]:
        """While open, the processes this one forks are watched, and what they fork in turn."""
        flag = self._bpf[b"arming"]
        flag[ct.c_uint32(0)] = ct.c_uint32(1)
        try:
            yield
        finally:
            flag[ct.c_uint32(0)] = ct.c_uint32(0)

    def _programs(self) -> dict[tuple[int, int], str]:
        """The program of each image, named as /proc/PID/exe names it (links resolved: /usr/bin/python3.11)."""
        programs = self._bpf[b"programs"].items()
        return {(key.tgid, key.image): _resolved(os.fsdecode(value.path)) for key, value in programs}

    def denied_capabilities(self) -> list[DeniedCapability]:
        programs, stacks = self._programs(), self._bpf[b"stacks"]
        found = []
        for key, value in self._bpf[b"refusals"].items():
            if key.kind != _KIND_CAPABILITY:
                continue
            symbols = [self._bpf.ksym(address).decode() for address in stacks.walk(key.stack_id)]
            program = programs.get((key.tgid, key.image), f"pid {key.tgid}")
            found.append(DeniedCapability(program, key.code, capability_paths.clean_frames(symbols), value.value))
        return found

    def failed_path_calls(self) -> list[FailedPathCall]:
        programs, abi = self._programs(), syscalls.native_abi()
        found = []
        for key, value in self._bpf[b"refusals"].items():
            if key.kind != _KIND_PATH:
                continue
            name = syscalls.syscall_name(abi, key.nr)[0] or f"syscall {key.nr}"
            flags = key.flags if PATH_ARGUMENTS.get(name, (0, None))[1] is not None else None
            found.append(
                FailedPathCall(
                    programs.get((key.tgid, key.image), f"pid {key.tgid}"),
                    name,
                    errno.errorcode.get(key.code, str(key.code)),
                    os.fsdecode(key.path),
                    flags,
                    value.value,
                )
            )
        return found

    def unreachable_connects(self) -> list[UnreachableConnect]:
        programs = self._programs()
        return [
            UnreachableConnect(
                programs.get((key.tgid, key.image), f"pid {key.tgid}"),
                _address(ct.string_at(ct.addressof(key) + type(key).path.offset, _SOCKADDR_LEN)),
                value.value,
            )
            for key, value in self._bpf[b"refusals"].items()
            if key.kind == _KIND_CONNECT
        ]

    def dropped(self) -> int:
        return int(self._bpf[b"dropped"][ct.c_uint32(0)].value)


def _resolved(program: str) -> str:
    # The command sees the host's file system but for mounts over parts of it: the host resolves its links alike.
    return os.path.realpath(program) if program.startswith("/") else program


def _address(sockaddr: bytes) -> str:
    """A struct sockaddr_in or sockaddr_in6 as people write it: 192.0.2.1:80, [2001:db8::1]:443."""
    family = int.from_bytes(sockaddr[0:2], "little")
    port = int.from_bytes(sockaddr[2:4], "big")
    if family == socket.AF_INET and len(sockaddr) >= 8:
        return f"{socket.inet_ntop(socket.AF_INET, sockaddr[4:8])}:{port}"
    if family == socket.AF_INET6 and len(sockaddr) >= 24:
        return f"[{socket.inet_ntop(socket.AF_INET6, sockaddr[8:24])}]:{port}"
    return f"an address of family {family}"
