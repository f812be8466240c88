"""Write a file so that readers see the old content or the whole new content, never a part."""

import os
import tempfile
from pathlib import Path

from profiler.errors import OutputError


def write_text_atomically(path: Path, text: str, *, overwrite: bool) -> None:
    """Write text to path through a temporary file in the same directory, then rename it into place.

    Without overwrite, an existing path is an OutputError; the check and the rename are one step
    (a hard link fails on an existing name), so two writers cannot both win.
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{path}: directory {directory} does not exist; create it or choose another -o path")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise OutputError(f"{path}: cannot write in {directory}: {error.strerror}") from error
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise OutputError(f"{path}: already exists; use --force to overwrite it") from None
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror}") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
