"""Registers the built-in report formats through the public plugin API.

Each renderer's module loads at its first call: listing formats, or checking a command's --format, does
not import what rendering needs (numpy, scipy, matplotlib, torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from segbench import FormatSpec, hookimpl


def _on_call(module: str, function: str) -> Callable[..., str]:
    """segbench.reports.<module>.<function>, imported when first called."""
    def render(*args, **kwargs) -> str:
        return getattr(importlib.import_module(f"segbench.reports.{module}"), function)(*args, **kwargs)
    return render


@hookimpl
def register_formats(register) -> None:
    register(FormatSpec("md", _on_call("markdown", "render"), "md",
                        "Markdown: settings, mean [CI] and pooled tables, paired tests",
                        figures="linked", render_study=_on_call("study", "render_md")))
    register(FormatSpec("latex", _on_call("latex", "render"), "tex", "LaTeX booktabs tables (--standalone for a document)",
                        figures="linked", figure_file="pdf", render_study=_on_call("study", "render_latex")))
    register(FormatSpec("html", _on_call("html", "render"), "html", "one self-contained HTML file with embedded figures",
                        figures="embedded", render_study=_on_call("study", "render_html")))
    register(FormatSpec("csv", _on_call("csv_format", "render"), "csv",
                        "CSV of the summary rows: all images, by stratum and subgroup",
                        render_study=_on_call("study", "render_csv")))
