"""Issue 13: nothing from a trace becomes policy. For any trace, hostile wherever the model allows a string, each
generated output read back by its consumer holds exactly the profile's items and nothing else; a name that is
not a name is refused, never written.

Consumers: systemd itself (systemd-analyze verify and security) and our reader for drop-ins, libseccomp for the
OCI profile, PyYAML for the SeccompProfile, sh running the docker script with a stand-in docker, and the json
profile's own reader. systemd-analyze takes about 0.2 s a call, so its property runs fewer examples.
"""

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from generators import formats
from generators.compare import compare
from generators.comparison import ItemKind
from generators.formats import correction
from generators.interface import PolicyFormat, RenderOptions
from generators.json_profile import JsonProfileFormat, parse_profile
from generators.policy_names import policy_name
from generators.profile import WRITE_OPS, Profile
from generators.sandbox import API_TREES, is_under
from generators.seccomp.docker import DockerFormat, seccomp_file_name
from generators.seccomp.k8s import KubernetesFormat, object_name
from generators.seccomp.oci import OciFormat
from generators.seccomp.privileges import container_privileges
from generators.syscall_plan import plan_syscalls
from generators.systemd.format import SystemdFormat
from generators.systemd.names import SETTINGS
from profiler import syscalls
from profiler.errors import NotANameError
from tests.generators import systemd_analyze
from tests.generators.hostile_traces import hostile_names, hostile_profiles
from tests.generators.seccomp import oci_libseccomp
from tests.generators.systemd.test_render import _expected, _observed

CONSUMER_RUNS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LIBRARY_RUNS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OPTIONS = (RenderOptions(), RenderOptions(comments=False), RenderOptions(command_lines=True, min_runs=2))
WRITTEN = ("SystemCallFilter", "SystemCallErrorNumber", "SystemCallArchitectures", "CapabilityBoundingSet",
           "AmbientCapabilities", "RestrictAddressFamilies", "RestrictNamespaces", "NoNewPrivileges")  # fmt: skip


def _written_lines(text: str) -> list[str]:
    """The lines systemd 252 sees: it ends a line at LF, CR and NUL."""
    return [line for line in re.split(r"\r\n|\r|\n|\x00", text) if line]


# --- systemd ---------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("systemd_analyze")
@CONSUMER_RUNS
@given(profile=hostile_profiles())
def test_systemd_reads_a_hostile_drop_in_as_the_profile_says(systemd: SystemdFormat, profile: Profile) -> None:
    for options in OPTIONS[::2]:
        drop_in = systemd.render(profile, options)
        for line in _written_lines(drop_in):
            assert line.startswith("# ") or line == "[Service]" or line.partition("=")[0] in WRITTEN, line
        with tempfile.TemporaryDirectory() as directory:
            unit = systemd_analyze.write_unit(Path(directory), "svc", drop_in)
            assert systemd_analyze.verify_warnings(unit) == []
            policy = systemd.read(unit)
            assert _observed(policy, profile.abis()) == _expected(systemd, profile, options)
            checks = systemd_analyze.security_checks(unit)
            expected = systemd_analyze.expected_checks(policy, systemd.groups, set(checks))
            assert {name: checks[name] for name in expected} == expected


@LIBRARY_RUNS
@given(profile=hostile_profiles())
def test_our_reader_reads_a_hostile_drop_in_as_the_profile_says(systemd: SystemdFormat, profile: Profile) -> None:
    for options in OPTIONS:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "profiler.conf"
            path.write_text(systemd.render(profile, options))
            policy = systemd.read(path)
        assert _observed(policy, profile.abis()) == _expected(systemd, profile, options)
        assert policy.findings == ()


@pytest.mark.usefixtures("systemd_analyze")
@CONSUMER_RUNS
@given(profile=hostile_profiles(paths=True))
def test_systemd_reads_hostile_paths_in_a_drop_in_as_the_plan_says(systemd: SystemdFormat, profile: Profile) -> None:
    """Files at hostile paths: every line of the drop-in is a comment or a setting profiler writes, systemd reads
    it without a warning, and check passes it: what systemd and our reader take from it lets every run through."""
    drop_in = systemd.render(profile, RenderOptions())
    for line in _written_lines(drop_in):
        assert line.startswith("# ") or line == "[Service]" or line.partition("=")[0] in SETTINGS, line
    with tempfile.TemporaryDirectory() as directory:
        unit = systemd_analyze.write_unit(Path(directory), "svc", drop_in)
        assert systemd_analyze.verify_warnings(unit) == []
        policy = systemd.read(unit)
    assert policy.findings == ()
    refused = [item for item in compare(profile, policy).missing if item.need.kind is ItemKind.SETTING]
    assert refused == []
    written = [need.path for need in profile.sandbox.files] if profile.sandbox else []
    for entry in policy.sandbox.entries_of("ReadWritePaths"):
        assert any(is_under(path, entry.value) for path in written), f"{entry.value} is above no path a run used"


