"""Markdown report: settings, the comparison tables, the paired test, per-model cost and figures."""

from __future__ import annotations

from segbench.reports.comparison import Comparison, compare, fmt_p
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.reports.table import Entry, Table, build_table, fmt, grid
from segbench.results import RunResults


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _entry(entry: Entry | None) -> str:
    if entry is None:
        return "–"
    text = f"**{fmt(entry.value)}**" if entry.best else fmt(entry.value)
    return text if entry.ci is None else f"{text} [{fmt(entry.ci[0])}, {fmt(entry.ci[1])}]"


def _grid(table: Table, pooled: bool, transpose: bool) -> list[str]:
    labels, rows = grid(table, pooled, transpose)
    lines = [_row(labels), _row(["---", *["---:"] * (len(labels) - 1)])]
    return lines + [_row([label, *map(_entry, entries)]) for label, entries in rows]


def mean_table(table: Table, transpose: bool = False) -> list[str]:
    """Per-image mean [95% CI], the best per metric in bold."""
    return _grid(table, False, transpose)


def pooled_table(table: Table, transpose: bool = False) -> list[str]:
    """Pooled over all pixels, the best per metric in bold."""
    return _grid(table, True, transpose)


def comparison_section(comparison: Comparison) -> list[str]:
    lines = [f"## Paired comparison with {comparison.baseline} (per-image {comparison.metric})", "",
             _row(["Model", "n", "Median difference [95% CI]", "p (Wilcoxon)", "p (Holm)"]),
             _row(["---", "---:", "---:", "---:", "---:"])]
    for row in comparison.rows:
        t = row.test
        lines.append(_row([row.model, str(t.n), f"{fmt(t.median_difference)} [{fmt(t.ci_low)}, {fmt(t.ci_high)}]",
                           fmt_p(t.p_value), fmt_p(row.p_holm)]))
    return [*lines, "", f"Test: {comparison.method}.", ""]


def render(results: RunResults, options: dict | None = None) -> str:
    """options: transpose, baseline, higher_is_better, figures (see segbench.reports.options)."""
    options = options or {}
    table = build_table(results, options.get("higher_is_better"))
    transpose = bool(options.get("transpose"))
    data = results.record.plan.data
    lines = [f"# segbench: {data.task} on {data.dataset}", ""]
    lines += [f"- **{label}**: {value}" for label, value in header_items(results)]
    lines += ["", "## Per-image mean [95% bootstrap CI]", "", *mean_table(table, transpose), ""]
    lines += ["Best value per metric in bold (4 decimals).", "", "## Pooled over all pixels", "",
              *pooled_table(table, transpose), ""]
    comparison = compare(results, options.get("baseline"))
    if comparison is not None:
        lines += comparison_section(comparison)
    lines += ["## Models", "", _row(list(MODEL_COLUMNS)), _row(["---", "---", *["---:"] * (len(MODEL_COLUMNS) - 3), "---"])]
    lines += [_row(list(r)) for r in model_rows(results)]
    hyperparameters = hyperparameter_items(results)
    if hyperparameters:
        lines += ["", "### Hyperparameters", "", *(f"- **{model}**: {text}" for model, text in hyperparameters)]
    figures = [f for f in options.get("figures") or [] if f.path]
    if figures:
        lines += ["", "## Figures"]
        for figure in figures:
            lines += ["", f"![{figure.name}]({figure.path})", "", figure.caption]
    return "\n".join(lines) + "\n"
