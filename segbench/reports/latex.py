"""LaTeX report: booktabs tables (comparison, paired test, models) and figures; `standalone` makes a document."""

from __future__ import annotations

import re

from segbench.reports.comparison import Comparison, compare, fmt_p
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.reports.table import Entry, build_table, fmt, grid, missing
from segbench.results import RunResults

_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "–": "--"}


def escape(text: object) -> str:
    """Escape LaTeX's special characters in plain text."""
    return re.sub(r"[&%$#_{}~^\\–]", lambda m: _SPECIAL[m.group()], str(text))


def num(value: float) -> str:
    """A number to 4 decimals with a real minus sign; "--" when missing."""
    return "--" if missing(value) else fmt(value).replace("-", "$-$")


def _entry(entry: Entry | None) -> str:
    if entry is None:
        return "--"
    text = rf"\textbf{{{num(entry.value)}}}" if entry.best else num(entry.value)
    return text if entry.ci is None else rf"{text} {{\scriptsize [{num(entry.ci[0])}, {num(entry.ci[1])}]}}"


def _row(cells: list[str]) -> str:
    return " & ".join(cells) + r" \\"


def _table(spec: str, body: list[str], caption: str, label: str) -> list[str]:
    return [r"\begin{table}[htbp]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
            *body, r"\bottomrule", r"\end{tabular}", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
            r"\end{table}", ""]


def _label(results: RunResults, suffix: str = "") -> str:
    return "tab:segbench-" + re.sub(r"[^A-Za-z0-9-]", "-", results.record.plan.data.task or "results") + suffix


def main_table(results: RunResults, options: dict) -> list[str]:
    table = build_table(results, options.get("higher_is_better"))
    transpose = bool(options.get("transpose"))
    labels, mean_rows = grid(table, False, transpose)
    _, pooled_rows = grid(table, True, transpose)

    def name(label: str) -> str:
        """Metric names read as words ("balanced accuracy"); model names stay as they are."""
        return escape(label.replace("_", " ") if label in table.metrics else label)

    body = [_row([labels[0], *map(name, labels[1:])]), r"\midrule"]
    body += [_row([name(label), *map(_entry, entries)]) for label, entries in mean_rows]
    body += [r"\midrule", rf"\multicolumn{{{len(labels)}}}{{l}}{{\emph{{Pooled over all pixels}}}} \\"]
    body += [_row([name(label), *map(_entry, entries)]) for label, entries in pooled_rows]
    s = dict(header_items(results))
    synthetic = " (synthetic data)" if results.record.dataset_synthetic else ""
    policy = s["Empty-mask policy"]
    caption = (
        f"Segmentation of {escape(s['Task'])} on {escape(results.record.plan.data.dataset)}{synthetic}: "
        r"per-image mean with its 95\% bootstrap CI, and below, pooled over all pixels; best value per "
        f"{'column' if transpose else 'row'} in bold. {escape(s['Evaluation images'])} test images, threshold "
        f"{escape(s['Threshold'])}, ensemble size {escape(s['Ensemble size'])}, seed {escape(s['Seed'])}, preset "
        f"{escape(s['Preset'])}. {escape(policy[:1].upper() + policy[1:])}."
    )
    return _table("l" + "r" * (len(labels) - 1), body, caption, _label(results))


def comparison_table(results: RunResults, comparison: Comparison) -> list[str]:
    body = [_row(["Model", "$n$", "Median difference", r"95\% CI", "$p$", r"$p$ (Holm)"]), r"\midrule"]
    for row in comparison.rows:
        t = row.test
        body.append(_row([escape(row.model), str(t.n), num(t.median_difference),
                          f"[{num(t.ci_low)}, {num(t.ci_high)}]", escape(fmt_p(t.p_value)), escape(fmt_p(row.p_holm))]))
    caption = f"Paired comparison with {escape(comparison.baseline)}: {escape(comparison.method)}."
    return _table("lrrrrr", body, caption, _label(results, "-paired"))


def models_table(results: RunResults) -> list[str]:
    body = [_row([escape(c) for c in MODEL_COLUMNS[:-1]]), r"\midrule"]
    body += [_row([escape(x) for x in row[:-1]]) for row in model_rows(results)]
    failed = [row[0] for row in model_rows(results) if row[-1] != "done"]
    note = f" Failed (no results): {escape(', '.join(failed))}." if failed else ""
    s = dict(header_items(results))
    caption = (f"Models: preset, training settings, parameter count, training time and masks per second on "
               f"{escape(s['Device'])}.{note}")
    return _table("ll" + "r" * (len(MODEL_COLUMNS) - 3), body, caption, _label(results, "-models"))


def figure_blocks(results: RunResults, options: dict) -> list[str]:
    lines = []
    for figure in [f for f in options.get("figures") or [] if f.path]:
        lines += [r"\begin{figure}[htbp]", r"\centering", rf"\includegraphics[width=\linewidth]{{{figure.path}}}",
                  rf"\caption{{{escape(figure.caption)}}}",
                  rf"\label{{{_label(results, '-' + figure.name).replace('tab:', 'fig:')}}}", r"\end{figure}", ""]
    return lines


def render(results: RunResults, options: dict | None = None) -> str:
    """options: standalone, transpose, baseline, higher_is_better, figures (see segbench.reports.options)."""
    options = options or {}
    # The full settings as comments: a reader of the .tex sees them, the typeset page does not.
    figures = figure_blocks(results, options)
    packages = r"\usepackage{booktabs}" + (r" and \usepackage{graphicx}" if figures else "")
    lines = [f"% segbench report; needs {packages}."]
    lines += [f"% {label}: {value}".replace("\n", " ") for label, value in header_items(results)]
    lines += [f"% Hyperparameters of {model}: {text}" for model, text in hyperparameter_items(results)]
    lines += ["", *main_table(results, options)]
    comparison = compare(results, options.get("baseline"))
    if comparison is not None:
        lines += comparison_table(results, comparison)
    lines += models_table(results)
    body = "\n".join(lines + figures)
    if not options.get("standalone"):
        return body
    preamble = [r"\documentclass{article}", r"\usepackage{booktabs}"]
    if figures:
        preamble.append(r"\usepackage{graphicx}")
    return "\n".join([*preamble, r"\begin{document}", "", body, r"\end{document}"]) + "\n"
