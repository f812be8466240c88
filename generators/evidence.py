"""Evidence in words for people: the comment beside an item, the kernel path of a capability check, a run.

describe_evidence is the comment every format writes beside an item: where, how often, in how many runs.
"""

from collections.abc import Sequence

from generators.profile import CapabilityPath, Evidence, Profile, RunRef

MAX_PROGRAMS = 3


def describe_evidence(evidence: Evidence, profile: Profile, min_runs: int, *, allowed_anyway: bool = False) -> str:
    """Such as "12× in 2/3 runs by /usr/bin/ls, /usr/bin/python3.11 (uncertain: seen in fewer than 3 runs)"."""
    programs = list(evidence.programs[:MAX_PROGRAMS])
    if len(evidence.programs) > MAX_PROGRAMS:
        programs.append(f"+{len(evidence.programs) - MAX_PROGRAMS} more")
    text = f"{evidence.count}× in {evidence.support}/{len(profile.runs)} runs"
    if programs:
        text += f" by {', '.join(programs)}"
    # An item a policy allows whatever the traces say (exit_group) is never uncertain.
    if profile.is_uncertain(evidence, min_runs) and not allowed_anyway:
        text += f" (uncertain: seen in fewer than {min(min_runs, len(profile.runs))} runs)"
    return text


def kernel_path(frames: Sequence[str]) -> str:
    """The kernel call path in call order (frames are stored innermost first)."""
    return " → ".join(reversed(frames))


def path_origin(path: CapabilityPath) -> str:
    """How the traces know a capability path: its kernel call path, or why the need was inferred."""
    if path.inferred:
        return path.inferred
    return f"kernel path: {kernel_path(path.frames) if path.frames else 'not captured'}"


def describe_run(run: RunRef) -> str:
    """Such as "git-clone.trace.json: `git clone a b` as nobody on vm, 2026-11-29T02:18:07Z"."""
    return f"{run.source}: `{' '.join(run.command)}` as {run.user} on {run.hostname}, {run.started_at}"
