"""The study report: per dataset, each model's metric over seeds (mean, SD, every seed, a CI from seeds
and images, and labelled subsets where the study varies them), the paired comparison with the baseline
(under the same augmentation policy where the study varies it), both again over the images with foreground
where some references are empty, what diffusion adds (each diffusion model against its direct control) and
what augmentation adds (each model against itself trained without), a calibrated score's image-level AUROC
per seed, all metrics, and a figure of the per-seed values.

The content is built once as plain-text sections (`study_sections`); each built-in format lays them out
(`render_md`, `render_latex`, `render_html`, `render_csv`, registered as their FormatSpec's render_study).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Collection
from dataclasses import dataclass
from html import escape as html_escape

import numpy as np
import pandas as pd

from segbench.controls import DIRECT
from segbench.reports import latex, markdown
from segbench.reports.comparison import PREFERRED_METRIC, fmt_p
from segbench.reports.settings import MODEL_COLUMNS, model_rows
from segbench.reports.table import fmt
from segbench.reports.upper_bound import IMAGE_SCORE_QUANTILE, upper_bounds
from segbench.study.results import StudyResults
from segbench.study.statistics import METHOD, SUBSETS_METHOD, OverSeeds, PairedOverSeeds


@dataclass(frozen=True)
class Section:
    """A titled table of text cells, with a note under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def compared_metric(results: StudyResults) -> str:
    return PREFERRED_METRIC if PREFERRED_METRIC in results.metrics else results.metrics[0]


def _ci(low: float, high: float) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def header_items(results: StudyResults) -> list[tuple[str, str]]:
    cells = sum(len(seeds) for seeds in results.frames.values())
    items = [("Study", results.name), ("Datasets", ", ".join(f"{d} ({t})" for d, t in results.datasets.items())),
             ("Models", ", ".join(results.entries)), ("Baseline", _baseline(results)),
             ("Label budgets", _budgets(results)), ("Runs with results", str(cells)),
             ("Method", METHOD + (SUBSETS_METHOD if results.labels_seeds else ""))]
    if results.policies:
        items.insert(4, ("Augmentation policies", f"{', '.join(results.policies)}: every model trained under each, "
                                                  "compared with the baseline trained under the same policy"))
    if results.missing:
        items.append(("Not finished (left out)", ", ".join(results.missing)))
    return items


def _baseline(results: StudyResults) -> str:
    """The baseline as a header names it: under the same policy where the study has an augment axis."""
    return results.baseline + (" (same augmentation policy)" if results.policies else "")


def _budgets(results: StudyResults) -> str:
    """The study's label budgets (per dataset where "all" differs), and the labels seed(s) that chose them."""
    per_dataset = {d: ", ".join(budget_label(results, d, b) for b in results.ordered_budgets) for d in results.datasets}
    budgets = (next(iter(per_dataset.values())) if len(set(per_dataset.values())) == 1
               else "; ".join(f"{d}: {text}" for d, text in per_dataset.items()))
    if results.labels_seeds:
        return budgets + f"; labelled subsets from labels seeds {', '.join(map(str, results.labels_seeds))}"
    seeds = sorted({run.record.plan.data.labels_seed for (_, _, labels), (_, run) in results.first_runs.items()
                    if labels is not None})
    return budgets + (f"; labels seed {', '.join(map(str, seeds))}" if seeds else "")


def budget_label(results: StudyResults, dataset: str, labels: int | None) -> str:
    """A label budget as a reader sees it: "16", or "all (480)"."""
    if labels is not None:
        return str(labels)
    total = results.training_images.get(dataset)
    return f"all ({total})" if total else "all"


def rests_on(summary: OverSeeds) -> str:
    """How many runs a number rests on: "3 seeds", or "3 labelled subsets x 3 seeds"."""
    seeds = f"{len(summary.seeds)} seed" + ("s" if len(summary.seeds) != 1 else "")
    subsets = len(summary.subsets)
    return f"{subsets} labelled subset{'s' if subsets != 1 else ''} x {seeds}" if summary.subsets != (None,) else seeds


def _mean_ci(summary: OverSeeds) -> str:
    return f"{fmt(summary.mean)} {_ci(summary.ci_low, summary.ci_high)}"


