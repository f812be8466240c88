"""DevicePolicy=/DeviceAllow=, DynamicUser= and the directories systemd makes (StateDirectory= and kin) as
generated, run by a real systemd 252 system manager: each lets the workload do what its run did, and without the
line (or with the setting a run rules out) the workload fails where check said it would."""

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from generators.profile import Evidence, FileNeed, FileOp, SandboxObservations
from generators.sandbox import ProfileFacts, SandboxPlan, plan_sandbox
from generators.systemd.format import SystemdFormat
from generators.systemd.sandbox import refused_by_settings, sandbox_lines, sandbox_refusals
from tests.generators import systemd_analyze
from tests.generators.systemd_manager import SystemManager

# A device node that no private /dev holds and DevicePolicy=closed refuses: reading it gives 4 bytes.
DEVICE = Path("/dev/cpu_dma_latency")
READER = "/usr/bin/od"
NOBODY_UID = 65534


def _evidence(program: str) -> Evidence:
    return Evidence((0,), 1, (program,), None)


def _plan(files: list[FileNeed], systemd: SystemdFormat, user: str | None = None) -> SandboxPlan:
    facts = ProfileFacts(
        syscalls=frozenset({"read", "write", "openat"}),
        capabilities=frozenset(),
        families=frozenset(),
        unprivileged_user=user,
        describe=lambda evidence: f"{evidence.count}× by {', '.join(evidence.programs)}",
    )
    return plan_sandbox(SandboxObservations(tuple(files), ()), facts, refused_by_settings(systemd.groups))


def _drop_in(plan: SandboxPlan) -> str:
    return "[Service]\n" + "".join(f"{key}={value}\n" for key, value, _ in sandbox_lines(plan) if value is not None)


def _refused(drop_in: str, plan: SandboxPlan, systemd: SystemdFormat, directory: Path) -> list[str]:
    unit = systemd_analyze.write_unit(directory, "unit", drop_in)
    return [f"{each.at.key}={each.at.value}: {each.fix}" for each in sandbox_refusals(systemd.read(unit).sandbox, plan)]


@pytest.mark.skipif(not DEVICE.is_char_device(), reason=f"{DEVICE} is not a character device on this kernel")
def test_device_allow_lets_the_run_read_its_device_and_nothing_more(
    system_manager: SystemManager, systemd: SystemdFormat, tmp_path: Path
) -> None:
    rdev = DEVICE.stat().st_rdev
    read = FileNeed(str(DEVICE), FileOp.READ, None, _evidence(READER), (os.major(rdev), os.minor(rdev)))
    plan = _plan([read], systemd)
    drop_in = _drop_in(plan)
    allow = f"DeviceAllow={DEVICE} r\n"
    assert "PrivateDevices=" not in drop_in and "DevicePolicy=closed\n" in drop_in and allow in drop_in
    unit = f"[Service]\nType=oneshot\nExecStart={READER} -An -tx4 {DEVICE}\n"
    ran = system_manager.run("device", unit, {"profiler.conf": drop_in})
    assert ran.succeeded and ran.stdout.strip(), ran

    without = drop_in.replace(allow, "")
    (tmp_path / "without").mkdir()
    assert _refused(without, plan, systemd, tmp_path / "without") == [f"DevicePolicy=closed: DeviceAllow={DEVICE} r"]
    failed = system_manager.run("device-refused", unit, {"profiler.conf": without})
    assert (failed.result, failed.status) == ("exit-code", 1) and "Operation not permitted" in failed.stderr, failed


