"""What a correction is, the interface each format that reads policies implements for it, and what they share.

A correction is the lines that make a deployed policy allow what it misses, in the policy's own format, ready
to paste. It adds what is missing and nothing else: excess stays a list of candidates for a person to weigh,
never an automatic removal, and the rest of the policy stays as its authors wrote it. A regenerated policy
would do more than asked: it drops everything the traces did not use. Each format writes its own
(generators.formats.correction picks it); names are checked (generators.policy_names) and comments escaped,
as in the formats' own renderers: the text is pasted into a policy.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from generators.comparison import Comparison, ItemKind
from profiler import abi


@dataclass(frozen=True, slots=True)
class Correction:
    how: str  # where the text goes, in one sentence
    text: str  # the lines to paste
    language: str  # of the text, for a Markdown code fence: ini, json, yaml
    notes: tuple[str, ...] = ()  # changes that cannot be pasted, such as taking a name out of a rule


class Corrector(ABC):
    """A format that can write the correction of a policy it reads."""

    @abstractmethod
    def correct(self, comparison: Comparison) -> Correction:
        """The lines that make comparison.policy allow what it misses; called only when comparison.fix says so."""


def allowed(comparison: Comparison) -> dict[ItemKind, tuple[str, ...]]:
    """What the fix allows, by kind."""
    return dict(comparison.fix.allow)


def unnamed_families(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Families a policy can name, and the numbered ones profiler's table does not know (AF_<number>)."""
    named = [name for name in names if name in abi.ADDRESS_FAMILIES]
    return named, [name for name in names if name not in abi.ADDRESS_FAMILIES]


def plain_correction(comparison: Comparison) -> Correction:
    """The correction of a format nobody deploys as a policy: what to allow, in words."""
    lines = [f"{kind.label}: {' '.join(names)}" for kind, names in comparison.fix.allow]
    if comparison.fix.portable:
        lines.append(f"syscall (portability): {' '.join(comparison.fix.portable)}")
    if comparison.fix.enosys:
        lines.append(f"refuse with ENOSYS: {' '.join(comparison.fix.enosys)}")
    return Correction(how="Allow:", text="\n".join(lines) + "\n", language="text")