def learning_curve_sections(results: StudyResults, metric: str, higher: bool) -> list[Section]:
    """With a labels axis, per dataset: each model at each label budget, over seeds (and labelled subsets), and
    its paired difference to the baseline at the same budget; where some references are empty, the same again
    over the images whose reference has foreground (a model that predicts nothing scores well on the others)."""
    subsets = bool(results.labels_seeds)
    sections = []
    for dataset in results.datasets:
        for foreground_only in (False, True) if results.has_empty_references(dataset) else (False,):
            rows = []
            for entry in results.entries:
                for labels in results.ordered_budgets:
                    summary = results.summary(dataset, entry, metric, labels, foreground_only)
                    if summary is None:
                        continue
                    paired = results.paired(dataset, entry, metric, higher, labels, foreground_only)
                    difference = _mean_ci(paired.difference) if paired is not None else "–"
                    counts = ([str(len(summary.subsets)), str(len(summary.seeds))] if subsets
                              else [str(len(summary.seeds))])
                    rows.append([entry, budget_label(results, dataset, labels), _mean_ci(summary), *counts,
                                 difference,
                                 verdict(entry, results.baseline_of(entry), paired) if paired is not None else "–"])
            if rows:
                images = ", images whose reference has foreground" if foreground_only else ""
                mean = "Mean over subsets and seeds [95% CI]" if subsets else "Mean over seeds [95% CI]"
                sections.append(Section(
                    f"{dataset}: learning curve, per-image {metric} by labelled training images{images}",
                    ["Model", "Labelled images", mean, *(["Labelled subsets", "Run seeds"] if subsets else ["Seeds"]),
                     f"Difference to {_baseline(results)} [95% CI]", "Verdict"], rows,
                    (SUBSETS_NOTE if subsets else LABELS_NOTE) + (FOREGROUND_NOTE if foreground_only else "")))
    return sections


LABELS_NOTE = ("Each budget's labelled images are the same for every model and seed (nested: the smaller budgets' "
               "images are among the larger ones'); differences are paired by seed and image at the same budget.")
SUBSETS_NOTE = ("At each budget but all, every labels seed draws its own labelled subset, the same for every model "
                "and run seed (nested across budgets); a number is the mean over the subsets of each one's mean over "
                "seeds, its CI a three-level bootstrap (subsets, then seeds, then images), so it covers which images "
                "were labelled as well as training and the test set; at all labels there is one subset and the CI "
                "is two-level. Differences are paired by subset, seed and image at the same budget.")


def diffusion_sections(results: StudyResults, metric: str, higher: bool) -> list[Section]:
    """What diffusion adds: each model M whose direct control M:direct the study also has (under the same
    augmentation policy), paired with it (see `control_sections`)."""
    by_model = {(results.model(e), results.policy(e)): e for e in results.entries}
    pairs = [(e, by_model[control]) for e in results.entries
             if (control := (f"{results.model(e)}:{DIRECT}", results.policy(e))) in by_model]
    return control_sections(
        results, metric, higher, pairs, "diffusion", "each diffusion model against its direct control",
        "Direct control", "The direct control is the diffusion model's own network, conditioning and parameters, "
        "trained to give the mask in one pass (Öttl et al. 2024)")


def augmentation_sections(results: StudyResults, metric: str, higher: bool) -> list[Section]:
    """What augmentation adds: each model (and variant) under each policy of an augment axis but none, paired
    with itself trained under none (see `control_sections`)."""
    pairs = [(e, results.under(e, "none")) for e in results.entries
             if results.policy(e) not in (None, "none") and results.under(e, "none") in results.entries]
    return control_sections(
        results, metric, higher, pairs, "augmentation", "each model against itself trained without augmentation",
        "Without augmentation", "The control is the same model, settings and seeds trained with no augmentation "
        "(augment none)")


