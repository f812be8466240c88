"""Where one item of a profile came from, in full: what `profiler explain` prints.

An item is a syscall (openat, or the number of one the traces could not name), a capability (CAP_CHOWN),
an address family (AF_NETLINK), a namespace type (user, or CLONE_NEWUSER) or a sandboxing setting of systemd
(ProtectHome, ReadWritePaths=): its value, the observation it rests on or that rules it out, and the writes a
writable path covers. An item the traces never used
is one line saying so, and what a generated policy does with it; a name that is none of these is an error.
Each line is escaped whole (profiler.escaping.visible): a recorded path or argv cannot break a line or act on
the terminal.
"""

import re
from collections.abc import Iterable

from generators.abis import exists_on
from generators.evidence import MAX_PROGRAMS, describe_evidence, describe_run, path_origin
from generators.oci_runtimes import OCI_RUNTIMES
from generators.profile import (
    ALL_NAMESPACE_TYPES,
    NAMESPACE_TYPES,
    CapabilityUse,
    Evidence,
    Profile,
)
from generators.sandbox import plan_sandbox, profile_facts
from generators.syscall_plan import FALLS_BACK, plan_syscalls
from generators.systemd.groups import syscall_groups
from generators.systemd.names import SANDBOX_SETTINGS
from generators.systemd.sandbox import refused_by_settings, sandbox_lines
from profiler import abi, syscalls
from profiler.errors import UnknownItemError
from profiler.escaping import visible
from profiler.trace import CheckClass


def explain(profile: Profile, item: str, *, min_runs: int = 1, portability: bool = True) -> str:
    """The full explanation of one item, as lines of text; UnknownItemError for a name that is no item."""
    return "".join(visible(line) + "\n" for line in _explanation(profile, item, min_runs, portability))


def _explanation(profile: Profile, item: str, min_runs: int, portability: bool) -> list[str]:
    upper = item.upper()
    if upper.startswith("CAP_"):
        return _capability(profile, item)
    if upper.startswith("AF_"):
        return _family(profile, item, min_runs)
    if item in ALL_NAMESPACE_TYPES or upper in NAMESPACE_TYPES or item == "any":
        return _namespace(profile, NAMESPACE_TYPES.get(upper, item), min_runs)
    if item.removesuffix("=") in SANDBOX_SETTINGS:
        return _setting(profile, item.removesuffix("="), min_runs)
    if re.fullmatch(r"#?\d+", item):
        return _syscall_number(profile, int(item.lstrip("#")), min_runs, portability)
    if exists_on(item, profile.abis()):
        return _syscall(profile, item, min_runs, portability)
    raise UnknownItemError(
        f"{item}: not a syscall, capability (CAP_*), address family (AF_*) or namespace type "
        f"({', '.join(ALL_NAMESPACE_TYPES)}) or sandboxing setting (ProtectHome=); check the spelling"
    )


def _setting(profile: Profile, key: str, min_runs: int) -> list[str]:
    if profile.sandbox is None:
        return [
            f"{key}=: not written: the traces did not record files, devices and kernel interfaces, and no setting "
            "is inferred from what was not recorded"
        ]
    plan = plan_sandbox(profile.sandbox, profile_facts(profile, min_runs), refused_by_settings(syscall_groups()))
    lines = []
    for line_key, value, why in sandbox_lines(plan):
        if line_key == key and value != "":
            lines.append(f"{key}={value}: {why}" if value is not None else f"{key}= left open: {why}")
    planned = [setting for setting in plan.settings if setting.key == key]
    if planned and not lines:  # planned, but no line can hold it (a device whose path no unit line can name)
        lines.append(f"{key}= not written: {planned[0].why}")
    runs: list[int] = []
    for setting in planned:
        if setting.evidence is not None:
            lines += _evidence_lines(profile, setting.evidence, min_runs)
            runs += setting.evidence.runs
    for root in plan.writable:
        if root.setting == key:
            lines.append(f"  {root.value} covers:")
            for write in sorted(root.writes, key=lambda write: (write.path, write.op)):
                lines.append(
                    f"    {write.op.value} {write.path}: {describe_evidence(write.evidence, profile, min_runs)}"
                )
            runs += root.evidence.runs
    if not lines:
        return [f"{key}=: not written: no run wrote where it would make writable"]
    return _with_runs(lines, profile, runs) if runs else lines


