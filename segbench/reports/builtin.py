"""Registers the built-in report formats through the public plugin API."""

from segbench import FormatSpec, hookimpl
from segbench.reports import csv_format, html, latex, markdown


@hookimpl
def register_formats(register) -> None:
    register(FormatSpec("md", markdown.render, "md", "Markdown: settings, mean [CI] and pooled tables, paired tests"))
    register(FormatSpec("latex", latex.render, "tex", "LaTeX booktabs tables (--standalone for a document)"))
    register(FormatSpec("html", html.render, "html", "one self-contained HTML file with embedded figures"))
    register(FormatSpec("csv", csv_format.render, "csv", "CSV of the summary rows"))
