"""Paired comparison of every model with a baseline on the images both were evaluated on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from segbench.errors import unknown
from segbench.metrics.paired import CORRECTION, PAIRED_TEST, PairedTest, holm, paired_test
from segbench.metrics.statistics import BOOTSTRAP_RESAMPLES
from segbench.protocol import bootstrap_seed
from segbench.reports.table import fmt
from segbench.results import RunResults
from segbench.results.store import empty_references

PREFERRED_METRIC = "dice"


@dataclass(frozen=True)
class ComparisonRow:
    model: str
    test: PairedTest
    p_holm: float


@dataclass(frozen=True)
class Comparison:
    """Each model against `baseline` on per-image `metric`: over all images (`rows`) and over the images
    whose reference has foreground (`non_empty`; empty when every reference has some, as the rows then are
    the same); `method` says which test and correction, in words."""

    metric: str
    baseline: str
    rows: list[ComparisonRow]
    non_empty: list[ComparisonRow]
    method: str

    def sentences(self) -> list[str]:
        """One plain sentence per compared model: the effect over all images, and over the non-empty ones."""
        non_empty = {row.model: row for row in self.non_empty}
        out = []
        for row in self.rows:
            text = f"{row.model} against {self.baseline}: over all {row.test.n} images, per-image {self.metric} is {_effect(row)}"
            if row.model in non_empty:
                other = non_empty[row.model]
                text += f"; over the {other.test.n} with foreground in the reference, it is {_effect(other)}"
            out.append(text + ".")
        return out


def _effect(row: ComparisonRow) -> str:
    """E.g. "higher by 0.0781 on average [95% CI 0.0450, 0.1130]: unet better on 38, equal on 49, worse on 9
    (Wilcoxon on the 47 unequal pairs: p < 0.0001, Holm < 0.0001)"."""
    t = row.test
    if t.n == 0:
        return "not comparable (no shared images)"
    direction = "higher" if t.mean_difference > 0 else ("lower" if t.mean_difference < 0 else "the same")
    by = "" if t.mean_difference == 0 else f" by {fmt(abs(t.mean_difference))}"
    return (f"{direction}{by} on average [95% CI {fmt(t.mean_ci_low)}, {fmt(t.mean_ci_high)}]: {row.model} better "
            f"on {t.wins}, equal on {t.ties}, worse on {t.losses} (Wilcoxon on the {t.n_tested} unequal pairs: "
            f"p {_p_words(t.p_value)}, Holm {_p_words(row.p_holm)})")


def _p_words(p: float) -> str:
    text = fmt_p(p)
    return "< 0.0001" if text.startswith("<") else (text if text == "–" else f"= {text}")


def compared_metric(results: RunResults) -> str | None:
    """Dice when the run has it, else its first metric."""
    names = results.metric_names
    return PREFERRED_METRIC if PREFERRED_METRIC in names else (names[0] if names else None)


def fmt_p(p: float) -> str:
    return "–" if math.isnan(p) else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def compare(results: RunResults, baseline: str | None = None,
            higher_is_better: Mapping[str, bool] | None = None) -> Comparison | None:
    """None when fewer than two models have results; an unknown baseline is a clear error."""
    frame = results.per_image
    models = results.scored_models
    if baseline is not None and baseline not in models:
        raise unknown("--baseline model", baseline, models)
    metric = compared_metric(results)
    if len(models) < 2 or metric is None:
        return None
    higher = (higher_is_better or {}).get(metric, True)
    baseline = baseline or models[0]
    others = [m for m in models if m != baseline]
    seed = bootstrap_seed(results.record_of(baseline).plan.seed)

    def family(rows: pd.DataFrame) -> list[ComparisonRow]:
        values = {m: rows[rows["model"] == m].set_index("sample_id")[metric] for m in models}
        base = values[baseline]
        tests = []
        for model in others:
            shared = base.index.intersection(values[model].index, sort=False)
            tests.append(paired_test(base[shared].to_numpy(), values[model][shared].to_numpy(), seed, higher))
        adjusted = holm([t.p_value for t in tests])
        return [ComparisonRow(m, t, float(p)) for m, t, p in zip(others, tests, adjusted)]

    empty = empty_references(frame)
    method = (
        f"{PAIRED_TEST} on per-image {metric}, each model against {baseline} on the images both were evaluated "
        f"on (n), ranking only the unequal pairs (n test); p-values {CORRECTION}-corrected across the "
        f"{len(others)} comparison(s), the images with foreground in the reference as a family of their own; mean "
        f"and median of the per-image differences (model minus {baseline}) with seeded percentile bootstrap 95% "
        f"CIs ({BOOTSTRAP_RESAMPLES:,} resamples); better / equal / worse: images where the model is better than, "
        f"equal to, worse than {baseline} ({'higher' if higher else 'lower'} {metric} is better)"
    )
    return Comparison(metric, baseline, family(frame), family(frame[~empty]) if empty.any() and not empty.all() else [], method)


PAIRED_COLUMNS = ("Model", "Images", "n", "Mean difference [95% CI]", "Better / equal / worse", "n (test)",
                  "Median difference [95% CI]", "p (Wilcoxon)", "p (Holm)")


def comparison_rows(comparison: Comparison) -> list[list[str]]:
    """The paired table as text, PAIRED_COLUMNS: each model over all images, then (when some references are
    empty) over the images with foreground in the reference."""
    families = [("all", comparison.rows), ("with foreground", comparison.non_empty)]
    rows = []
    for label, family in families:
        for row in family:
            t = row.test
            rows.append([row.model, label, str(t.n), f"{fmt(t.mean_difference)} [{fmt(t.mean_ci_low)}, {fmt(t.mean_ci_high)}]",
                         f"{t.wins} / {t.ties} / {t.losses}", str(t.n_tested),
                         f"{fmt(t.median_difference)} [{fmt(t.median_ci_low)}, {fmt(t.median_ci_high)}]",
                         fmt_p(t.p_value), fmt_p(row.p_holm)])
    return rows
