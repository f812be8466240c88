"""Unit-file syntax as systemd 252 reads it (src/shared/conf-parser.c): sections, lines, comments, quoting.

Continued lines are joined as systemd joins them, and a file systemd would not load at all is refused.
"""

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from generators.interface import LintFinding
from profiler.errors import PolicyParseError
from profiler.files import read_input

# conf-parser.c reads lines with read_line(f, LONG_LINE_MAX) and joins continuations up to it: 1 MiB.
LONG_LINE_MAX = 1 << 20


EXEC_SECTIONS: dict[str, str] = {".service": "Service", ".socket": "Socket", ".mount": "Mount", ".swap": "Swap"}


_WHITESPACE = " \t\n\r"


_COMMENT_START = ("#", ";")


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment:
    """One `Key=value` of a unit file, after systemd joined continued lines and stripped whitespace."""

    source: str
    line: int  # the last physical line of a continued line, as systemd reports it
    section: str
    key: str
    value: str


def exec_sections_of(path: Path) -> frozenset[str]:
    """The section a unit's exec settings belong to, by unit type; a lone drop-in names it by its directory."""
    suffix = path.suffix if path.suffix != ".conf" else Path(path.parent.name.removesuffix(".d")).suffix
    return frozenset([EXEC_SECTIONS[suffix]] if suffix in EXEC_SECTIONS else EXEC_SECTIONS.values())


def read_unit_text(path: Path) -> str:
    """The text of a unit file; PolicyParseError where systemd would not load it at all."""
    data = read_input(path, "systemd unit", PolicyParseError)
    if b"\0" in data:
        raise PolicyParseError(f"{path}: holds NUL bytes: a binary file, not a systemd unit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PolicyParseError(
            f"{path}:{line}: not UTF-8 text: systemd refuses to load the unit; is this a unit file?"
        ) from None
    return text.removeprefix("\ufeff")


def _byte_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _logical_lines(text: str, source: str) -> Iterator[tuple[int, str]]:
    """Lines as conf-parser.c sees them: comments dropped (also inside continuations), continuations joined.

    A line continues when it ends in an odd run of backslashes (reading escapes left to right ends on a
    backslash exactly then); only the newest physical line can hold that run, since each earlier part ends
    in the space that replaced its backslash, so the parts are joined once, in linear time. systemd refuses
    the whole unit ("Line too long", "Continuation line too long") where a physical line reaches
    LONG_LINE_MAX bytes or a joined line passes it.
    """
    parts: list[str] = []
    joined = 0  # bytes in parts
    number = 0
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        size = _byte_length(raw)
        if size >= LONG_LINE_MAX:
            raise PolicyParseError(
                f"{source}:{number}: a line of {size} bytes: systemd refuses the unit (Line too long)"
            )
        if raw.lstrip(_WHITESPACE).startswith(_COMMENT_START):
            continue
        if parts and joined + size > LONG_LINE_MAX:
            raise PolicyParseError(
                f"{source}:{number}: a line continued past {LONG_LINE_MAX} bytes: systemd refuses the unit "
                "(Continuation line too long)"
            )
        if (len(raw) - len(raw.rstrip("\\"))) % 2:
            parts.append(raw[:-1] + " ")
            joined += size
            continue
        line = "".join([*parts, raw]).strip(_WHITESPACE)
        parts, joined = [], 0
        if line:
            yield number, line
    line = "".join(parts).strip(_WHITESPACE)
    if line:
        yield number, line


@dataclasses.dataclass(slots=True)
class _UnitText:
    assignments: list[Assignment] = dataclasses.field(default_factory=list)
    findings: list[LintFinding] = dataclasses.field(default_factory=list)
    sections: int = 0


def parse_unit_text(text: str, source: str, exec_sections: frozenset[str]) -> _UnitText:
    known = exec_sections | {"Unit", "Install"}
    parsed = _UnitText()
    section: str | None = None
    for line, content in _logical_lines(text, source):
        if content.startswith("["):
            if not content.endswith("]"):
                raise PolicyParseError(f"{source}:{line}: invalid section header '{content}': systemd refuses the unit")
            parsed.sections += 1
            section = content[1:-1]
            if section not in known and not section.startswith("X-"):
                parsed.findings.append(
                    LintFinding(
                        source,
                        line,
                        f"unknown section [{section}]: systemd ignores it and its settings",
                        "unknown-section",
                    )
                )
            continue
        key, equals, value = content.partition("=")
        if section is None:
            parsed.findings.append(
                LintFinding(source, line, "a setting outside any [section]: systemd ignores it", "no-section")
            )
        elif not equals:
            parsed.findings.append(LintFinding(source, line, "no '=' in this line: systemd ignores it", "no-equals"))
        elif not key.strip(_WHITESPACE):
            parsed.findings.append(LintFinding(source, line, "no key before '=': systemd ignores the line", "no-key"))
        elif section in known:
            parsed.assignments.append(
                Assignment(source, line, section, key.strip(_WHITESPACE), value.strip(_WHITESPACE))
            )
    return parsed


def split_words(value: str, unquote: bool) -> tuple[list[str], bool]:
    """systemd's extract_first_word, repeated: the words, and whether it stopped at invalid syntax.

    A backslash takes the next character literally; quotes group words only where the setting unquotes
    (SystemCallFilter= does not: its quotes are part of the names).
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote: str | None = None
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                return words, True
            current.append(following)
            in_word = True
        elif quote is not None:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif unquote and char in "'\"":
            quote, in_word = char, True
        elif char in _WHITESPACE:
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if quote is not None:
        return words, True
    if in_word:
        words.append("".join(current))
    return words, False
