"""HTML report: one self-contained file (inline style, figures as base64 PNG), no external reference."""

from __future__ import annotations

import base64
from html import escape

from segbench.reports.comparison import PAIRED_COLUMNS, Comparison, compare, compared_metric, comparison_rows
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.reports.strata import (DETECTION_COLUMNS, DETECTION_NOTE, detection_rows, floor_note, images_label,
                                     strata, subgroups)
from segbench.reports.table import BOLD_RULE, Entry, Table, build_table, fmt, grid, unpooled_note
from segbench.reports.uncertainty import METHOD, UNCERTAINTY_COLUMNS, uncertainty_rows
from segbench.reports.upper_bound import METHOD as UPPER_BOUND_METHOD
from segbench.reports.upper_bound import UPPER_BOUND_COLUMNS, upper_bound_rows
from segbench.results import RunResults

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .3em .7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #444; }
.ci { color: #666; font-size: .85em; }
dt { font-weight: bold; float: left; clear: left; width: 11em; }
dd { margin: 0 0 .3em 12em; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption, .note { color: #444; font-size: .9em; }
"""


def _table(labels: list[str], rows: list[list[str]]) -> list[str]:
    """Cells in `rows` are HTML already; labels are text."""
    head = "".join(f"<th>{escape(label)}</th>" for label in labels)
    body = ["<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows]
    return ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"]


def _entry(entry: Entry | None) -> str:
    if entry is None:
        return "–"
    text = f"<strong>{fmt(entry.value)}</strong>" if entry.best else fmt(entry.value)
    return text if entry.ci is None else f'{text} <span class="ci">[{fmt(entry.ci[0])}, {fmt(entry.ci[1])}]</span>'


def _grid(table: Table, pooled: bool, transpose: bool) -> list[str]:
    labels, rows = grid(table, pooled, transpose)
    return _table(labels, [[escape(label), *map(_entry, entries)] for label, entries in rows])


def _text_table(labels: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    return _table(list(labels), [[escape(cell) for cell in row] for row in rows])


def _comparison(comparison: Comparison) -> list[str]:
    return [f"<h2>Paired comparison with {escape(comparison.baseline)} (per-image {escape(comparison.metric)})</h2>",
            *_text_table(PAIRED_COLUMNS, comparison_rows(comparison)),
            "<ul>", *(f"<li>{escape(sentence)}</li>" for sentence in comparison.sentences()), "</ul>",
            f'<p class="note">Test: {escape(comparison.method)}.</p>']


def _strata(results: RunResults, options: dict) -> list[str]:
    found = strata(results)
    parts = ["<h2>Images with and without foreground in the reference</h2>", f"<p>{escape(floor_note(results, found))}</p>"]
    if found.non_empty is not None:
        parts += [f"<h3>Images with foreground in the reference ({escape(images_label(found.non_empty))}): per-image "
                  "mean [95% bootstrap CI]</h3>",
                  *_grid(build_table(found.non_empty, options), False, bool(options.get("transpose")))]
    if found.has_empty:
        parts += ["<h3>Image-level detection and empty references</h3>", *_text_table(DETECTION_COLUMNS, detection_rows(found)),
                  f'<p class="note">{escape(DETECTION_NOTE)}</p>']
    return parts


def _subgroups(results: RunResults, options: dict) -> list[str]:
    column = options["by"]
    parts = [f"<h2>Results by {escape(column)}: per-image mean [95% bootstrap CI]</h2>"]
    for value, n, empty, part in subgroups(results, column):
        parts += [f"<h3>{escape(column)} = {escape(value)} ({n} images, {empty} with an empty reference)</h3>",
                  *_grid(build_table(part, options), False, bool(options.get("transpose")))]
    return parts


def render(results: RunResults, options: dict | None = None) -> str:
    """options: transpose, baseline, higher_is_better, empty_rules, uncertainty, by, figures (made here when
    absent; see segbench.reports.options)."""
    options = options or {}
    figures = options.get("figures")
    if figures is None:
        from segbench.reports.figures import make_figures

        figures = make_figures(results, compared_metric(results))[0]
    table = build_table(results, options)
    transpose = bool(options.get("transpose"))
    data = results.record.plan.data
    title = escape(f"segbench: {data.task} on {data.dataset}")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{title}</title>",
             f"<style>{STYLE}</style>", "</head>", "<body>", f"<h1>{title}</h1>", "<dl>"]
    parts += [f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>"
              for label, value in header_items(results, options.get("empty_rules"))]
    parts += ["</dl>", "<h2>Per-image mean [95% bootstrap CI]</h2>",
              f"<p>All evaluated images ({escape(images_label(results))}).</p>", *_grid(table, False, transpose),
              f'<p class="note">{escape(BOLD_RULE)}</p>',
              "<h2>Pooled over all pixels</h2>", *_grid(table, True, transpose)]
    if table.unpooled:
        parts.append(f'<p class="note">{escape(unpooled_note(table))}</p>')
    parts += _strata(results, options)
    if options.get("by"):
        parts += _subgroups(results, options)
    comparison = compare(results, options.get("baseline"), options)
    if comparison is not None:
        parts += _comparison(comparison)
    if options.get("uncertainty"):
        parts += ["<h2>Uncertainty and calibration</h2>",
                  *_text_table(UNCERTAINTY_COLUMNS, uncertainty_rows(options["uncertainty"])),
                  f'<p class="note">{escape(METHOD)}</p>']
    if options.get("upper_bound"):
        parts += ["<h2>Scores and their threshold: an upper bound</h2>",
                  *_text_table(UPPER_BOUND_COLUMNS, upper_bound_rows(options["upper_bound"])),
                  f'<p class="note">{escape(UPPER_BOUND_METHOD)}</p>']
    parts += ["<h2>Models: the cost of each result</h2>", *_table(list(MODEL_COLUMNS), [[escape(x) for x in r] for r in model_rows(results)])]
    hyperparameters = hyperparameter_items(results)
    if hyperparameters:
        parts += ["<h3>Hyperparameters</h3>", "<dl>",
                  *(f"<dt>{escape(m)}</dt><dd>{escape(text)}</dd>" for m, text in hyperparameters), "</dl>"]
    if figures:
        parts.append("<h2>Figures</h2>")
    for figure in figures:
        data = base64.b64encode(figure.image).decode("ascii")
        parts += ["<figure>", f'<img alt="{escape(figure.name)}" src="data:image/png;base64,{data}">',
                  f"<figcaption>{escape(figure.caption)}</figcaption>", "</figure>"]
    return "\n".join([*parts, "</body>", "</html>"]) + "\n"
