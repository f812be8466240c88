"""Fixtures of the generator tests: the real traces committed under traces/, loaded once."""

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from generators.profile import Profile, build_profile
from profiler import trace
from profiler.trace import Trace

REPOSITORY = Path(__file__).resolve().parents[2]


@functools.cache
def _committed(name: str) -> tuple[str, Trace]:
    source = f"traces/{name}.trace.json"
    return source, trace.load(REPOSITORY / source)


LoadTraces = Callable[..., Profile]


@pytest.fixture
def committed_profile() -> LoadTraces:
    """The profile of committed traces by name: committed_profile("git-clone", "git-clone-bare")."""

    def load(*names: str) -> Profile:
        return build_profile([_committed(name) for name in names])

    return load


@pytest.fixture
def committed_trace() -> Callable[[str], tuple[str, Trace]]:
    """A committed trace by name, with the source name it goes by: ("traces/NAME.trace.json", Trace)."""
    return _committed
