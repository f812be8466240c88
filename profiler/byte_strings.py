"""Byte strings (paths, arguments) held as str without loss, and the text form a trace file writes them in.

Linux paths and command lines are bytes, not text. In memory profiler holds them as `str` decoded the way
Python decodes file names (`os.fsdecode`: UTF-8, with each byte that is not UTF-8 kept as a lone surrogate),
so `os.fsencode(value)` gives the bytes back. Lone surrogates cannot go into JSON that other parsers accept
(pydantic's and msgspec's refuse the escape "\\udce9"), so on disk such a field is UTF-8 text where its bytes
are UTF-8, `\\xNN` (two lowercase hex digits) for each byte that is not, and `\\\\` for a backslash: valid
UTF-8 text, readable where the bytes are, and one form only for each byte string.
"""

import re
from typing import Final

_ESCAPED: Final = re.compile(rb"\\(?:\\|x([0-9a-f]{2}))")
_WELL_FORMED: Final = re.compile(rb"(?:[^\\]|\\\\|\\x[0-9a-f]{2})*")


class ByteStringError(ValueError):
    """Text that is not the written form of a byte string; str() says why."""


def encode(value: str) -> str:
    """The written form of a byte string held as str (see the module docstring)."""
    if "\\" not in value and value.isascii():
        return value
    # A surrogate that surrogateescape did not make has no byte meaning: written as the bytes of
    # surrogatepass, so that no value ever fails to be written.
    try:
        raw = value.replace("\\", "\\\\").encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.replace("\\", "\\\\").encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def decode(text: str, limit: int) -> str:
    """The byte string (as str) that text is the written form of; a ByteStringError if it is none, holds a
    NUL byte (no path or argument can), or is longer than limit bytes."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ByteStringError("a lone surrogate (a \\u escape that stands for no character)") from None
    if b"\\" in raw:
        if not _WELL_FORMED.fullmatch(raw):
            raise ByteStringError("a backslash that is not \\\\ or \\x followed by two lowercase hex digits")
        raw = _ESCAPED.sub(lambda match: bytes([int(match[1], 16)]) if match[1] else b"\\", raw)
    if len(raw) > limit:
        raise ByteStringError(f"longer than {limit} bytes")
    if b"\0" in raw:
        raise ByteStringError("a NUL byte, which no path or argument can hold")
    value = raw.decode("utf-8", "surrogateescape")
    if "\\" in text and encode(value) != text:
        raise ByteStringError("\\x escapes a byte that is UTF-8 text; write it as itself")
    return value
