"""Registers the built-in report formats through the public plugin API."""

from segbench import FormatSpec, hookimpl
from segbench.reports import csv_format, html, latex, markdown, study


@hookimpl
def register_formats(register) -> None:
    register(FormatSpec("md", markdown.render, "md", "Markdown: settings, mean [CI] and pooled tables, paired tests",
                        figures="linked", render_study=study.render_md))
    register(FormatSpec("latex", latex.render, "tex", "LaTeX booktabs tables (--standalone for a document)",
                        figures="linked", figure_file="pdf", render_study=study.render_latex))
    register(FormatSpec("html", html.render, "html", "one self-contained HTML file with embedded figures",
                        figures="embedded", render_study=study.render_html))
    register(FormatSpec("csv", csv_format.render, "csv", "CSV of the summary rows: all images, by stratum and subgroup",
                        render_study=study.render_csv))
