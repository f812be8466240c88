"""profiler.pipeline: the commands as functions a notebook calls, giving what the CLI prints; options checked."""

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generators import reports
from generators.interface import PolicyFormat, RenderOptions
from generators.reports.interface import ReportFormat
from profiler import pipeline
from profiler.errors import OptionError, PolicyParseError
from profiler.recording import targets
from tests.profiler.test_cli_generate import GIT, REPOSITORY, invoke

TRACES = [Path(path) for path in GIT]
UNIT = REPOSITORY / "tests" / "fixtures" / "systemd" / "deny-list.service"
CURL = REPOSITORY / "traces" / "curl-fetch.trace.json"

# The formats each option applies to, as `profiler generate --help` says.
APPLIES = {
    "groups": (PolicyFormat.SYSTEMD,),
    "argument_filters": (PolicyFormat.OCI, PolicyFormat.K8S),
    "seccomp_file": (PolicyFormat.DOCKER,),
    "namespace": (PolicyFormat.K8S,),
    "runtime": (PolicyFormat.OCI, PolicyFormat.K8S),
    "base_profile": (PolicyFormat.K8S,),
}
GIVEN: dict[str, object] = {
    "groups": True,
    "argument_filters": True,
    "seccomp_file": "git.json",
    "namespace": "ci",
    "runtime": "crun",
    "base_profile": "runc-v1",
}


@pytest.mark.parametrize("policy_format", list(PolicyFormat))
@pytest.mark.parametrize("option", sorted(APPLIES))
def test_each_option_is_refused_by_the_formats_it_does_not_apply_to(option: str, policy_format: PolicyFormat) -> None:
    given = {option: GIVEN[option]}
    if policy_format in APPLIES[option]:
        assert isinstance(pipeline.render_options(policy_format, **given), RenderOptions)  # type: ignore[arg-type]
    else:
        with pytest.raises(OptionError, match="applies to --format"):
            pipeline.render_options(policy_format, **given)  # type: ignore[arg-type]


def test_a_base_profile_and_a_runtime_exclude_each_other() -> None:
    with pytest.raises(OptionError, match="give it or --runtime, not both"):
        pipeline.render_options(PolicyFormat.K8S, base_profile="runc-v1", runtime="crun")
    assert pipeline.render_options(PolicyFormat.K8S, base_profile="runc-v1").runtimes == ()
    assert pipeline.render_options(PolicyFormat.OCI, runtime=pipeline.NO_RUNTIME).runtimes == ()


@pytest.mark.parametrize("policy_format", list(PolicyFormat))
def test_generate_gives_what_the_cli_prints(policy_format: PolicyFormat) -> None:
    text = pipeline.generate(TRACES, policy_format, pipeline.render_options(policy_format, min_runs=2))
    assert text == invoke("generate", "--format", policy_format.value, "--min-runs", "2", *GIT).stdout


def test_compare_and_drift_give_what_check_and_diff_print() -> None:
    comparison = pipeline.compare(TRACES, UNIT)
    assert (
        reports.report(ReportFormat.TEXT).comparison(comparison) == invoke("check", "--policy", str(UNIT), *GIT).stdout
    )
    drift = pipeline.drift(TRACES[0], CURL)
    assert (
        reports.report(ReportFormat.JSON).drift(drift) == invoke("diff", "--format", "json", GIT[0], str(CURL)).stdout
    )


def test_explain_gives_what_the_cli_prints() -> None:
    assert pipeline.explain(TRACES, "openat") == invoke("explain", *GIT, "openat").stdout


def test_a_systemd_unit_takes_no_runtime() -> None:
    with pytest.raises(OptionError, match="systemd starts units itself"):
        pipeline.compare(TRACES, UNIT, runtime="crun")


def test_a_policy_format_comes_from_the_name_or_is_asked_for(tmp_path: Path) -> None:
    assert pipeline.read_policy(UNIT).format is PolicyFormat.SYSTEMD
    unnamed = tmp_path / "policy.txt"
    unnamed.write_bytes(UNIT.read_bytes())
    with pytest.raises(PolicyParseError, match="give --policy-format"):
        pipeline.read_policy(unnamed)
    assert pipeline.read_policy(unnamed, PolicyFormat.SYSTEMD).format is PolicyFormat.SYSTEMD


def test_importing_the_pipeline_loads_no_policy_format() -> None:
    # show and record import the pipeline through the CLI: the generators come only with the command that uses them.
    code = "import sys, profiler.pipeline; print(sorted(m for m in sys.modules if m.startswith('generators')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_cli_loads_only_the_formats_names_until_a_command_runs() -> None:
    """The CLI's options name the policy and report formats; show and schema load no profile, comparison or report
    (issue 14: each costs start-up time on every command)."""
    code = (
        "import sys, profiler.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('generators', 'pandas', 'yaml'))))"
    )
    loaded = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == str(
        [
            "generators",
            "generators.interface",
            "generators.oci_runtimes",
            "generators.reports",
            "generators.reports.interface",
        ]
    )


def test_a_drift_of_two_traces_loads_no_pydantic() -> None:
    """pydantic reads profiles that generate --format json wrote; two traces need none of it."""
    code = (
        "import sys; from pathlib import Path; from profiler import pipeline; "
        "pipeline.drift(Path('traces/git-clone-bare.trace.json'), Path('traces/git-clone.trace.json')); "
        "print('pydantic' in sys.modules)"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    assert loaded.stdout == "False\n"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "give exactly one of COMMAND (after --), --pid or --cgroup"),
        ({"command": ["true"], "pid": 1}, "give exactly one of COMMAND"),
        ({"pid": 1, "cgroup": Path("/sys/fs/cgroup")}, "give exactly one of COMMAND"),
        ({"pid": 1, "user": "nobody"}, "--user applies to a COMMAND only"),
    ],
    ids=["none", "command-and-pid", "pid-and-cgroup", "user-with-pid"],
)
def test_a_record_target_is_one_command_process_or_cgroup(given: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)):
        pipeline.record_target(**given)
    with pytest.raises(OptionError, match=re.escape(message)):
        pipeline.recorder_program(**given)
    assert message in invoke("record", *_record_arguments(given)).stderr


def _record_arguments(given: dict[str, Any]) -> list[str]:
    arguments = [f"--{name}={given[name]}" for name in ("pid", "cgroup", "user") if name in given]
    return [*arguments, "--", *given["command"]] if "command" in given else arguments


def test_a_record_target_is_what_the_options_name() -> None:
    assert pipeline.record_target(["true", "x"]) == targets.CommandTarget(("true", "x"))
    assert pipeline.record_target(["true"], user="0") == targets.CommandTarget(("true",), targets.User.lookup("root"))
    assert pipeline.record_target(pid=1) == targets.PidTarget(1)
    assert pipeline.record_target(cgroup=Path("a/b")) == targets.CgroupTarget(Path("a/b"))


def test_the_recorder_program_is_what_record_ebpf_prints() -> None:
    # The program is only printed: no user is looked up, nothing is checked but which target is given.
    program = pipeline.recorder_program(["true"], user="no-such-user")
    assert "#define" in program and program != pipeline.recorder_program(cgroup=Path("/no/such/cgroup"))
    assert invoke("record", "--ebpf", "--user", "no-such-user", "--", "true").stdout == program + "\n"