def control_sections(results: StudyResults, metric: str, higher: bool, pairs: list[tuple[str, str]], adds: str,
                     which: str, control: str, note: str) -> list[Section]:
    """What `adds` adds: per dataset, each (entry, control) of `pairs` paired at each label budget both have
    (entry - control, image by image on the same seeds and subsets); where some references are empty, the same
    again over the images whose reference has foreground. `which` says the pairs in the title, `control` heads
    the control's column, `note` says what the control is."""
    sections = []
    for dataset in results.datasets if pairs else ():
        for foreground_only in (False, True) if results.has_empty_references(dataset) else (False,):
            rows = []
            for entry, against in pairs:
                for budget in results.ordered_budgets:
                    paired = results.paired(dataset, entry, metric, higher, budget, foreground_only, against=against)
                    if paired is None:
                        continue
                    means = [results.summary(dataset, e, metric, budget, foreground_only) for e in (entry, against)]
                    rows.append([entry, against, budget_label(results, dataset, budget),
                                 *(fmt(m.mean) for m in means), _mean_ci(paired.difference),
                                 rests_on(paired.difference), verdict(entry, against, paired)])
            if rows:
                images = ", images whose reference has foreground" if foreground_only else ""
                sections.append(Section(
                    f"{dataset}: what {adds} adds, per-image {metric}, {which}{images}",
                    ["Model", control, "Labelled images", "Model mean", "Control mean", "Model - control [95% CI]",
                     "Runs", "Verdict"], rows,
                    f"{note}; the difference is paired by seed and image (and labelled subset) and bootstrapped as "
                    "the differences to the baseline are." + (FOREGROUND_NOTE if foreground_only else "")))
    return sections


FOREGROUND_NOTE = (" Only the images whose reference has foreground: on an image with an empty reference the "
                   "empty-mask policy gives Dice 1 to a model that predicts nothing and 0 to one that predicts a "
                   "single pixel, so the table above mixes how well a model segments with how rarely it predicts "
                   "anything.")


def study_sections(results: StudyResults, options: dict) -> list[Section]:
    """Every section of the study report; `options`: the metrics' higher_is_better, and under `upper_bound`
    the entries whose probability is a calibrated score (their AUROC section)."""
    metric = compared_metric(results)
    higher = options.get("higher_is_better", {}).get(metric, True)
    sections = learning_curve_sections(results, metric, higher) if results.has_labels_axis else []
    sections += diffusion_sections(results, metric, higher) + augmentation_sections(results, metric, higher)
    at = f" at {results.ordered_budgets[-1] or 'all'} labels" if results.has_labels_axis else ""
    for dataset in results.datasets:
        entries = [e for e in results.entries if results.seeds(dataset, e)]
        seeds = sorted({s for e in entries for s in results.seeds(dataset, e)})
        # the learning curve has its own table over the images with foreground
        for foreground_only in ((False, True) if results.has_empty_references(dataset) and not results.has_labels_axis
                                else (False,)):
            images = ", images whose reference has foreground" if foreground_only else ""
            rows = []
            subsets = False
            for entry in entries:
                summary = results.summary(dataset, entry, metric, foreground_only=foreground_only)
                by_seed = dict(zip(summary.seeds, summary.seed_means))
                rows.append([entry, _mean_ci(summary), fmt(summary.sd),
                             *(fmt(by_seed.get(s, math.nan)) for s in seeds)])
                subsets = subsets or summary.subsets != (None,)
            sections.append(Section(
                f"{dataset}: per-image {metric}{at}, over seeds{images}",
                ["Model", "Mean over seeds [95% CI]", "SD across seeds", *(f"seed {s}" for s in seeds)], rows,
                ("Each seed's value is its runs' per-image mean, averaged over the labelled subsets; the CI resamples "
                 "subsets, then seeds, then images (three-level bootstrap)." if subsets else
                 "Each seed's value is that run's per-image mean; the CI resamples seeds, then images (two-level "
                 "bootstrap).") + (FOREGROUND_NOTE if foreground_only else "")))
            comparisons = [(e, results.paired(dataset, e, metric, higher, foreground_only=foreground_only))
                           for e in entries if e != results.baseline_of(e)]
            rows = [[entry, _mean_ci(p.difference), f"{p.wins} of {len(p.difference.seeds)}", fmt_p(p.p_value),
                     verdict(entry, results.baseline_of(entry), p)]
                    for entry, p in comparisons if p is not None]
            if rows:
                sections.append(Section(
                    f"{dataset}: against {_baseline(results)}{at} (per-image {metric}, paired by seed and image{images})",
                    ["Model", f"Difference to {_baseline(results)} [95% CI]", "Seeds it beats the baseline",
                     "p (paired t-test over seeds)", "Verdict"], rows))
        sections += upper_bound_sections(results, dataset, options.get("upper_bound", ()))
        all_rows = []
        for name in results.metrics:
            cells = []
            for entry in entries:
                s = results.summary(dataset, entry, name)
                cells.append(f"{fmt(s.mean)} {_ci(s.ci_low, s.ci_high)}")
            all_rows.append([name, *cells])
        sections.append(Section(f"{dataset}: every metric{at}, mean over seeds [95% CI]", ["Metric", *entries],
                                all_rows))
        sections += cost_sections(results, dataset)
    return sections