@pytest.mark.skipif(not DEVICE.is_char_device(), reason=f"{DEVICE} is not a character device on this kernel")
def test_a_device_allow_line_closes_the_default_device_policy(
    system_manager: SystemManager, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """DevicePolicy=auto, systemd's default, allows every device only where no DeviceAllow= line is given: a line
    for another device refuses the run's, and check names that line; a line without access allows all of it."""
    rdev = DEVICE.stat().st_rdev
    plan = _plan(
        [FileNeed(str(DEVICE), FileOp.READ, None, _evidence(READER), (os.major(rdev), os.minor(rdev)))], systemd
    )
    unit = f"[Service]\nType=oneshot\nExecStart={READER} -An -tx4 {DEVICE}\n"
    other, whole = "DeviceAllow=/dev/null rw\n", f"DeviceAllow={DEVICE}\n"
    (tmp_path / "other").mkdir()
    assert _refused(f"[Service]\n{other}", plan, systemd, tmp_path / "other") == [
        f"DevicePolicy=closed: DeviceAllow={DEVICE} r"
    ]
    failed = system_manager.run("device-other", unit + other)
    assert (failed.result, failed.status) == ("exit-code", 1) and "Operation not permitted" in failed.stderr, failed
    (tmp_path / "whole").mkdir()
    assert _refused(f"[Service]\n{whole}", plan, systemd, tmp_path / "whole") == []
    ran = system_manager.run("device-whole", unit + whole)
    assert ran.succeeded and ran.stdout.strip(), ran


@pytest.mark.skipif(not DEVICE.is_char_device(), reason=f"{DEVICE} is not a character device on this kernel")
def test_a_device_node_outside_dev_leaves_the_device_settings_open(
    system_manager: SystemManager, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """The device cgroup goes by a node's numbers, wherever the node is: the DevicePolicy=closed PrivateDevices=
    implies refuses one outside /dev, which no DeviceAllow= line can name (systemd takes /dev and /sys paths only).
    A run that read one gets neither setting, and check names each as refusing it."""
    rdev = DEVICE.stat().st_rdev
    node = Path("/run/profiler-output/device-node")  # the manager's own /run, a tmpfs without nodev
    os.mknod(Path(f"/proc/{system_manager.pid}/root") / node.relative_to("/"), 0o600 | stat.S_IFCHR, rdev)
    plan = _plan([FileNeed(str(node), FileOp.READ, None, _evidence(READER), (os.major(rdev), os.minor(rdev)))], systemd)
    drop_in = _drop_in(plan)
    assert "ProtectSystem=strict\n" in drop_in and "Device" not in drop_in
    unit = f"[Service]\nType=oneshot\nExecStart={READER} -An -tx4 {node}\n"
    ran = system_manager.run("device-outside", unit, {"profiler.conf": drop_in})
    assert ran.succeeded and ran.stdout.strip(), ran
    for setting, fix in [("PrivateDevices=yes", "PrivateDevices=no"), ("DevicePolicy=closed", "DevicePolicy=auto")]:
        (tmp_path / setting).mkdir()
        assert _refused(f"[Service]\n{setting}\n", plan, systemd, tmp_path / setting) == [f"{setting}: {fix}"]
        failed = system_manager.run(f"device-outside-{setting.partition('=')[0]}", unit + f"{setting}\n")
        assert (failed.result, failed.status) == ("exit-code", 1) and "Operation not permitted" in failed.stderr, failed


def test_a_run_that_makes_device_nodes_keeps_the_device_settings_open(
    system_manager: SystemManager, systemd: SystemdFormat, tmp_path: Path
) -> None:
    """CAP_MKNOD is taken away by PrivateDevices=, and DevicePolicy=closed refuses making any node but the pseudo
    devices' (the cgroup's m access): a run that made one, gone by the end (no numbers to allow), gets neither
    setting, and check names each of them as refusing it."""
    node = "/tmp/profiler-test-disk"  # in the service's own /tmp (PrivateTmp=yes: it made what it used there)
    made = FileNeed(node, FileOp.CREATE, None, _evidence("/usr/bin/mknod"))
    facts = ProfileFacts(
        syscalls=frozenset({"mknodat", "unlink"}),
        capabilities=frozenset({"CAP_MKNOD"}),
        families=frozenset(),
        unprivileged_user=None,
        describe=lambda evidence: f"{evidence.count}× by {', '.join(evidence.programs)}",
    )
    plan = plan_sandbox(SandboxObservations((made,), ()), facts, refused_by_settings(systemd.groups))
    drop_in = _drop_in(plan)
    assert "Device" not in drop_in and "PrivateTmp=yes\n" in drop_in
    unit = f"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'mknod {node} b 8 0 && rm {node}'\n"
    ran = system_manager.run("mknod", unit, {"profiler.conf": drop_in})
    assert ran.succeeded, ran
    for setting, fix in [("PrivateDevices=yes", "PrivateDevices=no"), ("DevicePolicy=closed", "DevicePolicy=auto")]:
        (tmp_path / setting).mkdir()
        assert _refused(f"[Service]\n{setting}\n", plan, systemd, tmp_path / setting) == [f"{setting}: {fix}"]
        failed = system_manager.run(f"mknod-{setting.partition('=')[0]}", unit, {"profiler.conf": drop_in + setting})
        assert (failed.result, failed.status) == ("exit-code", 1) and "Operation not permitted" in failed.stderr, failed


@pytest.fixture
def cache(cache: Path) -> Iterator[Path]:
    """conftest's cache directory, and a directory of the same name under /srv, removed after."""
    yield cache
    shutil.rmtree(Path("/srv") / cache.name, ignore_errors=True)


def _owners_and_mode(directory: Path, file: Path) -> tuple[int, int, int]:
    return directory.stat().st_uid, stat.S_IMODE(directory.stat().st_mode), file.stat().st_uid


def test_a_state_directory_there_before_the_runs_keeps_its_owner_and_mode(
    system_manager: SystemManager, systemd: SystemdFormat, state: Path
) -> None:
    """As nobody, into a /var/lib directory that was there before (mode 1777, a file of root's in it), as /run/lock
    or a shared spool is: ReadWritePaths=, not StateDirectory=, and the job works under the generated unit and
    leaves the directory's mode and the file's owner as they were; StateDirectory= gives both to nobody at start.
    Written with no '-': a host without the directory fails the start (226), as check's reading has it."""
    shell = "/usr/bin/dash"
    state.mkdir()
    state.chmod(0o1777)
    kept = state / "root-file"
    kept.write_text("root's\n")
    plan = _plan([FileNeed(f"{state}/entry", FileOp.CREATE, None, _evidence(shell))], systemd, "nobody")
    drop_in = _drop_in(plan)
    line = f"ReadWritePaths={state}\n"
    assert line in drop_in and "StateDirectory=" not in drop_in
    # No room systemd made: DynamicUser= stays off, and the unit runs as the runs' user.
    assert "DynamicUser=" not in drop_in and "User=nobody\n" in drop_in
    unit = f"[Service]\nType=oneshot\nExecStart={shell} -c 'id -u > {state}/entry'\n"
    ran = system_manager.run("found", unit, {"profiler.conf": drop_in})
    assert ran.succeeded and (state / "entry").read_text() == f"{NOBODY_UID}\n", ran
    assert _owners_and_mode(state, kept) == (0, 0o1777, 0)

    managed = drop_in.replace(line, f"StateDirectory={state.name}\n")
    assert system_manager.run("found-managed", unit, {"profiler.conf": managed}).succeeded
    assert _owners_and_mode(state, kept) == (NOBODY_UID, 0o755, NOBODY_UID)

    shutil.rmtree(state)
    missing = system_manager.run("found-missing", unit, {"profiler.conf": drop_in})
    assert (missing.result, missing.status) == ("exit-code", 226) and not state.exists(), missing


def test_a_state_directory_the_runs_made_is_made_by_systemd_on_a_host_without_it(
    system_manager: SystemManager, systemd: SystemdFormat, state: Path
) -> None:
    """As nobody, a run that made its /var/lib directory and wrote in it: StateDirectory=NAME and DynamicUser=yes,
    and on a host without the directory the unit starts, and its user writes there."""
    shell = "/usr/bin/dash"
    made = [FileNeed(path, FileOp.CREATE, None, _evidence(shell)) for path in (str(state), f"{state}/entry")]
    drop_in = _drop_in(_plan(made, systemd, "nobody"))
    assert f"StateDirectory={state.name}\n" in drop_in and "DynamicUser=yes\n" in drop_in
    assert f"ReadWritePaths={state}" not in drop_in and not state.exists()
    script = 'id -u > "$STATE_DIRECTORY/entry" && cat "$STATE_DIRECTORY/entry"'
    unit = f"[Service]\nType=oneshot\nExecStart={shell} -c '{script}'\n"
    ran = system_manager.run("made", unit, {"profiler.conf": drop_in})
    assert ran.succeeded and int(ran.stdout) not in (0, NOBODY_UID), ran
    assert (state / "entry").read_text() == ran.stdout


def test_dynamic_user_for_runs_as_nobody_that_write_only_where_systemd_makes_room(
    system_manager: SystemManager, systemd: SystemdFormat, cache: Path, tmp_path: Path
) -> None:
    """As nobody, into a cache directory: DynamicUser=yes, and the unit runs under a user allocated at start. A run
    that also wrote a directory nobody owns rules it out, and check says so of a unit that sets it anyway."""
    shell = "/usr/bin/dash"
    # The cache is not there before the run: it is made, as the run made it.
    made = [FileNeed(path, FileOp.CREATE, None, _evidence(shell)) for path in (str(cache), f"{cache}/entry")]
    plan = _plan(made, systemd, "nobody")
    drop_in = _drop_in(plan)
    assert "DynamicUser=yes\n" in drop_in and "\nUser=" not in drop_in and f"CacheDirectory={cache.name}\n" in drop_in
    script = 'id -u > "$CACHE_DIRECTORY/entry" && cat "$CACHE_DIRECTORY/entry"'
    unit = f"[Service]\nType=oneshot\nExecStart={shell} -c '{script}'\n"
    ran = system_manager.run("dynamic", unit, {"profiler.conf": drop_in})
    assert ran.succeeded and int(ran.stdout) not in (0, 65534), ran

    shared = Path("/srv") / cache.name  # nobody's own, not a directory systemd makes: a dynamic user cannot write it
    shared.mkdir()
    shutil.chown(shared, "nobody")
    wrote = FileNeed(f"{shared}/entry", FileOp.CREATE, None, _evidence(shell))
    ruled_out = _plan([*made, wrote], systemd, "nobody")
    assert ruled_out.value("DynamicUser") is None and ruled_out.value("User") == "nobody"
    # As the generated unit would have it: no User=, since DynamicUser=yes beside User=nobody runs as nobody.
    forced = _drop_in(ruled_out).replace("User=nobody\n", "") + "DynamicUser=yes\n"
    (tmp_path / "forced").mkdir()
    [refusal] = _refused(forced, ruled_out, systemd, tmp_path / "forced")
    assert refusal == "DynamicUser=yes: DynamicUser=no"
    writer = f"[Service]\nType=oneshot\nExecStart={shell} -c 'echo x > {shared}/entry'\n"
    assert system_manager.run("nobody", writer, {"profiler.conf": _drop_in(ruled_out)}).succeeded
    failed = system_manager.run("nobody-dynamic", writer, {"profiler.conf": forced})
    assert (failed.result, failed.status) == ("exit-code", 2), failed


def test_dynamic_user_beside_a_static_user_still_makes_the_system_read_only(
    system_manager: SystemManager, systemd: SystemdFormat, cache: Path, tmp_path: Path
) -> None:
    """DynamicUser=yes implies ProtectSystem=strict (and PrivateTmp=, ProtectHome=read-only) whoever the service
    runs as, a static User= such as root too: check refuses the write the run made outside the directories systemd
    makes, naming DynamicUser= as the line, and the line it gives lets the write through."""
    shell = "/usr/bin/dash"
    shared = Path("/srv") / cache.name
    shared.mkdir()
    plan = _plan([FileNeed(f"{shared}/entry", FileOp.CREATE, None, _evidence(shell))], systemd)
    writer = f"[Service]\nType=oneshot\nExecStart={shell} -c 'echo x > {shared}/entry'\n"
    for user in ("", "User=root\n"):
        unit = tmp_path / f"dynamic{len(user)}.service"
        unit.write_text(f"{writer}{user}DynamicUser=yes\n")
        [refusal] = sandbox_refusals(systemd.read(unit).sandbox, plan)
        assert refusal.at.where == f"ProtectSystem=strict (implied by DynamicUser=yes ({unit}:{4 + bool(user)}))"
        assert refusal.fix == f"ReadWritePaths={shared}"
    failed = system_manager.run("dynamic-root", f"{writer}User=root\nDynamicUser=yes\n")
    assert (failed.result, failed.status) == ("exit-code", 2) and "Read-only file system" in failed.stderr, failed
    fixed = system_manager.run("dynamic-root-fixed", f"{writer}User=root\nDynamicUser=yes\nReadWritePaths={shared}\n")
    assert fixed.succeeded, fixed


@pytest.mark.parametrize(
    ("setting", "op", "command", "fix"),
    [
        ("ReadOnlyPaths={shared}", FileOp.WRITE, "echo y > {shared}/data", "ReadWritePaths={shared}/data"),
        ("InaccessiblePaths={shared}", FileOp.READ, "cat {shared}/data", "InaccessiblePaths="),
        ("TemporaryFileSystem={shared}", FileOp.READ, "cat {shared}/data", "TemporaryFileSystem="),
    ],
)
def test_paths_made_read_only_inaccessible_or_empty_refuse_what_check_says(
    system_manager: SystemManager,
    systemd: SystemdFormat,
    cache: Path,
    tmp_path: Path,
    setting: str,
    op: FileOp,
    command: str,
    fix: str,
) -> None:
    """ReadOnlyPaths=, InaccessiblePaths= and TemporaryFileSystem= refuse a run's write or read below them under
    systemd 252: check names the line, and the unit with its fix lets the run through."""
    shared = Path("/srv") / cache.name
    shared.mkdir()
    (shared / "data").write_text("x\n")
    plan = _plan([FileNeed(f"{shared}/data", op, None, _evidence("/usr/bin/dash"))], systemd)
    line, fix = setting.format(shared=shared), fix.format(shared=shared)
    unit = f"[Service]\nType=oneshot\nExecStart=/usr/bin/dash -c '{command.format(shared=shared)}'\n{line}\n"
    (tmp_path / "unit.service").write_text(unit)
    [refusal] = sandbox_refusals(systemd.read(tmp_path / "unit.service").sandbox, plan)
    assert (refusal.at.where.startswith(f"{line} ("), refusal.fix) == (True, fix)
    failed = system_manager.run("hidden", unit)
    assert not failed.succeeded, failed
    (tmp_path / "unit.service").write_text(f"{unit}{fix}\n")
    assert sandbox_refusals(systemd.read(tmp_path / "unit.service").sandbox, plan) == []
    fixed = system_manager.run("hidden-fixed", f"{unit}{fix}\n")
    assert fixed.succeeded, fixed
