"""The evaluation protocol: the threshold, the seeds of the evaluation subset and the bootstrap, and the
one scoring function every caller uses (the runner, re-scoring from predictions/, the benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segbench.seeds import derive_seed
from segbench.specs import MetricSpec

THRESHOLD = 0.5  # a pixel is foreground when its probability is >= THRESHOLD
COUNT_COLUMNS = ["tp", "fp", "fn", "tn"]


def bootstrap_seed(run_seed: int) -> int:
    """The seed a run draws its bootstrap resamples from: the same for every model of the run (paired)."""
    return derive_seed("bootstrap", run_seed)


def eval_subset(n: int, samples: int | None, run_seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded subset of `samples` of `n` test images (the same for every model), or
    None for all of them."""
    if samples is None or samples >= n:
        return None
    rng = np.random.default_rng(derive_seed("eval-subset", run_seed) % 2**63)
    return np.sort(rng.choice(n, size=samples, replace=False))


@dataclass(frozen=True)
class Scores:
    """One model's scores: per-image rows (model, sample_id, tp, fp, fn, tn, one column per metric), the
    summary rows (model, metric, mean, ci_low, ci_high, pooled) and the summary as metric -> values."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    by_metric: dict[str, dict[str, float]]


def score(model: str, ids: Sequence[str], probabilities, masks, threshold: float,
          metrics: Mapping[str, MetricSpec], bootstrap: int) -> Scores:
    """Score one model: probabilities (N, ...) in [0, 1] against masks (N, ...) in {0, 1} (torch tensors or
    numpy arrays), thresholded at `threshold`; `bootstrap` seeds the CIs (see `bootstrap_seed`)."""
    import torch

    from segbench.metrics import confusion_counts, summarise
    from segbench.metrics.statistics import per_image

    def tensor(values) -> torch.Tensor:
        return values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))

    probabilities = tensor(probabilities)
    counts = confusion_counts(probabilities.float() if probabilities.dtype == torch.float16 else probabilities,
                              tensor(masks), threshold)
    frame = pd.DataFrame({"model": model, "sample_id": list(ids)})
    for column, values in zip(COUNT_COLUMNS, counts):
        frame[column] = values.numpy()
    for metric, values in per_image(counts, metrics).items():
        frame[metric] = values
    summary = summarise(counts, metrics, seed=bootstrap)
    rows = pd.DataFrame([{"model": model, "metric": m, **s} for m, s in summary.items()])
    return Scores(frame, rows, summary)
