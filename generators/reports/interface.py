"""What a report is: ReportFormat, the formats, and Report, which renders a Comparison and a Drift."""

from abc import ABC, abstractmethod
from enum import StrEnum

from generators.comparison import Comparison, Drift


class ReportFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class Report(ABC):
    @abstractmethod
    def comparison(self, comparison: Comparison) -> str:
        """The report of `profiler diff --policy` and `profiler check`."""

    @abstractmethod
    def drift(self, drift: Drift) -> str:
        """The report of `profiler diff OLD NEW`."""
