"""A program that tries one way out of its confinement and exits with the errno it got (0: it got out).

    python3 probe.py NAME [ARGUMENT]

Run under `profiler run` and under systemd alike, so that what each refuses can be compared by exit status.
"""

import ctypes
import mmap
import os
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER = 0x10000000
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
SYS_FINIT_MODULE = 313  # x86_64
# mov eax, 20 (getpid in the i386 table); int 0x80; ret: a 32-bit syscall from this 64-bit process
I386_GETPID = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"


def checked(result: int) -> None:
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def probe(name: str, argument: str) -> None:
    match name:
        case "setuid-root":
            os.setuid(0)
        case "read":
            with open(argument, "rb") as file:
                file.read(1)
        case "write":
            with open(argument, "w") as file:
                file.write("escaped\n")
        case "af-packet":
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        case "unshare-user":
            checked(libc.unshare(CLONE_NEWUSER))
        case "ptrace-parent":
            checked(libc.ptrace(PTRACE_ATTACH, os.getppid(), 0, 0))
            os.waitpid(os.getppid(), 0x40000000)  # __WALL: the stop that the attach causes
            checked(libc.ptrace(PTRACE_DETACH, os.getppid(), 0, 0))
        case "load-module":
            fd = os.open(argument, os.O_RDONLY)
            checked(libc.syscall(SYS_FINIT_MODULE, fd, b"", 0))
        case "syscall-32":
            page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            page.write(I386_GETPID)
            address = ctypes.addressof(ctypes.c_char.from_buffer(page))
            function = ctypes.CFUNCTYPE(ctypes.c_int)(address)
            function()
        case "bind-80":
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
                server.bind(("127.0.0.1", 80))
        case "connect":
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
                client.settimeout(2)
                client.connect((argument, 80))
        case "status":
            with open("/proc/self/status") as status:
                for line in status:
                    if line.split(":")[0] in (
                        "CapInh",
                        "CapPrm",
                        "CapEff",
                        "CapBnd",
                        "CapAmb",
                        "NoNewPrivs",
                        "Seccomp",
                    ):
                        print(line.rstrip())
        case _:
            sys.exit(f"probe.py: no probe {name}")


if __name__ == "__main__":
    try:
        probe(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
    except OSError as error:
        sys.exit(error.errno or 255)
