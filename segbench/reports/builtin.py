"""Registers the built-in report formats through the public plugin API."""

from segbench import FormatSpec, hookimpl
from segbench.reports import csv_format, latex, markdown


@hookimpl
def register_formats(register) -> None:
    register(FormatSpec("md", markdown.render, "md", "Markdown: settings, mean [CI] and pooled tables"))
    register(FormatSpec("latex", latex.render, "tex", "LaTeX booktabs table (--standalone for a document)"))
    register(FormatSpec("csv", csv_format.render, "csv", "CSV of the summary rows"))
