"""How text from a trace or a policy is written out: visibly escaped for people, JSON-escaped for tools.

Recorded paths, argv, host and user names, and the words of a policy file are untrusted: a path can hold ESC
(a terminal escape), CR or a newline (a forged line of a report, or a directive in a policy's comment), NUL
(systemd splits lines on it), U+2028 (a line break to YAML and JavaScript), bidi controls, or bytes that
were not UTF-8 (held as lone surrogates, U+DC80 to U+DCFF, as Python's surrogateescape decodes them).

    visible(text)     for people: every character that is not printable as an escape (\\n, \\x1b, \\u202e;
                      a byte that was not UTF-8 as \\xNN), so that the text is one line that shows what it holds
                      and cannot act on a terminal. A backslash stays as it is, which makes the function
                      idempotent: text escaped once (a comment built from a path) can be escaped again when it is
                      written, unchanged; the exact value is in the JSON outputs.
    json_dumps(...)   for tools: json.dumps that escapes, as \\uXXXX, every character that is not printable
                      (DEL, C1, U+2028, bidi controls, lone surrogates; json.dumps escapes only C0), so the value
                      stays exact, the text is valid UTF-8, and nothing in it acts on a terminal that shows it
    spreadsheet_cell(text)  for a CSV cell: visible, and led by a single quote where the text begins as a
                      formula does (=, +, -, @, tab, CR), so that a spreadsheet opening the file shows the cell as
                      text instead of running it (OWASP's CSV Injection); the exact value is in the JSON outputs
"""

import json
from typing import Any

# What a spreadsheet's cell begins with to be read as a formula, tab and CR among them (OWASP, CSV Injection):
# =cmd|' /C calc'!A0 runs a command in some, =HYPERLINK() sends what the sheet holds elsewhere.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bytes that were not UTF-8, decoded with surrogateescape: U+DC80..U+DCFF stand for 0x80..0xFF.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str) -> str:
    """The text as one printable line: controls, separators, invisible and unpaired characters escaped."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _json_escaped(line: str) -> str:
    """A line of JSON with each character that is not printable as a \\u escape (a pair of them beyond the BMP,
    as JSON spells those). Outside strings JSON holds only printable characters and spaces, so only string
    contents change."""
    if line.isprintable():
        return line
    escaped = []
    for char in line:
        if char.isprintable():
            escaped.append(char)
        elif ord(char) < 0x10000:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            high, low = divmod(ord(char) - 0x10000, 0x400)
            escaped.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    return "".join(escaped)


def json_dumps(value: Any, **options: Any) -> str:
    """json.dumps(value, ensure_ascii=False, **options), with every character that is not printable escaped."""
    return "\n".join(map(_json_escaped, json.dumps(value, ensure_ascii=False, **options).split("\n")))


def spreadsheet_cell(text: str) -> str:
    """A CSV cell that a spreadsheet shows as the text it holds: visible, and a single quote before a text that
    begins as a formula does, which the spreadsheet takes as the mark of text and does not show."""
    shown = visible(text)
    return "'" + shown if text.startswith(_FORMULA_STARTS) else shown
