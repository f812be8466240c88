"""Fixtures of the generator tests: the real traces committed under traces/ and tests/fixtures/traces/, loaded once."""

import contextlib
import functools
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from generators.profile import Profile, build_profile
from generators.systemd.format import SystemdFormat
from generators.systemd.groups import committed_syscall_groups
from profiler import trace
from profiler.errors import TracingError
from profiler.recording.session import RecordOptions, record
from profiler.recording.targets import CommandTarget
from profiler.trace import Trace
from tests.generators.systemd_manager import SystemManager, cannot_run_system_manager
from tests.generators.systemd_manager import system_manager as running_system_manager

REPOSITORY = Path(__file__).resolve().parents[2]


@functools.cache
def _committed(name: str) -> tuple[str, Trace]:
    """A trace of traces/, or of tests/fixtures/traces/ (traces that show what traces/ lacks), by name."""
    source = f"traces/{name}.trace.json"
    if not (REPOSITORY / source).exists():
        source = f"tests/fixtures/traces/{name}.trace.json"
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


@pytest.fixture
def systemd() -> SystemdFormat:
    """The systemd format with the committed group table of systemd 252, so outputs do not depend on this host."""
    return SystemdFormat(committed_syscall_groups())


@contextlib.contextmanager
def _directory_of_its_own(tree: str) -> Iterator[Path]:
    """A name of the test's own in a tree whose directories systemd makes (not made here), removed after with what
    DynamicUser=yes leaves of it: NAME a symlink to private/NAME, and that directory."""
    path = Path(tree) / f"profiler-test-{secrets.token_hex(4)}"
    try:
        yield path
    finally:
        if path.is_symlink():
            path.unlink()
        for each in (path, Path(tree) / "private" / path.name):
            shutil.rmtree(each, ignore_errors=True)


@pytest.fixture
def cache() -> Iterator[Path]:
    """A cache directory of the test's own under /var/cache, not there yet: CacheDirectory=NAME makes it."""
    with _directory_of_its_own("/var/cache") as path:
        yield path


@pytest.fixture
def state() -> Iterator[Path]:
    """A state directory of the test's own under /var/lib, not there yet: StateDirectory=NAME makes it."""
    with _directory_of_its_own("/var/lib") as path:
        yield path


@pytest.fixture
def systemd_analyze() -> None:
    """systemd's own reading, the oracle of the systemd format tests: they skip where it is not installed."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")


@pytest.fixture
def systemd_units() -> Path:
    """Unit files written in the styles found in the wild, some with drop-in directories."""
    return REPOSITORY / "tests" / "fixtures" / "systemd"


@pytest.fixture
def golden() -> Callable[[str, str], None]:
    """Compare a text with tests/generators/golden/NAME; PROFILER_UPDATE_GOLDEN=1 rewrites the file instead."""

    def check(name: str, text: str) -> None:
        path = REPOSITORY / "tests" / "generators" / "golden" / name
        if os.environ.get("PROFILER_UPDATE_GOLDEN"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert text == path.read_text(), f"{name} changed: rerun with PROFILER_UPDATE_GOLDEN=1 and read the diff"

    return check


@contextlib.contextmanager
def _environment(cwd: Path | None, env: Mapping[str, str] | None) -> Iterator[None]:
    """The recorded command's working directory and environment, as its deployment gives them; restored after."""
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def recorded_profile(*argv: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Profile:
    """The profile of one real run of argv (from cwd, with exactly env where given), recorded with the eBPF
    tracer; skips where tracing cannot run."""
    try:
        with _environment(cwd, env):
            recording = record(CommandTarget(tuple(argv)), RecordOptions(component=Path(argv[0]).name))
    except TracingError as error:
        pytest.skip(str(error))
    assert recording.exit_status == 0
    return build_profile([(f"{Path(argv[0]).name}.trace.json", recording.trace)])


@pytest.fixture
def system_manager(tmp_path: Path) -> Iterator[SystemManager]:
    """systemd as a system manager in namespaces of its own (systemd_manager.py), for settings the user manager
    cannot set up; it skips where it cannot run."""
    reason = cannot_run_system_manager()
    if reason:
        pytest.skip(reason)
    with running_system_manager(tmp_path) as manager:
        yield manager
