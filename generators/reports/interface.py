"""What a report is: ReportFormat, the formats, and Report, which renders a Comparison, a Drift and a lint."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads ReportFormat for its options: a comparison loads when one is made
    from generators.comparison import Comparison, Drift
    from generators.interface import Policy


class ReportFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"
    SARIF = "sarif"  # SARIF 2.1.0, for code scanning: each finding at its file and line


class Report(ABC):
    @abstractmethod
    def comparison(self, comparison: "Comparison") -> str:
        """The report of `profiler diff --policy` and `profiler check`."""

    @abstractmethod
    def drift(self, drift: "Drift") -> str:
        """The report of `profiler diff OLD NEW`."""

    @abstractmethod
    def lint(self, policies: Sequence["Policy"]) -> str:
        """The report of `profiler lint`: the findings of each policy as read, without traces."""
