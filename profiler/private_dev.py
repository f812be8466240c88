"""What a private /dev holds (systemd's PrivateDevices=): what `profiler run` builds and what the generators let a
workload keep opening there.

mount_private_dev in src/core/namespace.c (systemd 252) clones the device nodes below into a tmpfs, makes /dev/ptmx
a clone or a link into pts, binds pts, shm, mqueue and hugepages from the host's /dev, and dev_setup
(src/shared/dev-setup.c) adds the links into /proc.
"""

from typing import Final

NODES: Final = ("null", "zero", "full", "random", "urandom", "tty")
LINKS: Final = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}
DIRECTORIES: Final = ("pts", "shm", "mqueue", "hugepages")


def holds(path: str) -> bool:
    """Whether a path is there: /dev itself, one of its nodes or links, or below one of its directories (or
    through a link to one: /dev/fd/3)."""
    if path == "/dev":
        return True
    name = path.removeprefix("/dev/").split("/")[0] if path.startswith("/dev/") else ""
    return name in NODES or name in LINKS or name in DIRECTORIES
