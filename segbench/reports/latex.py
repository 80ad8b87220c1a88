"""LaTeX report: booktabs tables (comparison, paired test, models) and figures; `standalone` makes a document."""

from __future__ import annotations

import re

from segbench.reports.comparison import PAIRED_COLUMNS, Comparison, compare, comparison_rows
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.reports.strata import (DETECTION_COLUMNS, DETECTION_NOTE, detection_rows, floor_note, images_label,
                                     strata, subgroups)
from segbench.reports.table import BOLD_RULE, Entry, Table, build_table, fmt, grid, missing, unpooled_note
from segbench.reports.uncertainty import METHOD, UNCERTAINTY_COLUMNS, uncertainty_rows
from segbench.reports.upper_bound import METHOD as UPPER_BOUND_METHOD
from segbench.reports.upper_bound import UPPER_BOUND_COLUMNS, upper_bound_rows
from segbench.results import RunResults

_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}", "–": "--",
            "<": r"\textless{}", ">": r"\textgreater{}"}  # bare < and > print as ¡ and ¿ in LaTeX's default font


def escape(text: object) -> str:
    """Escape LaTeX's special characters in plain text."""
    return re.sub(r"[&%$#_{}~^\\–<>]", lambda m: _SPECIAL[m.group()], str(text))


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


# A table wider than the text is scaled down to \linewidth (graphicx's \resizebox, whose \width is the
# table's natural width); a narrower one keeps its size.
FIT_OPEN = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"


def _table(spec: str, body: list[str], caption: str, label: str, size: str = "small") -> list[str]:
    """A booktabs table; `size` is the font size command (and any setting after it), without the backslash."""
    return [r"\begin{table}[htbp]", r"\centering", f"\\{size}", FIT_OPEN, rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule", *body, r"\bottomrule", r"\end{tabular}}", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
            r"\end{table}", ""]


def _label(results: RunResults, suffix: str = "") -> str:
    return "tab:segbench-" + re.sub(r"[^A-Za-z0-9-]", "-", results.record.plan.data.task or "results") + suffix


def _name(table: Table, label: str) -> str:
    """A metric without a label reads as words ("my metric"); model names stay as they are."""
    return escape(label.replace("_", " ") if label in table.metrics else label)


def main_table(results: RunResults, options: dict) -> list[str]:
    table = build_table(results, options)
    transpose = bool(options.get("transpose"))
    labels, mean_rows = grid(table, False, transpose)
    pooled_labels, pooled_rows = grid(table, True, transpose)
    body = [_row([labels[0], *(_name(table, label) for label in labels[1:])]), r"\midrule"]
    body += [_row([_name(table, label), *map(_entry, entries)]) for label, entries in mean_rows]
    body += [r"\midrule", rf"\multicolumn{{{len(labels)}}}{{l}}{{\emph{{Pooled over all pixels}}}} \\"]
    if transpose:  # metrics are the columns: one without a pooled value gets "--"
        column = {metric: i for i, metric in enumerate(pooled_labels[1:])}
        body += [_row([_name(table, label), *(_entry(entries[column[m]] if m in column else None) for m in labels[1:])])
                 for label, entries in pooled_rows]
    else:
        body += [_row([_name(table, label), *map(_entry, entries)]) for label, entries in pooled_rows]
    s = dict(header_items(results, options.get("empty_rules")))
    synthetic = " (synthetic data)" if results.record.dataset_synthetic else ""
    policy = s["Empty-mask policy"]
    rules = s.get("Empty masks, metrics with their own rule")
    caption = (
        f"Segmentation of {escape(s['Task'])} on {escape(results.record.plan.data.dataset)}{synthetic}: "
        r"per-image mean with its 95\% bootstrap CI, and below, pooled over all pixels. "
        f"{escape(BOLD_RULE)} {escape(s['Evaluation images'])} test images, threshold "
        f"{escape(s['Threshold'])}, ensemble size {escape(s['Ensemble size'])}, seed {escape(s['Seed'])}, "
        f"label budget {escape(s['Label budget'])}, preset {escape(s['Preset'])}. "
        f"{escape(policy[:1].upper() + policy[1:])}."
        + (f" Empty masks, {escape(rules)}." if rules else "") + (f" {escape(unpooled_note(table))}" if table.unpooled else "")
    )
    return _table("l" + "r" * (len(labels) - 1), body, caption, _label(results))


def mean_only_table(results: RunResults, part: RunResults, options: dict, caption: str, suffix: str) -> list[str]:
    """Per-image mean [CI] of `part` (a stratum or subgroup of `results`), metrics as rows."""
    table = build_table(part, options)
    labels, rows = grid(table, False, bool(options.get("transpose")))
    body = [_row([labels[0], *(_name(table, label) for label in labels[1:])]), r"\midrule"]
    body += [_row([_name(table, label), *map(_entry, entries)]) for label, entries in rows]
    return _table("l" + "r" * (len(labels) - 1), body, caption, _label(results, suffix))


