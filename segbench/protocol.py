"""The evaluation protocol (its threshold is the plan's, `segbench.plan.run_plan.THRESHOLD`): the seeds of the evaluation subset and the bootstrap, and the
one scoring function every caller uses (the runner, re-scoring from predictions/, the benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.seeds import derive_seed
from segbench.specs import MetricSpec

COUNT_COLUMNS = ["tp", "fp", "fn", "tn"]
REFERENCE_EMPTY = "reference_empty"  # per_image.csv: True where the reference mask has no foreground


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


def reference_is_empty(tp, fn):
    """Per image, whether its reference mask has no foreground (TP + FN = 0), from its confusion counts."""
    return (tp + fn) == 0


@dataclass(frozen=True)
class Scores:
    """One model's scores: per-image rows (model, sample_id, tp, fp, fn, tn, reference_empty, the dataset's
    metadata columns, one column per metric), the summary rows (model, metric, mean, ci_low, ci_high,
    pooled) and the summary as metric -> values."""

    per_image: pd.DataFrame
    summary: pd.DataFrame
    by_metric: dict[str, dict[str, float]]


def score(model: str, ids: Sequence[str], probabilities, masks, threshold: float,
          metrics: Mapping[str, MetricSpec], bootstrap: int,
          metadata: Mapping[str, Sequence[str]] | None = None) -> Scores:
    """Score one model: probabilities (N, ...) in [0, 1] against masks (N, ...) in {0, 1} (torch tensors or
    numpy arrays), thresholded at `threshold`; `bootstrap` seeds the CIs (see `bootstrap_seed`); `metadata`:
    per column, one value per image (`SplitData.metadata`)."""
    import torch

    from segbench.metrics import confusion_counts, summarise
    from segbench.metrics.masks import mask_metric_values
    from segbench.metrics.statistics import per_image

    def tensor(values) -> torch.Tensor:
        return values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))

    probabilities = tensor(probabilities)
    probabilities = probabilities.float() if probabilities.dtype == torch.float16 else probabilities
    masks = tensor(masks)
    counts = confusion_counts(probabilities, masks, threshold)
    frame = pd.DataFrame({"model": model, "sample_id": list(ids)})
    for column, values in zip(COUNT_COLUMNS, counts):
        frame[column] = values.numpy()
    frame[REFERENCE_EMPTY] = reference_is_empty(counts.tp, counts.fn).numpy()
    for column, values in (metadata or {}).items():
        if column in frame or column in metrics:
            raise SegbenchError(f"the dataset's metadata key {column!r} is also a per_image.csv column (or a metric); "
                                "the dataset plugin must rename it")
        frame[column] = list(values)
    values = per_image(counts, metrics)
    masked = {name: spec for name, spec in metrics.items() if spec.kind == "masks"}
    if masked:
        shape = (len(frame), *masks.shape[-2:])
        values |= mask_metric_values((probabilities >= threshold).reshape(shape).numpy(),
                                     (masks > 0.5).reshape(shape).numpy(),
                                     probabilities.reshape(shape).numpy().astype(np.float32, copy=False), masked)
    for metric in metrics:
        frame[metric] = values[metric]
    summary = summarise(values, counts, metrics, seed=bootstrap)
    rows = pd.DataFrame([{"model": model, "metric": m, **s} for m, s in summary.items()])
    return Scores(frame, rows, summary)
