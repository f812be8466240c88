"""The file system, device, kernel and network sandbox a component's runs allow: systemd's sandboxing settings, each
at the strictest value no run contradicts, with the observation it rests on; other formats take what they express.

writable_roots()      the fewest paths ProtectSystem=strict must leave writable so that every write still works
plan_sandbox()        every setting: its value, or None where a run rules it out, and why
"""

import dataclasses
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from generators.evidence import describe_evidence
from generators.profile import (
    ENTRY_OPS,
    WRITE_OPS,
    Evidence,
    FileNeed,
    KernelNeed,
    Profile,
    SandboxObservations,
    merge_evidence,
)
from profiler import private_dev
from profiler.trace import FileOp, KernelUse

# ------------------------------------------------------------------------------------------------ paths

# ProtectSystem=strict leaves the API file systems writable; their own settings below decide.
API_TREES = ("/dev", "/proc", "/sys")
# PrivateTmp= gives the service its own, empty and writable, /tmp and /var/tmp.
TEMPORARY_TREES = ("/tmp", "/var/tmp")
HOME_TREES = ("/home", "/root", "/run/user")
# The user that owns no file: what it could read, any user can.
NOBODY = "nobody"
# The directories systemd creates, owns to the service's user and leaves writable, named under each tree.
MANAGED_TREES: dict[str, str] = {
    "/var/lib": "StateDirectory",
    "/var/cache": "CacheDirectory",
    "/var/log": "LogsDirectory",
    "/run": "RuntimeDirectory",
}


def is_under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _in_any(path: str, trees: Iterable[str]) -> bool:
    return any(is_under(path, tree) for tree in trees)


def unit_can_hold(path: str) -> bool:
    """Whether a unit line can hold the path: absolute, and printable (a newline would start a line of its own)."""
    return path.startswith("/") and path.isprintable()


def nearest_unit_path(path: str) -> str:
    """The absolute path, or the nearest directory above it that a unit line can hold (which covers it too)."""
    while not unit_can_hold(path):
        path = posixpath.dirname(path)
    return path


@dataclass(frozen=True, slots=True)
class WritableRoot:
    """One path left writable: a ReadWritePaths= entry, or a directory systemd manages (StateDirectory=app)."""

    setting: str  # ReadWritePaths, StateDirectory, CacheDirectory, LogsDirectory, RuntimeDirectory
    value: str  # the path, or the directory's name under its tree
    path: str  # the absolute path it opens up
    directory: bool  # a directory whose entries the runs changed, or a file they wrote
    writes: tuple[FileNeed, ...]  # the writes it covers
    # A ReadWritePaths= path in a managed tree's directory that the runs found there: the line it is not
    # (StateDirectory=dpkg), and that directory (/var/lib/dpkg).
    not_managed: tuple[str, str] | None = None

    @property
    def evidence(self) -> Evidence:
        return merge_evidence(write.evidence for write in self.writes)


def _unit_of(need: FileNeed) -> tuple[str, bool]:
    """The path a write needs writable, and whether it is a directory: the directory whose entries it changes,
    or the file it changes."""
    return (posixpath.dirname(need.path), True) if need.op in ENTRY_OPS else (need.path, False)


# A directory name StateDirectory= and its kin take as it is: no specifier (%), no source:destination (:), no
# quoting or space, nothing that is not printable (a newline would start a unit line of its own), not . or ..
_PLAIN_NAME = re.compile(r"(?!\.\.?$)[A-Za-z0-9_.+@-]{1,255}")


def _managed_directory(path: str, directory: bool) -> tuple[str, str, str] | None:
    """(setting, name, path) where the path is in a directory of its own under a managed tree: /var/cache/app/index
    is in CacheDirectory=app, which systemd creates if it is missing. /run/user holds homes, not services. A name
    the setting cannot take as it is (a trace's path is the workload's to choose) is a ReadWritePaths= path."""
    for tree, setting in MANAGED_TREES.items():
        rest = path[len(tree) + 1 :] if is_under(path, tree) and path != tree else ""
        if rest and (directory or "/" in rest) and not _in_any(path, HOME_TREES):
            name = rest.split("/", 1)[0]
            return (setting, name, posixpath.join(tree, name)) if _PLAIN_NAME.fullmatch(name) else None
    return None