@pytest.mark.usefixtures("systemd_analyze")
@CONSUMER_RUNS
@given(profile=hostile_profiles(paths=True))
def test_the_correction_of_a_unit_for_hostile_paths_holds_only_its_fixes(
    systemd: SystemdFormat, profile: Profile
) -> None:
    """check's correction of a strict unit, for files at hostile paths: each line a comment or a setting, read by
    systemd without a warning, and the unit with it passes check (a fix is a line: a path is quoted, or covered
    by a directory a line can hold)."""
    with tempfile.TemporaryDirectory() as directory:
        unit = systemd_analyze.write_unit(
            Path(directory),
            "svc",
            body="[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\nProtectSystem=strict\nNoExecPaths=/\n"
            "DevicePolicy=closed\n",
        )
        fix = correction(compare(profile, systemd.read(unit)))
        if fix is None:
            return  # nothing refused
        for line in _written_lines(fix.text):
            assert line.startswith("# ") or line == "[Service]" or line.partition("=")[0] in SETTINGS, line
        (Path(directory) / "svc.service.d").mkdir()
        (Path(directory) / "svc.service.d" / "fix.conf").write_text(fix.text)
        assert systemd_analyze.verify_warnings(unit) == []
        corrected = systemd.read(unit)
    assert [item for item in compare(profile, corrected).missing if item.need.kind is ItemKind.SETTING] == []


# --- OCI -------------------------------------------------------------------------------------------------------------

ALLOW = 0x7FFF0000
ERRNO = 0x00050000