def text_table(results: RunResults, labels: tuple[str, ...], rows: list[list[str]], caption: str,
               suffix: str, groups: list[str] | None = None) -> list[str]:
    """A table of text cells (escaped, real minus signs, intervals small under their value), headers on two
    lines; with `groups` (one label per row), rows come under a heading row per group instead of a column."""
    body = [_row([_header(c) for c in labels]), r"\midrule"]
    for i, row in enumerate(rows):
        if groups is not None and (i == 0 or groups[i] != groups[i - 1]):
            body += ([r"\midrule"] if i else []) + [rf"\multicolumn{{{len(labels)}}}{{l}}{{\emph{{{escape(groups[i])}}}}} \\"]
        body.append(_row([_cell(c) for c in row]))
    return _table("l" + "r" * (len(labels) - 1), body, _minus(caption), _label(results, suffix),
                  r"footnotesize\setlength{\tabcolsep}{4pt}")


def _minus(text: str) -> str:
    return re.sub(r"(?<![\w.])-(?=\d)", "$-$", text)


def _cell(text: str) -> str:
    """"0.1243 [0.0075, 0.2517]" with the interval in small print below the value (a nested tabular, top
    aligned with the row)."""
    value, bracket, interval = escape(text).partition(" [")
    return _minus(rf"\begin{{tabular}}[t]{{@{{}}r@{{}}}}{value}\\{{}}\scriptsize [{interval}\end{{tabular}}"
                  if bracket else value)


def _header(text: str) -> str:
    """A long header broken at the space nearest its middle."""
    spaces = [i for i, c in enumerate(text) if c == " "]
    if len(text) <= 8 or not spaces:
        return escape(text)
    cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return rf"\shortstack{{{escape(text[:cut])}\\{{}}{escape(text[cut + 1:])}}}"  # "{}": a "[" may follow


def strata_tables(results: RunResults, options: dict) -> list[str]:
    found = strata(results)
    lines = []
    if found.non_empty is not None:
        lines += mean_only_table(results, found.non_empty, options, escape(
            f"Images with foreground in the reference ({images_label(found.non_empty)}): per-image mean with its "
            f"95% bootstrap CI. {floor_note(results, found)}"), "-non-empty")
    if found.has_empty:
        lines += text_table(results, DETECTION_COLUMNS, detection_rows(found),
                            escape(f"Image-level detection and empty references. {DETECTION_NOTE}"), "-detection")
    return lines


def subgroup_tables(results: RunResults, options: dict) -> list[str]:
    column, lines = options["by"], []
    for i, (value, n, empty, part) in enumerate(subgroups(results, column)):
        lines += mean_only_table(results, part, options, escape(
            f"{column} = {value} ({n} images, {empty} with an empty reference): per-image mean with its 95% "
            "bootstrap CI."), f"-by-{i}")
    return lines


def comparison_table(results: RunResults, comparison: Comparison) -> list[str]:
    caption = escape(f"Paired comparison with {comparison.baseline} (per-image {comparison.metric}). "
                     f"{' '.join(comparison.sentences())} Test: {comparison.method}.")
    rows = comparison_rows(comparison)
    groups = [{"all": "All images", "with foreground": "Images with foreground in the reference"}[r[1]] for r in rows]
    return text_table(results, PAIRED_COLUMNS[:1] + PAIRED_COLUMNS[2:], [r[:1] + r[2:] for r in rows], caption,
                      "-paired", groups)


def models_table(results: RunResults) -> list[str]:
    body = [_row([escape(c) for c in MODEL_COLUMNS[:-1]]), r"\midrule"]
    body += [_row([escape(x) for x in row[:-1]]) for row in model_rows(results)]
    failed = [row[0] for row in model_rows(results) if row[-1] != "done"]
    note = f" Failed (no results): {escape(', '.join(failed))}." if failed else ""
    s = dict(header_items(results, {}))
    caption = escape("The cost of each result: parameters trained and frozen, labelled training images and "
                     "validation masks read, images used without masks, per training stage optimiser steps x batch "
                     "and seconds, training TFLOP (steps x the forward and backward of one batch), network "
                     "evaluations per mask x ensemble, FLOPs per mask (FLOPs as torch.utils.flop_counter counts "
                     f"them) and masks per second on {s['Device']}.") + note
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
    lines = [r"% segbench report; needs \usepackage{booktabs} and \usepackage{graphicx}."]
    lines += [f"% {label}: {value}".replace("\n", " ") for label, value in header_items(results, options.get("empty_rules"))]
    lines += [f"% Hyperparameters of {model}: {text}" for model, text in hyperparameter_items(results)]
    lines += ["", *main_table(results, options), *strata_tables(results, options)]
    if options.get("by"):
        lines += subgroup_tables(results, options)
    comparison = compare(results, options.get("baseline"), options)
    if comparison is not None:
        lines += comparison_table(results, comparison)
    if options.get("uncertainty"):
        lines += text_table(results, UNCERTAINTY_COLUMNS, uncertainty_rows(options["uncertainty"]),
                            escape(f"Uncertainty and calibration. {METHOD}"), "-uncertainty")
    if options.get("upper_bound"):
        lines += text_table(results, UPPER_BOUND_COLUMNS, upper_bound_rows(options["upper_bound"]),
                            escape(f"Scores and their threshold: an upper bound. {UPPER_BOUND_METHOD}"), "-upper-bound")
    lines += models_table(results)
    body = "\n".join(lines + figures)
    if not options.get("standalone"):
        return body
    preamble = [r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{graphicx}"]
    return "\n".join([*preamble, r"\begin{document}", "", body, r"\end{document}"]) + "\n"
