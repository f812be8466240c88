"""Reports of a comparison (traces against a policy), a drift (two profiles), a lint: text, Markdown, JSON, SARIF.

    report(format)   the Report of a ReportFormat, exhaustively; each implementation is imported on use
    interface        ReportFormat, and Report: renders a Comparison, a Drift and a lint of policies
    text             for a terminal
    markdown         for a pull-request comment
    json             for other tools: stable keys, described there
    sarif            for code scanning (SARIF 2.1.0): each finding at the lines of the policy it is about
    explain          where one item of a profile came from: what `profiler explain` prints

Every string from a trace or a policy (paths, names, lint messages that quote a file) is escaped for the
format's reader: text through profiler.escaping.visible, line by line, so that no control character reaches a
terminal or forges a line; Markdown also with its own syntax escaped (markdown_text, markdown_code), so that
nothing recorded adds a table cell, a link or an image to a pull-request comment; JSON and SARIF exactly, with JSON's
escapes (profiler.escaping.json_dumps). A run is named by its program, never its command line: reports get
published, and arguments can hold secrets.
"""

from typing import assert_never

from generators.reports.interface import Report, ReportFormat


def report(report_format: ReportFormat) -> Report:
    """The report class of a format."""
    match report_format:
        case ReportFormat.TEXT:
            from generators.reports.text import TextReport

            return TextReport()
        case ReportFormat.MARKDOWN:
            from generators.reports.markdown import MarkdownReport

            return MarkdownReport()
        case ReportFormat.JSON:
            from generators.reports.json import JsonReport

            return JsonReport()
        case ReportFormat.SARIF:
            from generators.reports.sarif import SarifReport

            return SarifReport()
        case _:
            assert_never(report_format)
