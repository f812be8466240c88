"""Reading any input and writing any output: one way for traces, profiles, policies and units.

An input is read only where it is a regular file, and only up to a bound, so that nothing blocks or fills memory.
An output is written so that readers see the old content or the whole new content, never a part, and never in
place of anything but a regular file.
"""

import ctypes
import errno
import functools
import os
import stat
from pathlib import Path
from typing import Any, Final

from profiler.errors import OutputError, ProfilerError, TraceFormatError

PRIVATE: Final = 0o600  # traces hold command lines: owner only
FOLLOW_UMASK: Final = 0o666  # policies: what the umask leaves
INPUT_LIMIT: Final = 256 * 1024 * 1024  # bytes of a file read (a trace of 10,000 processes is about 8 MB)

# renameat2(2): swap two names in one step (Linux 3.15; ext4, xfs, btrfs, tmpfs and others).
_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message: "a directory", "a character device"..."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (a named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_input(path: Path, what: str, error: type[ProfilerError] = TraceFormatError, limit: int = INPUT_LIMIT) -> bytes:
    """The bytes of an input file (a trace, a profile, a policy). Anything but a regular file (a directory, a FIFO,
    a device), a missing or unreadable file, or one of more than limit bytes is one error line; nothing blocks."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISREG(mode):
            # O_NONBLOCK: should a FIFO take the file's place after the check, opening it does not wait for a writer.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            with os.fdopen(descriptor, "rb") as stream:
                mode = os.fstat(descriptor).st_mode
                data = stream.read(limit + 1) if stat.S_ISREG(mode) else b""
    except OSError as failure:
        raise error(f"{path}: cannot read: {failure.strerror}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a directory; give a {what} file")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is {file_kind(mode)}, not a regular file; give a {what} file")
    if len(data) > limit:
        raise error(f"{path}: larger than {limit // (1024 * 1024)} MiB, more than any {what} profiler reads")
    return data


def check_output(path: Path, *, overwrite: bool) -> None:
    """Refuse, before any work is done, an output that write_text_atomically would refuse: a missing directory,
    anything but a regular file or a new name, an existing file without overwrite."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{path}: directory {directory} does not exist; create it or choose another -o path")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path}: is {file_kind(mode)}, not a regular file; give a file name")
    if not overwrite:
        raise OutputError(f"{path}: already exists; use --force to overwrite it")


def write_text_atomically(path: Path, text: str, *, overwrite: bool, mode: int = FOLLOW_UMASK) -> None:
    """Write text to path through a temporary file in the same directory, then put it in place in one step.

    The file is created with mode (less the umask). Without overwrite, an existing path is an OutputError; the
    check and the write are one step (a hard link fails on an existing name), so two writers cannot both win.
    With overwrite, only a regular file is replaced: the new file and the old name swap in one step
    (RENAME_EXCHANGE), and should the old one turn out not to be a regular file (it changed since it was
    checked) they swap back. On a file system that cannot swap, a plain rename follows the check.
    """
    check_output(path, overwrite=overwrite)
    directory = path.parent if str(path.parent) else Path(".")
    # A name of our own rather than the output's: that one may already be as long as a name can be.
    temporary = directory / f".profiler-{os.urandom(8).hex()}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        raise OutputError(f"{path}: cannot write in {directory}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        _put_in_place(temporary, path, overwrite)
        _sync_directory(directory)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror}") from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _put_in_place(temporary: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        try:
            swapped = _exchange(temporary, path)
        except FileNotFoundError:  # nothing there (any more): a new name, linked below
            swapped = None
        if swapped:
            old = os.lstat(temporary).st_mode  # what path held until now
            if not stat.S_ISREG(old):
                _exchange(temporary, path)
                raise OutputError(f"{path}: is {file_kind(old)}, not a regular file; give a file name")
            return
        if swapped is False:  # this file system cannot swap names
            check_output(path, overwrite=True)
            os.replace(temporary, path)
            return
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise OutputError(f"{path}: already exists; use --force to overwrite it") from None


@functools.cache
def _renameat2() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:  # a C library older than glibc 2.28
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


def _exchange(first: Path, second: Path) -> bool:
    """Swap two names; False where the system or file system cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(number, os.strerror(number), str(second))


def _sync_directory(directory: Path) -> None:
    """Make the new name durable: a crash after a rename may otherwise bring the old file back."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno != errno.EINVAL:  # a file system that cannot sync a directory
            raise
    finally:
        os.close(descriptor)