def writable_roots(files: Iterable[FileNeed], private_tmp: bool) -> tuple[WritableRoot, ...]:
    """The fewest paths that cover every successful write outside the API file systems (and the temporary ones,
    where PrivateTmp= makes them the service's own): each the directory systemd manages under /var/lib,
    /var/cache, /var/log or /run, a directory whose entries a run changed, or a file a run wrote."""
    writes = [need for need in files if need.error is None and need.op in WRITE_OPS]
    skipped = API_TREES + (TEMPORARY_TREES if private_tmp else ())
    candidates: dict[tuple[str, str, str, bool], list[FileNeed]] = defaultdict(list)
    # Directories some write went into: an entry made in a managed tree itself that is one of them is the
    # service's own directory there, which systemd makes (mkdir /var/cache/app is CacheDirectory=app).
    holders = {posixpath.dirname(need.path) for need in writes}
    # Only a directory the runs made (a successful mkdir) is the service's own. One they found there is another
    # program's (/var/lib/dpkg, /run/lock) or a deployment's before them, and at every start systemd chmods a
    # managed directory that is there to 0755 and chowns it and all in it to the service's user
    # (setup_exec_directory in src/core/execute.c, systemd 252; measured in test_devices_and_users.py): it gets
    # ReadWritePaths=, which changes no owner and no mode.
    made = {need.path for need in writes if need.op is FileOp.CREATE}
    found_there: dict[str, tuple[str, str]] = {}
    for need in writes:
        if not _in_any(need.path, skipped):
            path, directory = _unit_of(need)
            managed = _managed_directory(path, directory)
            if need.op in ENTRY_OPS and path in MANAGED_TREES and need.path in holders:
                # Made there by a run, it is the service's own; found there and removed, the tree's entries
                # changed (ReadWritePaths=/var/lib/app would not let the run remove /var/lib/app itself).
                own = _managed_directory(need.path, directory)
                if own and own[2] in made:
                    path, managed = need.path, own
            if managed and managed[2] in made:
                candidates[(*managed, True)].append(need)
            else:
                if managed:
                    found_there[path] = (f"{managed[0]}={managed[1]}", managed[2])
                candidates[("ReadWritePaths", path, path, directory)].append(need)
    roots: dict[str, WritableRoot] = {}
    # Shortest first: a path under a directory already chosen is covered by it. So is a directory the runs
    # created, which does not exist when the service starts (systemd refuses to start a unit whose
    # ReadWritePaths= entry is missing): creating it changed the entries of the one above it.
    # A path both written as a file and holding entries (a file replaced by a directory) is the directory.
    for (setting, value, path, directory), covered in sorted(
        candidates.items(), key=lambda item: (len(item[0][2]), not item[0][3], item[0])
    ):
        owner = next((root for root in roots.values() if root.directory and is_under(path, root.path)), None)
        if owner:
            roots[owner.path] = dataclasses.replace(owner, writes=owner.writes + tuple(covered))
        else:
            roots[path] = WritableRoot(setting, value, path, directory, tuple(covered), found_there.get(path))
    return tuple(sorted(roots.values(), key=lambda root: (root.setting, root.path)))


# ----------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class SandboxSetting:
    """One setting: its value, or None where a run rules it out; why, naming the observation."""

    key: str
    value: str | None
    why: str
    evidence: Evidence | None = None  # of the observation that rules it out, or that a value rests on


