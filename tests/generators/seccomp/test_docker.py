"""The docker format: the script of `docker run` flags, run by sh with a stand-in docker that prints what it gets."""

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from generators.interface import RenderOptions
from generators.profile import Profile, RunRef
from generators.seccomp.docker import DockerFormat
from profiler.trace import CapabilitySource
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import make_profile

Golden = Callable[[str, str], None]


@pytest.fixture
def docker_arguments(tmp_path: Path) -> Callable[[str, str], list[str]]:
    """Runs a rendered script with sh, a stand-in `docker` on PATH, and returns the arguments docker received."""
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    stand_in = tmp_path / "bin" / "docker"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    stand_in.chmod(0o755)

    def run(script: str, *arguments: str) -> list[str]:
        path = tmp_path / "run.sh"
        path.write_text(script)
        subprocess.run(["sh", "-n", str(path)], check=True)
        done = subprocess.run(
            ["sh", str(path), *arguments],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": f"{stand_in.parent}:/usr/bin:/bin"},
        )
        return done.stdout.splitlines()

    return run


def test_golden_scripts(committed_profile: LoadTraces, golden: Golden) -> None:
    golden("docker/chown.sh", DockerFormat().render(committed_profile("chown"), RenderOptions()))
    three = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    golden("docker/git-clone.sh", DockerFormat().render(three, RenderOptions(seccomp_file="/etc/profiler/git.json")))


def test_docker_gets_the_flags_then_the_image(
    committed_profile: LoadTraces, docker_arguments: Callable[..., list[str]]
) -> None:
    script = DockerFormat().render(committed_profile("chown"), RenderOptions())
    assert docker_arguments(script, "debian:12", "chown", "nobody", "/tmp/f") == [
        "run",
        "--cap-drop=ALL",
        "--cap-add=CHOWN",
        "--security-opt=no-new-privileges",
        "--security-opt=seccomp=chown.seccomp.json",
        "debian:12",
        "chown",
        "nobody",
        "/tmp/f",
    ]


def test_an_odd_file_name_reaches_docker_whole(docker_arguments: Callable[..., list[str]]) -> None:
    script = DockerFormat().render(
        make_profile(), RenderOptions(seccomp_file="my profiles/$HOME's.json", comments=False)
    )
    assert docker_arguments(script, "img")[-2:] == ["--security-opt=seccomp=my profiles/$HOME's.json", "img"]


def test_a_non_root_run_that_needed_capabilities_keeps_new_privileges() -> None:
    script = DockerFormat().render(make_profile(needed=["CAP_NET_BIND_SERVICE"], uid=65534), RenderOptions())
    assert "--cap-add=NET_BIND_SERVICE \\" in script
    assert "no-new-privileges \\" not in script
    assert (
        "# No-new-privileges is left off: the runs ran as svc (uid 65534) and still used CAP_NET_BIND_SERVICE" in script
    )


def test_refused_and_user_namespace_capabilities_are_explained_not_added() -> None:
    profile = make_profile(denied=["CAP_DAC_OVERRIDE"], user_namespace_only=["CAP_SYS_ADMIN"])
    script = DockerFormat().render(profile, RenderOptions())
    assert "--cap-add=" not in script
    assert "# CAP_DAC_OVERRIDE was attempted and refused in the traces, so it is not added" in script
    assert "# CAP_SYS_ADMIN is not added: it was needed only inside a user namespace the workload created" in script


def test_unknown_capabilities_leave_the_runtime_defaults(docker_arguments: Callable[..., list[str]]) -> None:
    profile: Profile = make_profile(capability_source=CapabilitySource.NONE)
    script = DockerFormat().render(profile, RenderOptions())
    assert docker_arguments(script) == [
        "run",
        "--security-opt=no-new-privileges",
        "--security-opt=seccomp=svc.seccomp.json",
    ]
    assert "# Capabilities are left as the runtime's defaults: the kernel could not report capability checks" in script


def test_without_comments_only_the_command_remains() -> None:
    profile = replace(make_profile(), runs=(replace(make_profile().runs[0], source="a\nb"),))
    assert isinstance(profile.runs[0], RunRef)
    script = DockerFormat().render(profile, RenderOptions(comments=False))
    assert [line for line in script.splitlines() if line.startswith("#")] == ["#!/bin/sh"]
    assert "a\\nb" in DockerFormat().render(profile, RenderOptions())
