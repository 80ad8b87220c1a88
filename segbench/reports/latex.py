"""LaTeX report: a booktabs table (metrics as rows, models as columns), optionally a standalone document."""

from __future__ import annotations

import re

from segbench.reports.table import build_table, fmt
from segbench.results import RunResults

_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return re.sub(r"[&%$#_{}~^\\]", lambda m: _SPECIAL[m.group()], str(text))


def render(results: RunResults, options: dict | None = None) -> str:
    options = options or {}
    table = build_table(results)
    c = results.config
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "c" * len(table.models) + "}",
        r"\toprule",
        "Metric & " + " & ".join(escape(m) for m in table.models) + r" \\",
        r"\midrule",
    ]
    for metric in table.metrics:
        cells = []
        for model in table.models:
            cell = table.cells[metric].get(model)
            if cell is None:
                cells.append("--")
                continue
            mean = fmt(cell.mean)
            mean = rf"\textbf{{{mean}}}" if model in table.best[metric] else mean
            cells.append(rf"{mean} {{\scriptsize [{fmt(cell.ci_low)}, {fmt(cell.ci_high)}]}}")
        lines.append(escape(metric.replace("_", " ")) + " & " + " & ".join(cells) + r" \\")
    lines.append(r"\midrule")
    for metric in ("dice", "jaccard"):
        if metric in table.cells:
            pooled = [fmt(table.cells[metric][m].pooled) if m in table.cells[metric] else "--" for m in table.models]
            lines.append(f"{metric} (pooled) & " + " & ".join(pooled) + r" \\")
    task, dataset = escape(c.get("task", "")), escape(c.get("dataset", ""))
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{Segmentation of {task} on {dataset}: per-image mean with 95\% bootstrap CI "
        rf"(pooled over all pixels below the rule), threshold {escape(c.get('threshold', 0.5))}, "
        rf"{escape(c.get('eval_samples_used', ''))} images, seed {escape(c.get('seed', ''))}, "
        rf"preset {escape(c.get('preset', ''))}. Best mean in bold.}}",
        rf"\label{{tab:segbench-{re.sub(r'[^A-Za-z0-9-]', '-', str(c.get('task', 'results')))}}}",
        r"\end{table}",
    ]
    body = "\n".join(lines) + "\n"
    if options.get("standalone"):
        return "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + body + "\\end{document}\n"
    return body
