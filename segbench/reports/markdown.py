"""Markdown report: settings, the comparison tables, per-model cost."""

from __future__ import annotations

from segbench.reports.table import Table, build_table, fmt, header_items, model_rows
from segbench.results import RunResults


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def mean_table(table: Table) -> list[str]:
    lines = [_row(["Metric", *table.models]), _row(["---", *["---:"] * len(table.models)])]
    for metric in table.metrics:
        cells = []
        for model in table.models:
            c = table.cells[metric].get(model)
            cells.append("–" if c is None else f"{_bold(fmt(c.mean), model in table.best[metric])} "
                         f"[{fmt(c.ci_low)}, {fmt(c.ci_high)}]")
        lines.append(_row([metric, *cells]))
    return lines


def pooled_table(table: Table) -> list[str]:
    lines = [_row(["Metric", *table.models]), _row(["---", *["---:"] * len(table.models)])]
    for metric in table.metrics:
        lines.append(_row([metric, *(fmt(table.cells[metric][m].pooled) if m in table.cells[metric] else "–"
                                     for m in table.models)]))
    return lines


def render(results: RunResults, options: dict | None = None) -> str:
    table = build_table(results)
    c = results.config
    lines = [f"# segbench: {c.get('task', '')} on {c.get('dataset', '')}", ""]
    lines += [f"- **{label}**: {value}" for label, value in header_items(results)]
    lines += ["", "## Per-image mean [95% bootstrap CI]", "", *mean_table(table), ""]
    lines += ["Best mean per metric in bold.", "", "## Pooled over all pixels", "", *pooled_table(table), ""]
    lines += ["## Models", "", _row(["Model", "Parameters", "Training (s)", "Masks/s", "Status"]),
              _row(["---", "---:", "---:", "---:", "---"])]
    lines += [_row(list(r)) for r in model_rows(results)]
    return "\n".join(lines) + "\n"
