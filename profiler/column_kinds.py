"""What a value read from a trace file may be: kinds that check a whole column at once (with C-level builtins
where they can), read it into the values the model holds, and describe themselves in JSON Schema."""

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from profiler import byte_strings

TEXT_LIMIT: Final = 512  # profiler's own text (reasons), and KSYM_NAME_LEN for kernel function names
TEXT_CHARACTER: Final = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"  # printable, no line breaks


class BadValue(Exception):
    """A value a trace may not hold: at which row of its column, and why."""

    def __init__(self, row: int, problem: str) -> None:
        self.row = row
        self.problem = problem


def shown(value: object) -> str:
    """A value from a file, as an error message may show it: JSON, ASCII, and at most 60 characters."""
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, list | dict) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


class Kind:
    """What the values of one column (or one field) may be; read() checks a whole column at once, with C-level
    builtins where it can, and returns the values as the model holds them."""

    nullable: bool = False

    def read(self, values: Sequence[Any]) -> Sequence[Any]:
        present = [value for value in values if value is not None] if self.nullable else values
        try:
            if self._fast_ok(present):
                return values
        except TypeError:  # an unhashable or unordered value: found below
            pass
        for row, value in enumerate(values):
            if value is None and self.nullable:
                continue
            if not self._ok(value):
                raise BadValue(row, f"must be {self.expected()}, not {shown(value)}")
        return values

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return all(map(self._ok, values))

    def _ok(self, value: Any) -> bool:
        raise NotImplementedError

    def expected(self) -> str:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        schema = self.schema()
        return {"anyOf": [schema, {"type": "null"}]} if self.nullable else schema


@dataclass(frozen=True)
class Integer(Kind):
    low: int
    high: int
    nullable: bool = False

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return not values or (set(map(type, values)) == {int} and min(values) >= self.low and max(values) <= self.high)

    def _ok(self, value: Any) -> bool:
        return type(value) is int and self.low <= value <= self.high

    def expected(self) -> str:
        return f"an integer from {self.low} to {self.high}" + (" or null" if self.nullable else "")

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Seconds(Kind):
    """Seconds as a finite number (version 1 times, and the run's duration)."""

    high: float
    nullable: bool = False

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return not values or (set(map(type, values)) <= {int, float} and min(values) >= 0 and max(values) <= self.high)

    def _ok(self, value: Any) -> bool:
        return type(value) in (int, float) and math.isfinite(value) and 0 <= value <= self.high

    def expected(self) -> str:
        return f"a number of seconds from 0 to {self.high:g}" + (" or null" if self.nullable else "")

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": 0, "maximum": self.high}


@dataclass(frozen=True)
class Boolean(Kind):
    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return set(map(type, values)) <= {bool}

    def _ok(self, value: Any) -> bool:
        return type(value) is bool

    def expected(self) -> str:
        return "true or false"

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Kind):
    values: tuple[str, ...]
    nullable: bool = False

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return set(values) <= set(self.values) and set(map(type, values)) <= {str}

    def _ok(self, value: Any) -> bool:
        return type(value) is str and value in self.values

    def expected(self) -> str:
        return "one of " + ", ".join(self.values) + (" or null" if self.nullable else "")

    def schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}


@dataclass(frozen=True)
class Text(Kind):
    """profiler's own text, or a name from a fixed alphabet: a pattern of printable characters."""

    pattern: str
    what: str
    nullable: bool = False

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        matches = re.compile(self.pattern).fullmatch
        return set(map(type, values)) <= {str} and all(map(matches, set(values)))

    def _ok(self, value: Any) -> bool:
        return type(value) is str and re.fullmatch(self.pattern, value) is not None

    def expected(self) -> str:
        return self.what + (" or null" if self.nullable else "")

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{self.pattern}$"}


def text(what: str, limit: int = TEXT_LIMIT, nullable: bool = False) -> Text:
    return Text(f"{TEXT_CHARACTER}{{1,{limit}}}", f"{what} (1 to {limit} printable characters)", nullable)


@dataclass(frozen=True)
class ByteString(Kind):
    """Bytes from Linux: in version 2 as profiler.byte_strings writes them; in version 1 plain text."""

    limit: int
    escaped: bool
    nullable: bool = False

    def read(self, values: Sequence[Any]) -> Sequence[Any]:
        decoded: dict[str, str] = {}
        for row, value in enumerate(values):
            if value is None and self.nullable:
                continue
            if type(value) is not str:
                raise BadValue(row, f"must be {self.expected()}, not {shown(value)}")
            if value in decoded:
                continue
            try:
                decoded[value] = self._decode(value)
            except byte_strings.ByteStringError as error:
                raise BadValue(row, f"not a byte string as a trace writes one: {error}") from None
        return [decoded[value] if value is not None else None for value in values]

    def _decode(self, value: str) -> str:
        if self.escaped:
            return byte_strings.decode(value, self.limit)
        byte_strings.decode(value.replace("\\", "\\\\"), self.limit)  # the same limits on version 1's text
        return value

    def expected(self) -> str:
        return "a string" + (" or null" if self.nullable else "")

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": r"^(?:[^\\\x00]|\\\\|\\x[0-9a-f]{2})*$",
            "description": f"bytes, at most {self.limit}: UTF-8 where they are, \\xNN for a byte that is not, "
            "\\\\ for a backslash",
        }


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind
    most: int

    def read(self, values: Sequence[Any]) -> Sequence[Any]:
        for row, value in enumerate(values):
            if type(value) is not list or len(value) > self.most:
                raise BadValue(row, f"must be a list of at most {self.most} items, not {shown(value)}")
        flat = [item for value in values for item in value]
        try:
            read = self.item.read(flat)
        except BadValue as bad:
            raise BadValue(_row_of_item(values, bad.row), bad.problem) from None
        items = iter(read)
        return [tuple(next(items) for _ in value) for value in values]

    def expected(self) -> str:
        return "a list"

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.json_schema(), "maxItems": self.most}


def _row_of_item(values: Sequence[list[Any]], item: int) -> int:
    """The row of a list column that holds the item-th item of all of them."""
    for row, value in enumerate(values):
        if item < len(value):
            return row
        item -= len(value)
    raise AssertionError(f"no item {item}")


class Column(NamedTuple):
    name: str
    kind: Kind
    description: str


def integer(low: int, high: int, nullable: bool = False) -> Integer:
    return Integer(low, high, nullable)


@dataclass(frozen=True)
class Array(Kind):
    """A list whose items are read elsewhere (version 1's images)."""

    def _fast_ok(self, values: Sequence[Any]) -> bool:
        return set(map(type, values)) <= {list}

    def _ok(self, value: Any) -> bool:
        return type(value) is list

    def expected(self) -> str:
        return "a list"

    def schema(self) -> dict[str, Any]:
        return {"type": "array"}
