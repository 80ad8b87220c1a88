"""Markdown report: settings, the comparison tables, strata and subgroups, the paired comparison, uncertainty,
per-model cost and figures."""

from __future__ import annotations

from segbench.reports.comparison import PAIRED_COLUMNS, Comparison, compare, comparison_rows
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.reports.strata import (DETECTION_COLUMNS, DETECTION_NOTE, detection_rows, floor_note, images_label,
                                     strata, subgroups)
from segbench.reports.table import BOLD_RULE, Entry, Table, build_table, fmt, grid, unpooled_note
from segbench.reports.uncertainty import METHOD, UNCERTAINTY_COLUMNS, uncertainty_rows
from segbench.reports.upper_bound import METHOD as UPPER_BOUND_METHOD
from segbench.reports.upper_bound import UPPER_BOUND_COLUMNS, upper_bound_rows
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


def _text_table(labels: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    """A table of text cells, the first column left-aligned."""
    return [_row(list(labels)), _row(["---", *["---:"] * (len(labels) - 1)]), *(_row(r) for r in rows)]


def comparison_section(comparison: Comparison) -> list[str]:
    lines = [f"## Paired comparison with {comparison.baseline} (per-image {comparison.metric})", "",
             *_text_table(PAIRED_COLUMNS, comparison_rows(comparison)), ""]
    lines += [f"- {sentence}" for sentence in comparison.sentences()]
    return [*lines, "", f"Test: {comparison.method}.", ""]


def strata_section(results: RunResults, options: dict) -> list[str]:
    """Images with and without foreground in the reference: the non-empty stratum's table and detection."""
    found = strata(results)
    lines = ["## Images with and without foreground in the reference", "", floor_note(results, found), ""]
    if found.non_empty is not None:
        n = images_label(found.non_empty)
        lines += [f"### Images with foreground in the reference ({n}): per-image mean [95% bootstrap CI]", "",
                  *mean_table(build_table(found.non_empty, options), bool(options.get("transpose"))), ""]
    if found.has_empty:
        lines += ["### Image-level detection and empty references", "",
                  *_text_table(DETECTION_COLUMNS, detection_rows(found)), "", DETECTION_NOTE, ""]
    return lines


def subgroup_section(results: RunResults, options: dict) -> list[str]:
    column = options["by"]
    lines = [f"## Results by {column}: per-image mean [95% bootstrap CI]", ""]
    for value, n, empty, part in subgroups(results, column):
        lines += [f"### {column} = {value} ({n} images, {empty} with an empty reference)", "",
                  *mean_table(build_table(part, options), bool(options.get("transpose"))), ""]
    return lines


def render(results: RunResults, options: dict | None = None) -> str:
    """options: transpose, baseline, higher_is_better, empty_rules, uncertainty, by, figures (see
    segbench.reports.options)."""
    options = options or {}
    table = build_table(results, options)
    transpose = bool(options.get("transpose"))
    data = results.record.plan.data
    lines = [f"# segbench: {data.task} on {data.dataset}", ""]
    lines += [f"- **{label}**: {value}" for label, value in header_items(results, options.get("empty_rules"))]
    lines += ["", "## Per-image mean [95% bootstrap CI]", "", f"All evaluated images ({images_label(results)}).", "",
              *mean_table(table, transpose), ""]
    lines += [BOLD_RULE, "", "## Pooled over all pixels", "",
              *pooled_table(table, transpose), ""]
    if table.unpooled:
        lines += [unpooled_note(table), ""]
    lines += strata_section(results, options)
    if options.get("by"):
        lines += subgroup_section(results, options)
    comparison = compare(results, options.get("baseline"), options)
    if comparison is not None:
        lines += comparison_section(comparison)
    if options.get("uncertainty"):
        lines += ["## Uncertainty and calibration", "", *_text_table(UNCERTAINTY_COLUMNS, uncertainty_rows(options["uncertainty"])),
                  "", METHOD, ""]
    if options.get("upper_bound"):
        lines += ["## Scores and their threshold: an upper bound", "",
                  *_text_table(UPPER_BOUND_COLUMNS, upper_bound_rows(options["upper_bound"])), "", UPPER_BOUND_METHOD, ""]
    lines += ["## Models: the cost of each result", "", _row(list(MODEL_COLUMNS)),
              _row(["---", "---", *["---:"] * (len(MODEL_COLUMNS) - 3), "---"])]
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