def upper_bound_sections(results: StudyResults, dataset: str, scored: Collection[str]) -> list[Section]:
    """For the entries in `scored` (a calibrated score's models), per label budget: each seed's image-level AUROC
    and Dice over the images with foreground, as each run's report computes them, and their mean over seeds."""
    found = {}  # (entry, budget) -> {seed: (AUROC, Dice at its threshold, best-threshold Dice), folds averaged}
    for (data, entry, labels, labels_seed), by_seed in results.runs.items():
        if data == dataset and entry in scored:
            budget = budget_label(results, dataset, labels) + (f" (subset {labels_seed})" if labels_seed is not None else "")
            found[entry, budget] = {
                seed: np.mean([(b.image_auroc, b.foreground_dice, b.foreground_best_dice)
                               for run in runs for b in upper_bounds(run, run.scored_models)], axis=0)
                for seed, runs in by_seed.items()}
    seeds = sorted({seed for by_seed in found.values() for seed in by_seed})
    rows = []
    for (entry, budget), by_seed in found.items():
        values = np.array(list(by_seed.values()))
        rows.append([entry, *([budget] if results.has_labels_axis else []), fmt(float(values[:, 0].mean())),
                     fmt(float(values[:, 0].std(ddof=1))) if len(values) > 1 else "–",
                     *(fmt(float(by_seed[s][0])) if s in by_seed else "–" for s in seeds),
                     fmt(float(values[:, 1].mean())), fmt(float(values[:, 2].mean()))])
    if not rows:
        return []
    return [Section(f"{dataset}: calibrated scores, image-level AUROC and Dice over the images with foreground",
                    ["Model", *(["Labelled images"] if results.has_labels_axis else []), "AUROC, mean over seeds",
                     "SD across seeds", *(f"seed {s}" for s in seeds), "With foreground: Dice at its threshold",
                     "With foreground: Dice at the best threshold (upper bound)"], rows,
                    "For models whose probability is a calibrated score: each run's image-level AUROC (an image's "
                    f"{IMAGE_SCORE_QUANTILE:.0%} quantile of pixel probabilities, images whose reference has "
                    "foreground against those without; 0.5: chance), averaged over the run seeds (and over folds "
                    "within a seed), with no CI (an AUROC is not a per-image mean); the per-image mean Dice over "
                    "the images with foreground at the run's threshold and at the threshold that maximises it on "
                    "the test images themselves, an upper bound no deployable model has, averaged likewise (the "
                    "former's CI is in the table over the images with foreground).")]


def cost_sections(results: StudyResults, dataset: str) -> list[Section]:
    """What each model's result cost (the run report's cost table), from its cell with the lowest seed, per
    label budget."""
    rows = []
    for entry in results.entries:
        for labels in results.ordered_budgets:
            if (dataset, entry, labels) in results.first_runs:
                seed, run = results.first_runs[(dataset, entry, labels)]
                row = next(r for r in model_rows(run) if r[0] == results.model(entry))
                rows.append([entry, str(seed), *row[1:]])
    if not rows:
        return []
    return [Section(f"{dataset}: what each result cost", [MODEL_COLUMNS[0], "Run seed", *MODEL_COLUMNS[1:]], rows,
                    "One row per model and label budget, from its cell with the lowest run seed (the other seeds "
                    "train the same steps; seconds and masks/s vary with the machine's load).")]


