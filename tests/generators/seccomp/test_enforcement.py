"""The OCI profile enforced for real: record a program, load its profile with libseccomp, run the program under it."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from generators.interface import RenderOptions
from generators.profile import Profile
from generators.seccomp.oci import OciFormat
from tests.generators.conftest import recorded_profile

LOADER = Path(__file__).with_name("oci_libseccomp.py")
PYTHON = ("/usr/bin/python3", "-I", "-S", "-c")
# A thread (glibc creates it with clone3), then a socket of the family given as the argument.
THREAD_AND_SOCKET = (
    "import socket, sys, threading\n"
    "worker = threading.Thread(target=print, args=('thread ran',))\n"
    "worker.start()\n"
    "worker.join()\n"
    "socket.socket(getattr(socket, sys.argv[1]), socket.SOCK_STREAM).close()\n"
    "print('socket made')\n"
)

pytestmark = pytest.mark.tracing


@pytest.fixture(scope="module")
def ls_profile() -> Profile:
    return recorded_profile("/bin/ls", "/")


@pytest.fixture(scope="module")
def python_profile() -> Profile:
    return recorded_profile(*PYTHON, THREAD_AND_SOCKET, "AF_UNIX")


@pytest.fixture(scope="module")
def unshare_profile() -> Profile:
    return recorded_profile("/usr/bin/unshare", "--user", "/bin/true")


Confine = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def confined(tmp_path: Path) -> Confine:
    """Runs a command under an OCI profile (its JSON, changed by `edit` first) the way a runtime does."""

    def run(profile_text: str, *argv: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Any:
        document = json.loads(profile_text)
        if edit:
            edit(document)
        path = tmp_path / "seccomp.json"
        path.write_text(json.dumps(document))
        return subprocess.run(
            [sys.executable, str(LOADER), str(path), *argv], capture_output=True, text=True, timeout=60
        )

    return run


def without(name: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["syscalls"] = [rule for rule in document["syscalls"] if name not in rule["names"]]

    return edit


def test_ls_runs_under_its_profile_and_fails_without_getdents64(ls_profile: Profile, confined: Confine) -> None:
    profile = OciFormat().render(ls_profile, RenderOptions())
    unconfined = subprocess.run(["/bin/ls", "/"], capture_output=True, text=True, check=True)

    allowed = confined(profile, "/bin/ls", "/")
    assert (allowed.returncode, allowed.stdout, allowed.stderr) == (0, unconfined.stdout, "")

    refused = confined(profile, "/bin/ls", "/", edit=without("getdents64"))
    assert refused.returncode == 2
    assert "Operation not permitted" in refused.stderr
    assert refused.stdout == ""


def test_argument_filters_let_the_family_seen_through_and_refuse_another(
    python_profile: Profile, confined: Confine
) -> None:
    profile = OciFormat().render(python_profile, RenderOptions(argument_filters=True))
    rules = json.loads(profile)["syscalls"]
    assert [rule["args"] for rule in rules if rule["names"] == ["socket"]] == [
        [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]
    ]

    seen = confined(profile, *PYTHON, THREAD_AND_SOCKET, "AF_UNIX")
    assert (seen.returncode, seen.stdout, seen.stderr) == (0, "thread ran\nsocket made\n", "")

    other = confined(profile, *PYTHON, THREAD_AND_SOCKET, "AF_INET6")
    assert other.returncode == 1
    assert other.stdout == "thread ran\n"
    assert "PermissionError: [Errno 1] Operation not permitted" in other.stderr


def test_clone3_answers_enosys_so_threads_fall_back_to_the_limited_clone(
    python_profile: Profile, confined: Confine
) -> None:
    assert "clone3" in python_profile.syscall_names() and "clone" not in python_profile.syscall_names()
    profile = OciFormat().render(python_profile, RenderOptions(argument_filters=True))
    rules = json.loads(profile)["syscalls"]
    clone3 = [rule for rule in rules if "clone3" in rule["names"]]
    assert [(rule["names"], rule["action"], rule["errnoRet"]) for rule in clone3] == [
        (["clone3"], "SCMP_ACT_ERRNO", 38)
    ]
    assert [rule["args"] for rule in rules if rule["names"] == ["clone"]] == [
        [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    ]

    fallback = confined(profile, *PYTHON, THREAD_AND_SOCKET, "AF_UNIX")
    assert (fallback.returncode, fallback.stdout) == (0, "thread ran\nsocket made\n")

    def clone3_eperm(document: dict[str, Any]) -> None:
        for rule in document["syscalls"]:
            if rule["names"] == ["clone3"]:
                rule["errnoRet"] = 1

    no_fallback = confined(profile, *PYTHON, THREAD_AND_SOCKET, "AF_UNIX", edit=clone3_eperm)
    assert no_fallback.returncode == 1
    assert "can't start new thread" in no_fallback.stderr


def test_unshare_limited_to_the_namespace_types_seen(unshare_profile: Profile, confined: Confine) -> None:
    assert unshare_profile.namespace_types() == ("user",)
    profile = OciFormat().render(unshare_profile, RenderOptions(argument_filters=True))

    seen = confined(profile, "/usr/bin/unshare", "--user", "/bin/true")
    assert (seen.returncode, seen.stderr) == (0, "")

    # unshare fails, and says so on stderr: write is allowed as the runtimes' (they report through it).
    more = confined(profile, "/usr/bin/unshare", "--user", "--net", "/bin/true")
    assert more.returncode == 1
    assert more.stderr.startswith("unshare: unshare failed: Operation not permitted\n")

    unlimited = OciFormat().render(unshare_profile, RenderOptions())
    more_unlimited = confined(unlimited, "/usr/bin/unshare", "--user", "--net", "/bin/true")
    assert (more_unlimited.returncode, more_unlimited.stderr) == (0, "")
