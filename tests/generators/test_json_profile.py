"""The json format: the profile with its evidence and derived policy, deterministic, and read back whole."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generators.interface import RenderOptions
from generators.json_profile import JsonProfileFormat, load_profile, parse_profile
from generators.profile import Profile
from profiler.errors import TraceFormatError
from tests.generators.conftest import LoadTraces
from tests.generators.profile_builders import profiles

Golden = Callable[[str, str], None]


def test_golden_profile(committed_profile: LoadTraces, golden: Golden) -> None:
    golden("json/chown.json", JsonProfileFormat().render(committed_profile("chown"), RenderOptions()))


def test_the_policy_part_says_what_the_other_formats_derive(committed_profile: LoadTraces) -> None:
    profile = committed_profile("git-clone", "git-clone-bare", "git-clone-shallow")
    document = json.loads(JsonProfileFormat().render(profile, RenderOptions(min_runs=3)))
    policy = document["policy"]
    assert document["options"] == {"portability": True, "min_runs": 3, "command_lines": False}
    assert policy["capability_bounding_set"] == [] and policy["denied_capabilities"] == ["CAP_DAC_OVERRIDE"]
    assert {"name": "gettimeofday", "why": "answered by the vDSO where the clocksource allows"} in policy["syscalls"][
        "added"
    ]
    assert "statx" in policy["syscalls"]["enosys"] and "clone3" in policy["syscalls"]["allowed"]
    assert "socket" in policy["uncertain"]["syscalls"] and "read" not in policy["uncertain"]["syscalls"]
    assert policy["recorded_unprivileged"] is True
    assert document["profile"]["runs"][0]["source"] == "traces/git-clone.trace.json"


@settings(max_examples=150, deadline=None)
@given(profile=profiles(), min_runs=st.integers(1, 3))
def test_render_then_read_gives_the_same_profile(profile: Profile, min_runs: int) -> None:
    text = JsonProfileFormat().render(profile, RenderOptions(min_runs=min_runs))
    assert text == JsonProfileFormat().render(profile, RenderOptions(min_runs=min_runs))
    assert parse_profile(text, "p.json") == profile


def test_a_committed_profile_survives_a_file(committed_profile: LoadTraces, tmp_path: Path) -> None:
    profile = committed_profile("curl-fetch")
    path = tmp_path / "curl.profile.json"
    path.write_text(JsonProfileFormat().render(profile, RenderOptions(command_lines=True)))
    assert load_profile(path) == profile


def test_a_profile_names_each_run_by_its_program_unless_asked(committed_profile: LoadTraces) -> None:
    profile = committed_profile("curl-fetch")
    assert len(profile.runs[0].command) > 1
    document = json.loads(JsonProfileFormat().render(profile, RenderOptions()))
    assert document["options"]["command_lines"] is False
    assert [run["command"] for run in document["profile"]["runs"]] == [["curl"]]
    whole = json.loads(JsonProfileFormat().render(profile, RenderOptions(command_lines=True)))
    assert whole["profile"]["runs"][0]["command"] == list(profile.runs[0].command)


def _document(**changes: object) -> str:
    return json.dumps({"schema": "profiler-profile", "schema_version": 1, "profile": {}, **changes})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\xff", "p.json: not a profiler profile (not JSON text); give a file of --format json"),
        (b'{"schema": "profiler-trace"}', 'p.json: not a profiler profile (no "schema": "profiler-profile")'),
        (_document(schema_version=2).encode(), "p.json: profile schema_version 2; this profiler reads 1"),
        (_document().encode(), "p.json: invalid profile at profile.component: Field required"),
    ],
)
def test_bad_files_are_one_line_errors(content: bytes, message: str) -> None:
    with pytest.raises(TraceFormatError) as error:
        parse_profile(content, "p.json")
    assert str(error.value) == message


def test_a_field_this_version_does_not_write_is_refused(committed_profile: LoadTraces) -> None:
    document = json.loads(JsonProfileFormat().render(committed_profile("chown"), RenderOptions()))
    document["profile"]["syscalls"][0]["origin"] = "elsewhere"
    with pytest.raises(TraceFormatError, match=r"p.json: not a profile this profiler writes: "
                       r"profile.syscalls\[0\].origin is not a field of this version$"):  # fmt: skip
        parse_profile(json.dumps(document), "p.json")


def test_a_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match=r"is a directory; give a profile file$"):
        load_profile(tmp_path)


@pytest.mark.parametrize("path", ["", "etc/passwd", "/srv/../etc/passwd", "/srv/app/", "//srv/app"])
def test_a_path_a_trace_could_not_hold_is_one_line(committed_profile: LoadTraces, path: str) -> None:
    """The sandbox settings read paths as a trace holds them (absolute and normalised): a relative one sent the
    systemd renderer, and so `run --policy profile.json`, into an endless loop."""
    document = json.loads(JsonProfileFormat().render(committed_profile("pip-audit"), RenderOptions()))
    document["profile"]["sandbox"]["files"][3]["path"] = path
    with pytest.raises(TraceFormatError) as error:
        parse_profile(json.dumps(document), "p.json")
    assert str(error.value) == (
        f'p.json: invalid profile at profile.sandbox.files[3].path: "{path}" is not an absolute, normalised path'
    )
