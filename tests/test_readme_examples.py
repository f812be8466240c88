"""The README's examples are produced by the commands it shows: each is run again and its output compared.

A README example is an indented block with a `$ profiler ...` line (what comes before its first `$` line is
a file it shows). Its commands run in order, in a
scratch directory that sees the repository's traces, fixtures and examples, with the `profiler` of this
environment first on PATH. An output that holds a line `...` is an excerpt: its pieces between those lines
must appear in the real output, in order. Recording examples are left out: they depend on the machine and
the moment, and tests/recording covers what they claim.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
ELLIPSIS = re.compile(r"^\s*\.\.\.\s*$")


@dataclass(frozen=True)
class Step:
    command: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    line: int
    steps: tuple[Step, ...]


def indented_blocks(text: str) -> list[tuple[int, list[str]]]:
    """The README's code blocks (lines indented by four spaces; blank lines inside them kept), unindented."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("    "):
            if not current:
                start = number
            current.append(line[4:])
        elif not line.strip() and current:
            current.append("")
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return [(start, _without_trailing_blanks(block)) for start, block in blocks]


def _without_trailing_blanks(block: list[str]) -> list[str]:
    while block and not block[-1]:
        block = block[:-1]
    return block


def examples(text: str) -> list[Example]:
    found = []
    for start, block in indented_blocks(text):
        commands = [number for number, line in enumerate(block) if line.startswith("$ ")]
        if not any(block[number].startswith("$ profiler ") for number in commands) or any(
            "profiler record" in line for line in block
        ):
            continue
        steps: list[Step] = []
        command: list[str] = []
        expected: list[str] = []
        lines = iter(block[commands[0] :])
        for line in lines:
            if line.startswith("$ "):
                if command:
                    steps.append(Step(" ".join(command), tuple(_without_trailing_blanks(expected))))
                command, expected = [line[2:]], []
                while command[-1].endswith("\\"):
                    command[-1] = command[-1][:-1].rstrip()
                    command.append(next(lines).strip())
            else:
                expected.append(line)
        steps.append(Step(" ".join(command), tuple(_without_trailing_blanks(expected))))
        found.append(Example(start, tuple(steps)))
    return found


README_EXAMPLES = examples((REPOSITORY / "README.md").read_text())


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Whether actual is expected, or holds each piece of an excerpt (split at `...` lines) in order."""
    if not any(ELLIPSIS.match(line) for line in expected):
        return list(expected) == actual
    pieces: list[list[str]] = [[]]
    for line in expected:
        if ELLIPSIS.match(line):
            pieces.append([])
        else:
            pieces[-1].append(line)
    position = 0
    for piece in filter(None, pieces):
        while position + len(piece) <= len(actual) and actual[position : position + len(piece)] != piece:
            position += 1
        if position + len(piece) > len(actual):
            return False
        position += len(piece)
    return True


def test_the_readme_has_the_examples_this_test_runs() -> None:
    commands = [step.command for example in README_EXAMPLES for step in example.steps]
    assert len(README_EXAMPLES) >= 12
    assert any(command.startswith("profiler check --policy examples/git-clone.service") for command in commands)
    assert any("--format oci --args" in command for command in commands)


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda example: f"README.md:{example.line}")
def test_a_readme_example_prints_what_the_readme_shows(example: Example, tmp_path: Path) -> None:
    for name in ("traces", "tests", "examples"):
        (tmp_path / name).symlink_to(REPOSITORY / name)
    profiler = shutil.which("profiler", path=str(Path(sys.executable).parent))
    assert profiler, "the profiler command is not installed next to this Python (make install)"
    environment = {**os.environ, "PATH": f"{Path(profiler).parent}{os.pathsep}{os.environ['PATH']}"}
    status = 0
    for step in example.steps:
        # Each command runs in a shell of its own, which starts with the status the one before left (`echo $?`).
        result = subprocess.run(
            ["sh", "-c", f"(exit {status}); {step.command}"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        status = result.returncode
        actual = _without_trailing_blanks((result.stdout + result.stderr).splitlines())
        assert matches(step.expected, actual), f"README.md:{example.line}: `{step.command}` printed\n" + "\n".join(
            actual
        )


@pytest.mark.parametrize(
    ("expected", "actual", "verdict"),
    [
        (("a", "b"), ["a", "b"], True),
        (("a", "b"), ["a", "b", "c"], False),
        (("a", "...", "c"), ["a", "b", "c"], True),
        (("...", "b", "c"), ["a", "b", "c"], True),
        (("c", "...", "a"), ["a", "b", "c"], False),
        (("a", "  ...", "d"), ["a", "b", "c"], False),
    ],
)
def test_an_excerpt_matches_its_pieces_in_order(expected: tuple[str, ...], actual: list[str], verdict: bool) -> None:
    assert matches(expected, actual) is verdict