@dataclass(frozen=True, slots=True)
class SandboxPlan:
    settings: tuple[SandboxSetting, ...]
    writable: tuple[WritableRoot, ...]
    files: tuple[FileNeed, ...]  # what the settings were decided from, for a unit that decides otherwise

    def value(self, key: str) -> str | None:
        return next((each.value for each in self.settings if each.key == key), None)


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the rest of a profile says that sandboxing settings depend on."""

    syscalls: frozenset[str]  # the syscalls used
    capabilities: frozenset[str]  # needed in the bounding set
    families: frozenset[str]  # socket families allocated
    unprivileged_user: str | None  # the user every run ran as, where none ran as root
    describe: Callable[[Evidence], str]  # "12× in 2/3 runs by /usr/bin/ls"


# The devices DevicePolicy=closed allows (cgroup_context_apply_device_allow in src/core/cgroup.c, systemd 252): the
# nodes a private /dev holds, and /dev/ptmx.
PSEUDO_DEVICES = frozenset(f"/dev/{name}" for name in (*private_dev.NODES, "ptmx"))
# Paths each setting makes read-only or inaccessible (systemd 252 src/core/namespace.c tables).
KERNEL_TUNABLES = (
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/latency_stats",
    "/proc/acpi",
    "/proc/apm",
    "/proc/timer_stats",
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/mtrr",
    "/proc/scsi",
    "/proc/kallsyms",
    "/proc/kcore",
    "/sys",
)
KERNEL_MODULES = ("/lib/modules", "/usr/lib/modules")
KERNEL_LOGS = ("/proc/kmsg", "/dev/kmsg")
CONTROL_GROUPS = ("/sys/fs/cgroup",)
CLOCK_DEVICES = ("/dev/rtc",)
# Syscalls and capabilities each setting refuses on its own (OVERRIDING_SETTINGS of the systemd reader, which
# holds the same table for what a deployed unit refuses), and those that only a setting's absence permits.
MOUNT_SYSCALLS = frozenset({"mount", "umount", "umount2", "fsmount", "move_mount", "mount_setattr", "open_tree"})
HOSTNAME_SYSCALLS = frozenset({"sethostname", "setdomainname"})
REALTIME_SYSCALLS = frozenset({"sched_setscheduler", "sched_setattr", "sched_setparam"})


def observed_paths(needs: Sequence[FileNeed], verb: str | None = None) -> str:
    """What some needs did, by the first of them and how many other paths: "exec of /usr/bin/cut (and 7 more)"."""
    need = min(needs, key=lambda need: (need.path, need.op))
    paths = len({need.path for need in needs})
    more = f" (and {paths - 1} more)" if paths > 1 else ""
    return f"{verb or need.op.value} of {need.path}{more}"


def _observed(needs: Sequence[FileNeed], facts: ProfileFacts, verb: str | None = None) -> str:
    return f"{observed_paths(needs, verb)}: {facts.describe(merge_evidence(n.evidence for n in needs))}"


class _Planner:
    def __init__(self, observations: SandboxObservations, facts: ProfileFacts, refusals: dict[str, frozenset[str]]):
        self.observations, self.facts, self.refusals = observations, facts, refusals
        self.succeeded = [need for need in observations.files if need.error is None]
        self.settings: list[SandboxSetting] = []

    def files(self, trees: Iterable[str], ops: Iterable[FileOp] | None = None) -> list[FileNeed]:
        trees, wanted = tuple(trees), frozenset(ops) if ops is not None else None
        return [n for n in self.succeeded if _in_any(n.path, trees) and (wanted is None or n.op in wanted)]

    def value(self, key: str) -> str | None:
        return next((each.value for each in self.settings if each.key == key), None)

    def kernel(self, use: KernelUse) -> list[KernelNeed]:
        return [need for need in self.observations.kernel if need.use is use]

    def add(self, key: str, value: str | None, why: str, evidence: Evidence | None = None) -> None:
        self.settings.append(SandboxSetting(key, value, why, evidence))

    def decide(self, key: str, value: str, ruled_out: list[FileNeed], kept: str, verb: str | None = None) -> None:
        if ruled_out:
            self.add(key, None, _observed(ruled_out, self.facts, verb), merge_evidence(n.evidence for n in ruled_out))
        else:
            self.add(key, value, kept)

    def by_syscalls(
        self,
        key: str,
        value: str,
        syscalls: frozenset[str],
        capabilities: frozenset[str],
        kept: str,
        files: list[FileNeed],
    ) -> None:
        used = sorted(syscalls & self.facts.syscalls)
        needed = sorted(capabilities & self.facts.capabilities)
        if used or needed:
            self.add(key, None, f"{', '.join(used + needed)} used: {key}= would refuse it")
        else:
            self.decide(key, value, files, kept)


def plan_sandbox(
    observations: SandboxObservations, facts: ProfileFacts, refusals: dict[str, frozenset[str]]
) -> SandboxPlan:
    """Every setting systemd-analyze security scores that the observations decide. refusals: per setting that
    refuses syscalls and capabilities on its own (ProtectClock, ...), the names it refuses, groups expanded."""
    plan = _Planner(observations, facts, refusals)
    temporary = plan.files(TEMPORARY_TREES)
    # A path in /tmp the runs did not create was there before: another program's, which a private /tmp hides.
    created = {need.path for need in plan.succeeded if need.op is FileOp.CREATE}
    shared_tmp = [
        need
        for need in temporary
        if need.path not in TEMPORARY_TREES and not any(is_under(need.path, path) for path in created)
    ]
    plan.decide(
        "PrivateTmp",
        "yes",
        shared_tmp,
        "its own /tmp and /var/tmp: every path the runs used there they created",
        verb=None,
    )
    roots = writable_roots(observations.files, private_tmp=not shared_tmp)
    plan.add(
        "ProtectSystem",
        "strict",
        f"the file system is read-only but for the {len(roots)} writable "
        "path(s) below, which cover every write the runs made",
    )
    home_writes = plan.files(HOME_TREES, WRITE_OPS)
    home_reads = plan.files(HOME_TREES)
    home_probes = [n for n in observations.files if n.error is not None and _in_any(n.path, HOME_TREES)]
    if home_writes:
        plan.add("ProtectHome", None, _observed(home_writes, facts), merge_evidence(n.evidence for n in home_writes))
    elif home_reads:
        plan.add("ProtectHome", "read-only", _observed(home_reads, facts) + "; no run wrote there")
    elif home_probes:
        # tmpfs: what a probe did not find stays not found (ENOENT); "yes" would make it EACCES for a process
        # without CAP_DAC_OVERRIDE.
        errors = sorted({need.error or "" for need in home_probes})
        plan.add(
            "ProtectHome",
            "tmpfs",
            f"{_observed(home_probes, facts, 'failed probe')}; an empty tmpfs fails it with {', '.join(errors)} "
            "as before, where ProtectHome=yes would answer EACCES",
        )
    else:
        plan.add("ProtectHome", "yes", "no run touched /home, /root or /run/user")
    # A device node opened outside /dev counts too: the DevicePolicy=closed that PrivateDevices= implies refuses
    # it wherever it is (the device cgroup goes by its numbers).
    devices = [
        n
        for n in plan.succeeded
        if (is_under(n.path, "/dev") and not private_dev.holds(n.path) and n.op is not FileOp.LIST)
        or (n.device is not None and not is_under(n.path, "/dev"))
    ]
    plan.by_syscalls(
        "PrivateDevices",
        "yes",
        refusals.get("PrivateDevices", frozenset()),
        frozenset({"CAP_MKNOD", "CAP_SYS_RAWIO"}),
        "only the pseudo devices a private /dev holds (null, zero, random, tty, pts, shm) were opened",
        devices,
    )
    if plan.value("PrivateDevices") is None:
        _device_policy(plan, devices)
    plan.by_syscalls(
        "ProtectKernelTunables",
        "yes",
        refusals.get("ProtectKernelTunables", frozenset()),
        frozenset(),
        "no run wrote under /proc/sys or /sys",
        plan.files(KERNEL_TUNABLES, WRITE_OPS) + plan.files(("/proc/kcore", "/proc/kallsyms")),
    )
    plan.by_syscalls(
        "ProtectKernelModules",
        "yes",
        refusals.get("ProtectKernelModules", frozenset()),
        frozenset({"CAP_SYS_MODULE"}),
        "no module loaded, nothing under /lib/modules read",
        plan.files(KERNEL_MODULES),
    )
    plan.by_syscalls(
        "ProtectKernelLogs",
        "yes",
        refusals.get("ProtectKernelLogs", frozenset()),
        frozenset({"CAP_SYSLOG"}),
        "the kernel log was not read",
        plan.files(KERNEL_LOGS),
    )
    plan.decide(
        "ProtectControlGroups", "yes", plan.files(CONTROL_GROUPS, WRITE_OPS), "no run wrote to the cgroup file system"
    )
    plan.by_syscalls(
        "ProtectClock",
        "yes",
        refusals.get("ProtectClock", frozenset()),
        frozenset({"CAP_SYS_TIME", "CAP_WAKE_ALARM"}),
        "the clock was not set, no real-time clock device opened",
        plan.files(CLOCK_DEVICES),
    )
    plan.by_syscalls("ProtectHostname", "yes", HOSTNAME_SYSCALLS, frozenset(), "the host name was not set", [])
    _proc(plan)
    plan.by_syscalls("PrivateMounts", "yes", MOUNT_SYSCALLS, frozenset(), "nothing mounted", [])
    _kernel_switch(plan, "MemoryDenyWriteExecute", KernelUse.WRITE_EXECUTE, "no memory mapped writable and executable")
    _kernel_switch(plan, "LockPersonality", KernelUse.PERSONALITY, "the execution domain was not changed")
    _kernel_switch(plan, "RestrictRealtime", KernelUse.REALTIME, "no realtime scheduling asked for")
    plan.decide("RestrictSUIDSGID", "yes", plan.files(("/",), (FileOp.SETID,)), "no setuid or setgid bit set")
    _network(plan)
    plan.add(
        "UMask",
        "0077",
        "files it creates are readable by its own user only; a program of another user that "
        "reads them needs UMask=0027 or a group",
    )
    _exec_paths(plan, roots)
    _users(plan, roots)
    return SandboxPlan(tuple(plan.settings), roots, observations.files)


def _device_policy(plan: _Planner, opened: list[FileNeed]) -> None:
    """Where PrivateDevices= cannot be on, the device cgroup still refuses every device node but the pseudo ones
    and those the runs opened: DevicePolicy=closed, a DeviceAllow= line for each with the access it had. A run
    that made device nodes (CAP_MKNOD) needs the cgroup's m access to each, which no line can give a node that is
    not there when the service starts: the policy is left open."""
    if "CAP_MKNOD" in plan.facts.capabilities:
        plan.add(
            "DevicePolicy",
            None,
            "CAP_MKNOD needed: a node the runs make needs the device cgroup's m access, which no DeviceAllow= "
            "line gives a node that is not there when the service starts",
        )
        return
    plan.add(
        "DevicePolicy",
        "closed",
        "device nodes other than the pseudo ones (null, zero, full, random, urandom, tty, ptmx, pts) are refused "
        "but for those allowed below",
    )
    access: dict[str, set[str]] = defaultdict(set)
    for need in opened:
        if need.device is not None and need.path not in PSEUDO_DEVICES:
            access[need.path].add("w" if need.op in WRITE_OPS else "r")
    for path in sorted(access):
        used = [need for need in opened if need.path == path]
        plan.add(
            "DeviceAllow",
            f"{path} {''.join(sorted(access[path], reverse=True))}",
            _observed(used, plan.facts),
            merge_evidence(need.evidence for need in used),
        )


def _exec_paths(plan: _Planner, roots: Sequence[WritableRoot]) -> None:
    """NoExecPaths=/ with ExecPaths= for the directories the runs executed programs and mapped libraries from: a
    program executed from a directory the runs wrote (a build's own tools) keeps that whole writable root
    executable, since its names change from run to run; a writable root (or private /tmp) no run executed from
    is named in NoExecPaths= of its own, which NoExecPaths=/ is not."""
    executed = plan.files(("/",), (FileOp.EXEC, FileOp.MAP_EXEC))
    if not executed:
        plan.add("NoExecPaths", None, "no program or library was recorded executed (a recording attached late)")
        return
    written = [root.path for root in roots if root.directory]
    written += list(TEMPORARY_TREES) if plan.value("PrivateTmp") else []
    directories: dict[str, list[FileNeed]] = defaultdict(list)
    for need in executed:
        root = next((path for path in written if is_under(need.path, path)), None)
        # As the line will name it: a directory no unit line holds is opened by the nearest one above.
        directories[nearest_unit_path(root or posixpath.dirname(need.path))].append(need)
    chosen: dict[str, list[FileNeed]] = {}
    for directory in sorted(directories, key=len):
        above = next((path for path in chosen if is_under(directory, path)), None)
        chosen.setdefault(above or directory, []).extend(directories[directory])
    if "/" in chosen:
        # ExecPaths=/ beside NoExecPaths=/ is refused: of two entries at one path systemd keeps NoExecPaths=.
        plan.add(
            "NoExecPaths",
            None,
            f"{_observed(chosen['/'], plan.facts)}: it needs ExecPaths=/, which systemd drops beside NoExecPaths=/",
        )
        return
    plan.add("NoExecPaths", "/", "nothing is executable but from the directories below, as in every run")
    # A path systemd mounts for the unit itself (each writable root, the private /tmp and /var/tmp) stays
    # executable under NoExecPaths=/ unless named: make_noexec passes the namespace's other mounts by
    # (src/core/namespace.c, systemd 252; systemd/sandbox.mounted_by_the_unit).
    mounts: list[tuple[str, Evidence | None]] = [(root.path, root.evidence) for root in roots]
    mounts += [(tree, None) for tree in TEMPORARY_TREES] if plan.value("PrivateTmp") else []
    for path, evidence in mounts:
        if not any(is_under(path, directory) or is_under(directory, path) for directory in chosen):
            why = f"{path} is a mount of the unit's own, which NoExecPaths=/ does not reach; no run executed there"
            plan.add("NoExecPaths", path, why, evidence)
    for directory, needs in sorted(chosen.items()):
        plan.add("ExecPaths", directory, _observed(needs, plan.facts), merge_evidence(n.evidence for n in needs))


def _proc(plan: _Planner) -> None:
    others = plan.kernel(KernelUse.OTHER_PROCESS)
    if others:
        plan.add(
            "ProtectProc", None, f"{others[0].detail}: {plan.facts.describe(others[0].evidence)}", others[0].evidence
        )
    else:
        plan.add("ProtectProc", "invisible", "no other process's /proc entries read")
    system = [
        n
        for n in plan.files(("/proc",))
        if n.path != "/proc"
        and not n.path.split("/")[2].isdigit()
        and n.path.split("/")[2] not in ("self", "thread-self")
    ]
    plan.decide("ProcSubset", "pid", system, "only processes' own /proc entries read")


def _kernel_switch(plan: _Planner, key: str, use: KernelUse, kept: str) -> None:
    seen = plan.kernel(use)
    if seen:
        plan.add(key, None, f"{seen[0].detail}: {plan.facts.describe(seen[0].evidence)}", seen[0].evidence)
    else:
        plan.add(key, "yes", kept)


def _network(plan: _Planner) -> None:
    beyond = plan.kernel(KernelUse.NETWORK)
    inet = {"AF_INET", "AF_INET6"} & plan.facts.families
    others = plan.facts.families - {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    if beyond:
        why = f"{beyond[0].detail}: {plan.facts.describe(beyond[0].evidence)}"
        plan.add("PrivateNetwork", None, why, beyond[0].evidence)
        plan.add("IPAddressDeny", None, why, beyond[0].evidence)
        return
    loopback = plan.kernel(KernelUse.LOOPBACK)
    # A loopback port or abstract AF_UNIX name no run bound is a service of the host's (a database, the DNS stub at
    # 127.0.0.53): a network namespace of its own has a loopback and abstract names of its own, where none listens.
    bound = {_peer(n.detail) for n in loopback if n.detail.startswith("bind ")}
    hosts = [n for n in loopback if not n.detail.startswith("bind ") and _peer(n.detail) not in bound]
    if others:
        plan.add(
            "PrivateNetwork",
            None,
            f"sockets of {', '.join(sorted(others))}, which a network namespace of its own may not offer",
        )
    elif hosts:
        why = f"{hosts[0].detail}: a peer on loopback no run bound, which a network namespace of its own does not reach"
        plan.add("PrivateNetwork", None, f"{why}: {plan.facts.describe(hosts[0].evidence)}", hosts[0].evidence)
    else:
        plan.add(
            "PrivateNetwork",
            "yes",
            "it talks only to itself, over loopback" if loopback else "no address beyond loopback bound or connected",
            merge_evidence(n.evidence for n in loopback) if loopback else None,
        )
    plan.add(
        "IPAddressDeny",
        "any",
        "no address beyond loopback bound or connected" + ("" if inet else "; no Internet socket"),
    )
    plan.add(
        "IPAddressAllow",
        "localhost",
        "loopback stays open: "
        + (", ".join(sorted({n.detail for n in loopback if not _peer(n.detail).startswith("@")})) or "nothing used it"),
    )


def _peer(detail: str) -> str:
    """What a loopback use's address names: the port (connect 127.0.0.1:8080, bind [::1]:0), or the abstract name
    (connect @name)."""
    address = detail.partition(" ")[2]
    return address if address.startswith("@") else address.rpartition(":")[2]


def _users(plan: _Planner, roots: Sequence[WritableRoot]) -> None:
    needed = sorted(plan.facts.capabilities)
    if needed:
        plan.add("PrivateUsers", None, f"{', '.join(needed)} needed against the host's user namespace")
    else:
        plan.add("PrivateUsers", "yes", "no capability needed against the host's user namespace")
    user = plan.facts.unprivileged_user
    shared = [root.path for root in roots if root.setting == "ReadWritePaths"]
    if user == NOBODY and not shared and plan.value("PrivateTmp") and plan.value("ProtectHome"):
        plan.add(
            "DynamicUser",
            "yes",
            f"every run ran as {NOBODY}, who owns no file: a user allocated at start reads what it read, and "
            "writes only in the directories systemd makes for it and its own /tmp",
        )
    elif user:
        plan.add(
            "DynamicUser",
            None,
            f"the runs wrote {', '.join(shared)}, which a user allocated at start could not"
            if shared
            else f"the runs ran as {user}, whose files a user allocated at start could not read"
            if user != NOBODY
            else "it needs the host's /tmp or home, which DynamicUser= makes private or read-only",
        )
        plan.add("User", user, "every run ran as this user")
    else:
        plan.add(
            "User",
            None,
            "the runs ran as root, and a trace cannot show whether what they read is readable by "
            "another user: record it as the user it should run as",
        )


def profile_facts(profile: Profile, min_runs: int) -> ProfileFacts:
    """What the profile's syscalls, capabilities, families and runs say that the settings depend on."""
    users = {run.user for run in profile.runs}
    return ProfileFacts(
        syscalls=profile.syscall_names(),
        capabilities=frozenset(profile.bounding_set()),
        families=frozenset(profile.family_names()),
        unprivileged_user=users.pop() if profile.recorded_unprivileged and len(users) == 1 else None,
        describe=lambda evidence: describe_evidence(evidence, profile, min_runs),
    )
