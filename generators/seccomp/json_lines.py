"""JSON with the line of every value: a tokenizer that locates each value of a document, for findings with lines."""

import json
import re
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from profiler.errors import PolicyParseError

JsonPath = tuple[str | int, ...]


def render_path(path: JsonPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the top level"


# A JSON token: a string (unrolled, so a long one is one linear match), punctuation, or a number or literal.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


# A line without these, even inside strings, holds only scalars and commas.
_STRUCTURE = re.compile(r"[{}\[\]:]")


@dataclass(slots=True)
class _ObjectLines:
    line: int  # where the member or item holding the object starts
    members: dict[str, "int | _ObjectLines | _ListLines"]  # a scalar member's key line, or the nested lines


@dataclass(slots=True)
class _ListLines:
    line: int
    items: "array[int]"  # the line each item starts on: four bytes an item, however long the list
    children: "list[_ObjectLines | _ListLines | None] | None" = None  # per item, where any item is a container


_Lines = _ObjectLines | _ListLines


class _LineTree(Mapping[JsonPath, int]):
    """The line of each path of a document, held as a tree shaped like it rather than as a key per path."""

    def __init__(self, root: _Lines | int | None):
        self.root = root

    def __getitem__(self, path: JsonPath) -> int:
        node: _Lines | int | None = self.root
        for part in path:
            if isinstance(node, _ObjectLines) and isinstance(part, str) and part in node.members:
                node = node.members[part]
            elif isinstance(node, _ListLines) and isinstance(part, int) and 0 <= part < len(node.items):
                child = node.children[part] if node.children is not None else None
                node = child if child is not None else node.items[part]
            else:
                raise KeyError(path)
        if node is None:
            raise KeyError(path)
        return node if isinstance(node, int) else node.line

    def __iter__(self) -> Iterator[JsonPath]:
        pending: list[tuple[JsonPath, _Lines | int | None]] = [((), self.root)]
        while pending:
            path, node = pending.pop()
            if node is None:
                continue
            yield path
            if isinstance(node, _ObjectLines):
                pending += [((*path, key), member) for key, member in node.members.items()]
            elif isinstance(node, _ListLines):
                children = node.children or [None] * len(node.items)
                for index, (line, child) in enumerate(zip(node.items, children, strict=True)):
                    pending.append(((*path, index), child or line))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class JsonLines:
    """Where each key and array item of a JSON text starts, and the keys given twice in one object."""

    lines: Mapping[JsonPath, int]
    repeated: tuple[tuple[JsonPath, int], ...]  # (path, line of the later key): Go and Python keep its value


def json_value_lines(text: str) -> JsonLines:
    """The lines of a JSON text that json.loads accepted, in one pass over its tokens with a stack of the open
    containers: linear time, and memory for a tree of lines rather than for the tokens or every path.

    JSON strings hold no raw line break, so the text is read line by line, each line's tokens at once; a line of
    a list that holds only scalars (the names of a pretty-printed profile) is counted, not walked. A key given
    twice keeps the line of its first occurrence and the nested lines of its later value, which is the one Go
    and Python keep.
    """
    root: _Lines | int | None = None
    stack: list[_Lines] = []
    parts: list[str | int] = []  # the path of the innermost open container
    repeated: list[tuple[JsonPath, int]] = []
    top: _Lines | None = None
    key: str | None = None
    key_line = 0
    for line, physical in enumerate(text.split("\n"), start=1):
        tokens = _TOKEN.findall(physical)
        if isinstance(top, _ListLines) and not _STRUCTURE.search(physical):
            scalars = len(tokens) - tokens.count(",")
            top.items.extend([line] * scalars)
            if top.children is not None:
                top.children.extend([None] * scalars)
            continue
        for token in tokens:
            first = token[0]
            if first == "," or first == ":":
                continue
            if first == "}" or first == "]":
                stack.pop()
                top = stack[-1] if stack else None
                if stack:
                    parts.pop()
                continue
            if key is None and isinstance(top, _ObjectLines):
                key = json.loads(token) if "\\" in token else token[1:-1]
                key_line = line
                continue
            node: _Lines | None = None
            if first == "{":
                node = _ObjectLines(line, {})
            elif first == "[":
                node = _ListLines(line, array("I"))
            part: str | int
            if isinstance(top, _ObjectLines):
                assert key is not None
                earlier = top.members.get(key)
                if earlier is not None:
                    repeated.append(((*parts, key), key_line))
                    key_line = earlier if isinstance(earlier, int) else earlier.line
                if node is not None:
                    node.line = key_line
                top.members[key] = node or key_line
                part, key = key, None
            elif isinstance(top, _ListLines):
                part = len(top.items)
                top.items.append(line)
                if node is not None and top.children is None:
                    top.children = [None] * part
                if top.children is not None:
                    top.children.append(node)
            else:
                root, part = node or line, 0
            if node is not None:
                if top is not None:
                    parts.append(part)
                stack.append(node)
                top = node
    return JsonLines(_LineTree(root), tuple(repeated))


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def policy_text(content: str | bytes, source: str, what: str) -> str:
    """The text of a policy file that is not empty; binary junk or an empty file is one PolicyParseError line."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyParseError(f"{source}: not {what} (not UTF-8 text)") from None
    if not content.strip():
        raise PolicyParseError(f"{source}: empty file; give {what}")
    return content


def decode_json(content: str | bytes, source: str, what: str) -> object:
    """JSON as Go's encoding/json accepts it; anything else is one PolicyParseError line."""
    text = policy_text(content, source, what)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        if not text.lstrip().startswith(("{", "[")):
            raise PolicyParseError(f"{source}: not {what} (not JSON)") from None
        # An error at the very end is what a file cut short gives.
        truncated = ", perhaps truncated" if error.pos >= len(text.rstrip()) else ""
        raise PolicyParseError(
            f"{source}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno}){truncated}"
        ) from None
    except ValueError as error:
        raise PolicyParseError(f"{source}: not valid JSON: {error}") from None
    except RecursionError:
        raise PolicyParseError(f"{source}: not {what} (nested too deeply)") from None