def verdict(entry: str, baseline: str, paired: PairedOverSeeds) -> str:
    runs = rests_on(paired.difference)
    if not paired.separated:
        return f"not separated at {runs}"
    better = paired.difference.mean > 0
    return f"{'above' if better else 'below'} {baseline} at {runs} (CI excludes 0)"


def seed_figure(results: StudyResults, suffix: str = "png"):
    """The per-seed figure as a ReportFigure of `suffix` images (None without results)."""
    from segbench.reports.figures import ReportFigure

    made = _seed_plot(results, suffix)
    return None if made is None else ReportFigure("seeds", made[1], made[0], suffix)


def _seed_plot(results: StudyResults, suffix: str) -> tuple[bytes, str] | None:
    """One panel per dataset: every seed's value per model (dots) and their mean (bar)."""
    from matplotlib.figure import Figure

    from segbench.reports.figures import to_image

    metric = compared_metric(results)
    datasets = [d for d in results.datasets if any(results.seeds(d, e) for e in results.entries)]
    if not datasets:
        return None
    figure = Figure(figsize=(0.8 + 1.2 * max(len(results.entries), 2) * len(datasets), 3.2))
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        entries = [e for e in results.entries if results.seeds(dataset, e)]
        for x, entry in enumerate(entries):
            summary = results.summary(dataset, entry, metric)
            ax.hlines(summary.mean, x - 0.3, x + 0.3, color="black", linewidth=1.5)
            ax.scatter([x] * len(summary.seed_means), summary.seed_means, s=18, zorder=3)
        ax.set_xticks(range(len(entries)), entries, rotation=20 if len(entries) > 3 else 0, fontsize=8)
        ax.set_title(dataset, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"per-image {metric} (one dot per seed)")
    figure.tight_layout()
    caption = (f"Per-image mean {metric} of every seed (dots) and their mean over seeds (line), per model "
               "and dataset.")
    return to_image(figure, suffix), caption


