"""Scoring saved predictions again at another threshold or with other metrics, without running a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from segbench.engine.seeding import derive_seed
from segbench.errors import SegbenchError
from segbench.metrics import confusion_counts, summarise
from segbench.metrics.statistics import per_image
from segbench.results.arrays import Reference, align, read_predictions, read_reference
from segbench.results.store import COUNT_COLUMNS, REFERENCE_FILE, RunResults
from segbench.specs import MetricSpec


def bootstrap_seed(config: Mapping[str, Any]) -> int:
    """The seed a run draws its bootstrap resamples from (as `segbench run` derives it)."""
    return derive_seed("bootstrap", config.get("seed", 0))


def select_scores(
    results: RunResults, metrics: list[str] | None, threshold: float | None, lookup: Callable[[str], MetricSpec]
) -> RunResults:
    """The results to report: as run, limited to `metrics`, or re-scored from predictions/ when a
    threshold is given or a metric is not in the run (`lookup` names a metric's spec, e.g. registry().metric)."""
    names = list(dict.fromkeys(metrics or results.metric_names))
    if threshold is None and set(names) <= set(results.metric_names):
        return _only(results, names)
    return rescore(results, {name: lookup(name) for name in names}, threshold)


def _only(results: RunResults, names: list[str]) -> RunResults:
    order = {name: i for i, name in enumerate(names)}
    models = {name: i for i, name in enumerate(dict.fromkeys(results.summary["model"]))}
    summary = results.summary[results.summary["metric"].isin(names)]
    key = summary["model"].map(models) * len(names) + summary["metric"].map(order)
    summary = summary.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    keep = [c for c in results.per_image.columns if c not in results.metric_names or c in order]
    return replace(results, summary=summary, per_image=results.per_image[keep])


def rescore(results: RunResults, metrics: Mapping[str, MetricSpec], threshold: float | None) -> RunResults:
    """Per-image rows and summary recomputed from each model's predictions/ and its run's reference masks.

    threshold: None keeps each run's own. Models without results (failed) are left out of both tables.
    """
    if threshold is not None and not 0 < threshold <= 1:
        raise SegbenchError(f"--threshold must be in (0, 1], got {threshold}")
    references: dict[Path, Reference] = {}
    per_image_frames, summary_frames, configs = [], [], dict(results.model_configs)
    for model in dict.fromkeys(results.summary["model"]):
        run_dir, config = results.run_dir(model), results.config_of(model)
        cut = float(config.get("threshold", 0.5) if threshold is None else threshold)
        predictions = read_predictions(run_dir, model)
        if run_dir not in references:
            references[run_dir] = read_reference(run_dir)
        reference = references[run_dir]
        index = align(reference.ids, predictions.ids, f"{run_dir / REFERENCE_FILE}")
        counts = confusion_counts(torch.from_numpy(predictions.probabilities.astype(np.float32)),
                                  torch.from_numpy(reference.masks[index]), cut)
        frame = pd.DataFrame({"model": model, "sample_id": predictions.ids})
        for column, values in zip(COUNT_COLUMNS, counts):
            frame[column] = values.numpy()
        for name, values in per_image(counts, metrics).items():
            frame[name] = values
        per_image_frames.append(frame)
        summary = summarise(counts, metrics, seed=bootstrap_seed(config))
        summary_frames.append(pd.DataFrame([{"model": model, "metric": m, **s} for m, s in summary.items()]))
        configs[model] = {**config, "threshold": cut}
    if not summary_frames:
        raise SegbenchError("nothing to re-score: no model of these runs has results")
    config = results.config if threshold is None else {**results.config, "threshold": threshold}
    return replace(results, config=config, per_image=pd.concat(per_image_frames, ignore_index=True),
                   summary=pd.concat(summary_frames, ignore_index=True), model_configs=configs)