def _runs_of(profile: Profile) -> str:
    return f"{len(profile.runs)} run{'s' if len(profile.runs) != 1 else ''}"


def _run_numbers(evidence: Evidence) -> str:
    numbers = [str(index + 1) for index in evidence.runs]
    return f"run{'s' if len(numbers) != 1 else ''} {', '.join(numbers)}"


def _evidence_lines(profile: Profile, evidence: Evidence, min_runs: int) -> list[str]:
    lines = [f"  {describe_evidence(evidence, profile, min_runs)}"]
    if len(evidence.programs) > MAX_PROGRAMS:
        lines.append(f"  programs: {', '.join(evidence.programs)}")
    if evidence.first_s is not None:
        lines.append(f"  first use: {evidence.first_s:.3f}s after its run started")
    return lines


def _with_runs(lines: list[str], profile: Profile, runs: Iterable[int]) -> list[str]:
    """The lines, then the runs they refer to by number."""
    return [*lines, "runs:", *(f"  {index + 1}  {describe_run(profile.runs[index])}" for index in sorted(set(runs)))]


def _syscall(profile: Profile, name: str, min_runs: int, portability: bool) -> list[str]:
    need = next((need for need in profile.syscalls if need.name == name), None)
    plan = plan_syscalls(profile, portability)
    # As deployed: a policy that answers clone3 (and its kin) with ENOSYS, loaded by an OCI runtime.
    deployed = plan_syscalls(profile, portability, answered_enosys=FALLS_BACK, runtimes=OCI_RUNTIMES)
    runtime = dict(deployed.runtime)
    if need is None:
        added = dict(plan.added)
        implied = {each.name: each for each in deployed.additions}
        if name in added:
            verdict = f"a generated policy allows it anyway: {added[name]}"
        elif name in implied and implied[name].runtime:
            verdict = f"a generated OCI or k8s profile allows it: {implied[name].why}"
        elif name in implied:
            refused = ", ".join(implied[name].because)
            verdict = (
                f"a generated policy allows it where it answers {refused} with ENOSYS (a systemd drop-in with "
                f"RestrictNamespaces=, an OCI profile with --args): {implied[name].why}"
            )
        elif name in plan.enosys:
            verdict = "a generated policy refuses it with ENOSYS, so that a C library that tries it falls back"
        else:
            verdict = "a generated policy refuses it"
        return [f"{name}: syscall not called in the {_runs_of(profile)}; {verdict}"]
    lines = [f"{name}: syscall, allowed by a generated policy", *_evidence_lines(profile, need.evidence, min_runs)]
    lines.append(f"  ABIs: {', '.join(need.abis)}")
    if name in runtime:
        lines.append(f"  also {runtime[name]}")
    return _with_runs(lines, profile, need.evidence.runs)


def _syscall_number(profile: Profile, number: int, min_runs: int, portability: bool) -> list[str]:
    unresolved = [item for item in profile.unresolved if item.nr == number]
    if not unresolved:
        name, reason = syscalls.syscall_name(profile.native_abi, number)
        if name is None:
            raise UnknownItemError(f"{number}: {reason}, and no trace called it")
        return _syscall(profile, name, min_runs, portability)
    lines = []
    for item in unresolved:
        lines.append(f"#{number}: syscall number of the {item.abi} ABI without a name ({item.reason})")
        lines.append("  never emitted in a policy: listed in a comment of the generated policy")
        lines += _evidence_lines(profile, item.evidence, min_runs)
    return _with_runs(lines, profile, (run for item in unresolved for run in item.evidence.runs))