@LIBRARY_RUNS
@given(profile=hostile_profiles())
def test_libseccomp_loads_a_hostile_oci_profile_as_the_profile_says(profile: Profile) -> None:
    for options in OPTIONS:
        plan = plan_syscalls(profile, options.portability, runtimes=options.runtimes)
        text = OciFormat().render(profile, options)
        document = json.loads(text)
        assert set(document) <= {"comment", "defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
        assert all(set(rule) <= {"names", "action", "errnoRet", "comment"} for rule in document["syscalls"])
        comments = [*document.get("comment", []), *(rule.get("comment", "") for rule in document["syscalls"])]
        assert all(comment.isprintable() for comment in comments), "no control character in a comment"
        program = oci_libseccomp.bpf_program(oci_libseccomp.syscall_filter(document))
        for number in range(460):
            name, _ = syscalls.syscall_name("x86_64", number)
            expected = ALLOW if name in plan.allowed else ERRNO | (38 if name in plan.enosys else 1)
            assert oci_libseccomp.run_bpf(program, number) == expected, name


# --- Kubernetes ------------------------------------------------------------------------------------------------------


def _security_context(text: str) -> dict[str, Any]:
    block = [line[4:] for line in text.splitlines() if line.startswith("#   ")]
    context: dict[str, Any] = yaml.safe_load("\n".join(block))["securityContext"]
    return context


@LIBRARY_RUNS
@given(profile=hostile_profiles(paths=True))
def test_yaml_reads_a_hostile_seccomp_profile_as_the_profile_says(profile: Profile) -> None:
    for options in OPTIONS:
        text = KubernetesFormat().render(profile, options)
        assert all(line.isprintable() for line in text.split("\n")), "no control character, no line break but LF"
        manifest = yaml.safe_load(text)
        oci = json.loads(OciFormat().render(profile, RenderOptions(comments=False)))
        assert manifest == {
            "apiVersion": "security-profiles-operator.x-k8s.io/v1beta1",
            "kind": "SeccompProfile",
            "metadata": {"name": object_name(profile.component)},
            "spec": {"defaultAction": oci["defaultAction"], "architectures": oci["architectures"],
                     "syscalls": oci["syscalls"]},
        }  # fmt: skip
        privileges = container_privileges(profile, options.min_runs)
        context = _security_context(text)
        added = [name for name, _ in privileges.capabilities or ()]
        assert context.get("capabilities", {}).get("add", []) == added


# --- docker ----------------------------------------------------------------------------------------------------------

FAKE_DOCKER = "#!/usr/bin/python3\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n"


def _volumes(profile: Profile, tmpfs: tuple[str, ...], flags: list[str]) -> list[str]:
    """The --volume= flags of a docker command line, each checked: a directory docker can name (printable, no ':'
    or ','), once, above a path a run wrote; together they cover every write the read-only root would refuse."""
    volumes = [flag.removeprefix("--volume=") for flag in flags if flag.startswith("--volume=")]
    assert len(set(volumes)) == len(volumes), "docker refuses two volumes at one mount point"
    assert all(path.isprintable() and ":" not in path and "," not in path for path in volumes)
    assert profile.sandbox is not None
    kept = API_TREES + tmpfs  # writable as they are
    writes = [
        need.path
        for need in profile.sandbox.files
        if need.error is None and need.op in WRITE_OPS and not any(is_under(need.path, tree) for tree in kept)
    ]
    assert all(any(is_under(path, volume) for volume in volumes) for path in writes), "every write has a volume"
    assert all(any(is_under(path, volume) for path in writes) for volume in volumes), "no volume but for a write"
    return [f"--volume={path}" for path in volumes]


@LIBRARY_RUNS
@given(profile=hostile_profiles(paths=True))
def test_sh_runs_a_hostile_docker_script_as_the_profile_says(profile: Profile) -> None:
    if shutil.which("sh") is None:
        pytest.skip("no sh")
    privileges = container_privileges(profile, 1)
    expected = ["run"]
    if privileges.capabilities is not None:
        expected += ["--cap-drop=ALL", *(f"--cap-add={name}" for name, _ in privileges.capabilities)]
    expected += ["--security-opt=no-new-privileges"] if privileges.no_new_privileges else []
    filesystem = privileges.filesystem
    expected += ["--read-only", *(f"--tmpfs={path}" for path in filesystem.tmpfs)] if filesystem else []
    expected += [f"--security-opt=seccomp={seccomp_file_name(profile.component)}", "debian:12", "true"]
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        (work / "bin").mkdir()
        (work / "bin" / "docker").write_text(FAKE_DOCKER)
        (work / "bin" / "docker").chmod(0o755)
        for options in OPTIONS[:2]:
            script = DockerFormat().render(profile, options)
            assert all(line.isprintable() for line in script.split("\n"))
            (work / "flags.sh").write_text(script)
            done = subprocess.run(
                ["sh", "flags.sh", "debian:12", "true"],
                capture_output=True,
                text=True,
                check=True,
                cwd=work,
                env={"PATH": f"{work / 'bin'}:/usr/bin:/bin"},
            )
            argv = json.loads(done.stdout)
            volumes = _volumes(profile, filesystem.tmpfs, argv) if filesystem else []
            assert argv == expected[:-3] + volumes + expected[-3:]
            assert sorted(path.name for path in work.iterdir()) == ["bin", "flags.sh"], "nothing else ran"


# --- the json profile ------------------------------------------------------------------------------------------------


@LIBRARY_RUNS
@given(profile=hostile_profiles(paths=True))
def test_a_hostile_profile_reads_back_exactly(profile: Profile) -> None:
    text = JsonProfileFormat().render(profile, RenderOptions(command_lines=True))
    text.encode()  # valid UTF-8: the bytes that were not are JSON escapes
    assert parse_profile(text, "p.json") == profile


# --- names that are not names ----------------------------------------------------------------------------------------


@LIBRARY_RUNS
@given(profile=hostile_names())
def test_a_name_that_is_not_one_is_refused_by_every_format(systemd: SystemdFormat, profile: Profile) -> None:
    for policy_format in PolicyFormat:
        renderer = systemd if policy_format is PolicyFormat.SYSTEMD else formats.renderer(policy_format)
        with pytest.raises(NotANameError) as refused:
            renderer.render(profile, RenderOptions())
        assert str(refused.value).isprintable()


@pytest.mark.parametrize(
    ("kind", "name", "is_one"),
    [
        ("syscall", "read", True),
        ("syscall", "_llseek", True),
        ("ABI", "x86_64", True),
        ("capability", "CAP_CHOWN", True),
        ("capability", "CAP_40", True),
        ("address family", "AF_DECnet", True),
        ("address family", "AF_99", True),
        ("namespace type", "user", True),
        ("syscall", "read\n", False),
        ("syscall", "Read", False),
        ("syscall", "read write", False),
        ("syscall", "", False),
        ("capability", "CAP_chown", False),
        ("capability", "CAP_$(id)", False),
        ("address family", "AF_", False),
        ("namespace type", "users", False),
        ("ABI", "x86_64\x00", False),
    ],
)
def test_what_counts_as_a_name(kind: str, name: str, is_one: bool) -> None:
    if is_one:
        assert policy_name(kind, name, "svc") == name
    else:
        with pytest.raises(NotANameError, match=f"holds the {kind} '"):
            policy_name(kind, name, "svc")
