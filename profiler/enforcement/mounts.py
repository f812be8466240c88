"""The file-system settings, applied in a new mount namespace as systemd applies them (src/core/namespace.c).

Each path is made its own mount (a bind mount onto itself) and remounted with MS_RDONLY added to the flags it
has: a remount of a bind mount replaces every per-mount flag, so nosuid, nodev and noexec are read back from the
mount and kept (dropping nosuid would let set-user-ID programs on that mount work again).
"""

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from profiler import private_dev
from profiler.enforcement.confinement import FileSystem, ProtectHome, ProtectSystem
from profiler.enforcement.kernel_calls import (
    MS_BIND,
    MS_MOVE,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_STRICTATIME,
    mount,
)

# statvfs(3) f_flag bits and the mount flags they stand for
_KEPT_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
# What systemd leaves writable under ProtectSystem=strict: the API file systems.
_API_FILE_SYSTEMS = ("/dev", "/proc", "/sys")
_PROTECTED = {
    ProtectSystem.YES: ("/usr", "/boot", "/efi"),
    ProtectSystem.FULL: ("/usr", "/boot", "/efi", "/etc"),
    ProtectSystem.STRICT: ("/",),
}
_HOMES = ("/home", "/root", "/run/user")
_TEMPORARY = ("/tmp", "/var/tmp")  # a tmpfs each under PrivateTmp=


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def mount_points() -> list[str]:
    """Every mount point of this mount namespace, parents before children."""
    points = [_unescape(line.split()[4]) for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted(set(points), key=lambda point: (point.count("/") if point != "/" else 0, point))


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root.rstrip("/") + "/")


def _remount_read_only(point: str) -> None:
    flags = os.statvfs(point).f_flag
    kept = sum(bit for flag, bit in _KEPT_FLAGS.items() if flags & flag)
    if not flags & os.ST_RELATIME and not flags & os.ST_NOATIME:
        kept |= MS_STRICTATIME
    mount("none", point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _bind_onto_itself(path: str) -> None:
    mount(path, path, None, MS_BIND | MS_REC)


def _private_tmp() -> None:
    for path in _TEMPORARY:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")


def _private_devices() -> None:
    """A /dev of its own with the pseudo devices only, as PrivateDevices= gives (no disks, /dev/mem, /dev/port):
    filled at a staging point while the host's /dev is still there to bind nodes from (mknod would need
    CAP_MKNOD, which PrivateDevices= takes away anyway), then moved over /dev."""
    staging = tempfile.mkdtemp(prefix=".profiler-dev-", dir="/run" if os.path.isdir("/run") else "/tmp")
    mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755")
    for name in private_dev.NODES:
        source = f"/dev/{name}"
        if not stat.S_ISCHR(os.stat(source).st_mode):
            raise OSError(f"{source} is not a character device")
        os.close(os.open(f"{staging}/{name}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o666))
        mount(source, f"{staging}/{name}", None, MS_BIND)
    for directory in private_dev.DIRECTORIES:
        os.mkdir(f"{staging}/{directory}", 0o755)
    mount("devpts", f"{staging}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    mount("tmpfs", f"{staging}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for name, target in private_dev.LINKS.items():
        os.symlink(target, f"{staging}/{name}")
    mount(staging, "/dev", None, MS_MOVE)
    os.rmdir(staging)


def _inaccessible(path: str) -> None:
    """Empty and closed to everyone but root, as systemd's inaccessible directory is."""
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "mode=000")


def apply(settings: FileSystem) -> None:
    """In a new mount namespace, before the change of user: the settings, in systemd's order (bind mounts of
    ReadWritePaths= first, so that the read-only pass that follows leaves them alone)."""
    mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host's mounts
    if settings.private_devices:
        _private_devices()
    writable = [path for path in settings.read_write_paths if os.path.exists(path)]
    for path in writable:
        _bind_onto_itself(path)
    if settings.private_tmp:
        _private_tmp()
        writable += _private_tmp_paths(settings)
    homes = [path for path in _HOMES if os.path.isdir(path)]
    match settings.protect_home:
        case ProtectHome.YES:
            for path in homes:
                _inaccessible(path)
        case ProtectHome.TMPFS:
            for path in homes:
                mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
        case ProtectHome.READ_ONLY | ProtectHome.NO:
            pass
    read_only = [root for root in _PROTECTED.get(settings.protect_system, ()) if os.path.isdir(root)]
    if settings.protect_home is ProtectHome.READ_ONLY:
        read_only += homes
    for root in read_only:
        if root != "/":
            _bind_onto_itself(root)
    for point in _read_only_points(mount_points(), read_only, settings.protect_system, writable):
        _remount_read_only(point)


def _read_only_points(
    points: list[str], read_only: list[str], protect_system: ProtectSystem, writable: list[str]
) -> Iterator[str]:
    for point in points:
        if not any(_under(point, root) for root in read_only):
            continue
        if protect_system is ProtectSystem.STRICT and any(_under(point, api) for api in _API_FILE_SYSTEMS):
            continue
        if any(_under(point, path) for path in writable):
            continue
        yield point


def read_only_by(settings: FileSystem, path: str) -> str | None:
    """The setting whose mounts make path read-only (a path relative to where the program was: the one that
    makes anything read-only), or None where none of them does."""
    home = ProtectHome.READ_ONLY if settings.protect_home is ProtectHome.READ_ONLY else None
    system = settings.protect_system if settings.protect_system is not ProtectSystem.NO else None
    if not path.startswith("/"):
        return f"ProtectSystem={system}" if system else f"ProtectHome={home}" if home else None
    if any(_under(path, writable) for writable in (*settings.read_write_paths, *_private_tmp_paths(settings))):
        return None
    if home and any(_under(path, each) for each in _HOMES):
        return f"ProtectHome={home}"
    if system is ProtectSystem.STRICT and any(_under(path, api) for api in _API_FILE_SYSTEMS):
        return None
    if system and any(_under(path, root) for root in _PROTECTED[system]):
        return f"ProtectSystem={system}"
    return None


def hidden_by(settings: FileSystem, path: str) -> str | None:
    """The setting whose mounts hide path, or None: ProtectHome=yes or tmpfs (an empty directory over the homes),
    PrivateDevices= (a /dev with the pseudo devices only), PrivateTmp= (a /tmp and /var/tmp of its own)."""
    if settings.protect_home in (ProtectHome.YES, ProtectHome.TMPFS) and any(_under(path, each) for each in _HOMES):
        return f"ProtectHome={settings.protect_home}"
    if settings.private_tmp and any(_under(path, each) and path != each for each in _TEMPORARY):
        return "PrivateTmp=yes"
    if settings.private_devices and _under(path, "/dev") and not private_dev.holds(path):
        return "PrivateDevices=yes"
    return None


def _private_tmp_paths(settings: FileSystem) -> tuple[str, ...]:
    return _TEMPORARY if settings.private_tmp else ()