def _capability_verdict(profile: Profile, use: CapabilityUse) -> str:
    if use.needed:
        if profile.recorded_unprivileged:
            return "needed: kept in the bounding set; the runs were not root, so a systemd drop-in makes it ambient"
        return "needed: kept in the bounding set"
    if use.needed_in_user_namespace_only:
        return "needed only in a user namespace the workload created: the bounding set does not need it"
    if use.denied:
        return "attempted and refused: left out, since granting it would change what the workload does"
    return "only probed (noaudit checks): not a need, left out"


_CLASS_WORDS = {
    CheckClass.NEEDED: "needed",
    CheckClass.DENIED: "denied (attempted and refused)",
    CheckClass.PROBE: "probe (noaudit: says nothing about need)",
}


def _capability(profile: Profile, item: str) -> list[str]:
    number = abi.capability_number(item)
    known = [use for use in profile.capabilities if use.name.upper() == item.upper()]
    if number is None and not known:
        raise UnknownItemError(f"{item}: not a capability profiler knows (see capabilities(7)); check the spelling")
    name = known[0].name if known else abi.CAPABILITIES[number or 0]
    if not profile.capabilities_known:
        return [f"{name}: the traces recorded no capability checks (a kernel without the probes)"]
    if not known:
        return [f"{name}: capability never checked in the {_runs_of(profile)}; a generated policy leaves it out"]
    use = known[0]
    lines = [f"{name}: capability, {_capability_verdict(profile, use)}"]
    for path in use.paths:
        where = f"in {path.syscall}" if path.syscall else "outside a syscall"
        asked = f", asked by {path.via}" if path.via else ""
        namespace = "" if path.initial_user_ns else ", in a user namespace"
        evidence = path.evidence
        lines.append(
            f"  {_CLASS_WORDS[path.classification]}: {path.program} {where}{asked}{namespace}, "
            f"{evidence.count}× in {_run_numbers(evidence)}"
        )
        lines.append(f"    {path_origin(path)}")
    return _with_runs(lines, profile, (run for path in use.paths for run in path.evidence.runs))


def _family(profile: Profile, item: str, min_runs: int) -> list[str]:
    known = [use for use in profile.families if use.name.upper() == item.upper()]
    if not known:
        name = next((family for family in abi.ADDRESS_FAMILIES if family.upper() == item.upper()), None)
        if name is None:
            raise UnknownItemError(f"{item}: not an address family profiler knows (see address_families(7))")
        return [f"{name}: no socket of this family in the {_runs_of(profile)}; a generated policy refuses it"]
    use = known[0]
    verdict = (
        "allowed by a generated policy"
        if use.restricted_by_socket_filters
        else "made only by socketpair(), which RestrictAddressFamilies= and socket() filters do not limit"
    )
    lines = [
        f"{use.name} ({use.number}): address family, {verdict}",
        *_evidence_lines(profile, use.evidence, min_runs),
        f"  socket types: {', '.join(use.types)}",
    ]
    if use.syscalls:
        lines.append(f"  made by: {', '.join(use.syscalls)}")
    return _with_runs(lines, profile, use.evidence.runs)


def _namespace(profile: Profile, name: str, min_runs: int) -> list[str]:
    need = next((need for need in profile.namespaces if need.name == name), None)
    if need is None:
        return [
            f"{name}: namespace type not created or joined in the {_runs_of(profile)}; a generated policy refuses it"
        ]
    what = "joined with setns() without a type" if name == "any" else "created or joined"
    lines = [f"{name}: namespace type {what}, allowed by a generated policy"]
    lines += [*_evidence_lines(profile, need.evidence, min_runs), f"  through {', '.join(need.syscalls)}"]
    return _with_runs(lines, profile, need.evidence.runs)
