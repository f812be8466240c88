"""The comment every format writes beside an item: where it was seen, how often, in how many runs."""

from generators.profile import Evidence, Profile

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
