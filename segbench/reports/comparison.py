"""Paired comparison of every model with a baseline on the images both were evaluated on."""

from __future__ import annotations

import math
from dataclasses import dataclass

from segbench.errors import unknown
from segbench.metrics.paired import CORRECTION, PAIRED_TEST, PairedTest, holm, paired_test
from segbench.metrics.statistics import BOOTSTRAP_RESAMPLES
from segbench.results import RunResults
from segbench.protocol import bootstrap_seed

PREFERRED_METRIC = "dice"


@dataclass(frozen=True)
class ComparisonRow:
    model: str
    test: PairedTest
    p_holm: float


@dataclass(frozen=True)
class Comparison:
    """Each model against `baseline` on per-image `metric`; `method` says which test and correction, in words."""

    metric: str
    baseline: str
    rows: list[ComparisonRow]
    method: str


def compared_metric(results: RunResults) -> str | None:
    """Dice when the run has it, else its first metric."""
    names = results.metric_names
    return PREFERRED_METRIC if PREFERRED_METRIC in names else (names[0] if names else None)


def fmt_p(p: float) -> str:
    return "–" if math.isnan(p) else ("<0.0001" if p < 1e-4 else f"{p:.4f}")


def compare(results: RunResults, baseline: str | None = None) -> Comparison | None:
    """None when fewer than two models have results; an unknown baseline is a clear error."""
    frame = results.per_image
    models = results.scored_models
    if baseline is not None and baseline not in models:
        raise unknown("--baseline model", baseline, models)
    metric = compared_metric(results)
    if len(models) < 2 or metric is None:
        return None
    baseline = baseline or models[0]
    values = {m: frame[frame["model"] == m].set_index("sample_id")[metric] for m in models}
    base = values[baseline]
    others = [m for m in models if m != baseline]
    tests = []
    for model in others:
        shared = base.index.intersection(values[model].index, sort=False)
        tests.append(paired_test(base[shared].to_numpy(), values[model][shared].to_numpy(),
                                 seed=bootstrap_seed(results.record_of(baseline).plan.seed)))
    adjusted = holm([t.p_value for t in tests])
    method = (
        f"{PAIRED_TEST} on per-image {metric}, each model against {baseline} on the images both were evaluated "
        f"on (n); p-values {CORRECTION}-corrected across the {len(others)} comparison(s); median of the "
        f"per-image differences (model minus {baseline}) with a seeded percentile bootstrap 95% CI "
        f"({BOOTSTRAP_RESAMPLES:,} resamples)"
    )
    return Comparison(metric, baseline, [ComparisonRow(m, t, float(p)) for m, t, p in zip(others, tests, adjusted)],
                      method)