def learning_curve_figure(results: StudyResults, suffix: str = "png"):
    """With a labels axis, the learning curve as a ReportFigure: per dataset, the metric against labelled
    images (log axis), one line per model with its 95% CI band; None without one."""
    from matplotlib.figure import Figure

    from segbench.reports.figures import ReportFigure, to_image

    if not results.has_labels_axis:
        return None
    metric = compared_metric(results)
    datasets = [d for d in results.datasets if any(results.seeds(d, e, b) for e in results.entries
                                                   for b in results.budgets)]
    if not datasets:
        return None
    figure = Figure(figsize=(0.5 + 4.2 * len(datasets), 3.4))
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets):
        for entry in results.entries:
            points = [(b or results.training_images.get(dataset), results.summary(dataset, entry, metric, b))
                      for b in results.ordered_budgets]
            points = [(x, summary) for x, summary in points if x and summary is not None]
            if not points:
                continue
            xs = [x for x, _ in points]
            line, = ax.plot(xs, [p.mean for _, p in points], marker="o", label=entry)
            ax.fill_between(xs, [p.ci_low for _, p in points], [p.ci_high for _, p in points], color=line.get_color(),
                            alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        ticks = {b or results.training_images.get(dataset): budget_label(results, dataset, b)
                 for b in results.ordered_budgets if b or results.training_images.get(dataset)}
        ax.set_xticks(list(ticks), list(ticks.values()), fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("labelled training images (log axis)")
        ax.set_title(dataset, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"per-image {metric}, mean over seeds")
    axes[-1].legend(fontsize=7)
    figure.tight_layout()
    caption = (f"Learning curve: per-image {metric} (mean over seeds, band: 95% CI from seeds and images) against "
               "labelled training images, log axis; all labels at the training split's size.")
    return ReportFigure("learning-curve", caption, to_image(figure, suffix), suffix)


# ---- formats ----

def render_md(results: StudyResults, options: dict) -> str:
    lines = [f"# segbench study: {results.name}", ""]
    lines += [f"- **{label}**: {value}" for label, value in header_items(results)]
    for section in study_sections(results, options):
        lines += ["", f"## {section.title}", "", markdown._row(section.header),
                  markdown._row(["---", *["---:"] * (len(section.header) - 1)]),
                  *(markdown._row(row) for row in section.rows)]
        if section.note:
            lines += ["", section.note]
    for figure in [f for f in options.get("figures") or [] if f.path]:
        lines += ["", "## Figure", "", f"![{figure.name}]({figure.path})", "", figure.caption]
    return "\n".join(lines) + "\n"


def render_latex(results: StudyResults, options: dict) -> str:
    lines = [f"% segbench study report: {results.name}; needs \\usepackage{{booktabs}}."]
    lines += [f"% {label}: {value}" for label, value in header_items(results)]
    for i, section in enumerate(study_sections(results, options)):
        body = [latex._row([latex.escape(h) for h in section.header]), r"\midrule",
                *(latex._row([latex.escape(c).replace("-", "$-$") if c[:1] in "-0123456789[" else latex.escape(c)
                              for c in row]) for row in section.rows)]
        caption = latex.escape(section.title + (". " + section.note if section.note else ""))
        lines += ["", *latex._table("l" + "r" * (len(section.header) - 1), body, caption, f"tab:study-{i}")]
    figures = [f for f in options.get("figures") or [] if f.path]
    for figure in figures:
        lines += [r"\begin{figure}[htbp]", r"\centering", rf"\includegraphics[width=\linewidth]{{{figure.path}}}",
                  rf"\caption{{{latex.escape(figure.caption)}}}", r"\end{figure}"]
    body = "\n".join(lines) + "\n"
    if not options.get("standalone"):
        return body
    packages = [r"\usepackage{booktabs}", *([r"\usepackage{graphicx}"] if figures else [])]
    return "\n".join([r"\documentclass{article}", *packages, r"\begin{document}", body, r"\end{document}"]) + "\n"


def render_html(results: StudyResults, options: dict) -> str:
    from segbench.reports.html import STYLE, _table

    title = html_escape(f"segbench study: {results.name}")
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{title}</title>",
             f"<style>{STYLE}</style>", "</head>", "<body>", f"<h1>{title}</h1>", "<dl>"]
    parts += [f"<dt>{html_escape(label)}</dt><dd>{html_escape(value)}</dd>" for label, value in header_items(results)]
    parts.append("</dl>")
    for section in study_sections(results, options):
        parts += [f"<h2>{html_escape(section.title)}</h2>",
                  *_table(section.header, [[html_escape(c) for c in row] for row in section.rows])]
        if section.note:
            parts.append(f'<p class="note">{html_escape(section.note)}</p>')
    for figure in options.get("figures") or []:
        data = base64.b64encode(figure.image).decode("ascii")
        parts += ["<figure>", f'<img alt="{html_escape(figure.name)}" src="data:image/png;base64,{data}">',
                  f"<figcaption>{html_escape(figure.caption)}</figcaption>", "</figure>"]
    return "\n".join([*parts, "</body>", "</html>"]) + "\n"


def render_csv(results: StudyResults, options: dict) -> str:
    """One row per dataset, model (label budget, with a labels axis) and metric: mean over seeds, CI, SD,
    seeds, and each seed's value."""
    rows = []
    for dataset in results.datasets:
        for entry in results.entries:
            for labels in results.ordered_budgets:
                for metric in results.metrics:
                    s = results.summary(dataset, entry, metric, labels)
                    if s is None:
                        continue
                    budget = {"labels": labels or "all"} if results.has_labels_axis else {}
                    if results.labels_seeds:
                        budget["labels_seeds"] = " ".join(str(l) for l in s.subsets if l is not None)
                    rows.append({"dataset": dataset, "model": entry, **budget, "metric": metric, "mean": s.mean,
                                 "ci_low": s.ci_low, "ci_high": s.ci_high, "sd": s.sd, "seeds": " ".join(map(str, s.seeds)),
                                 "seed_means": " ".join(f"{v:.10g}" for v in s.seed_means)})
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False, float_format="%.10g", lineterminator="\n")
    return buffer.getvalue()
