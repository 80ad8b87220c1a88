"""Scoring saved predictions again at another threshold or with other metrics, without running a model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.protocol import bootstrap_seed, score
from segbench.results.arrays import Reference, align, read_predictions, read_reference
from segbench.results.record import RunRecord
from segbench.results.store import REFERENCE_FILE, RunResults
from segbench.specs import MetricSpec


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
    per_image_frames, summary_frames = [], []
    records: dict[str, RunRecord] = dict(results.model_records)
    kept = results.metadata_columns  # the dataset's metadata, carried over from the run's rows
    for model in dict.fromkeys(results.summary["model"]):
        run_dir, record = results.run_dir(model), results.record_of(model)
        cut = float(record.plan.evaluation.threshold if threshold is None else threshold)
        predictions = read_predictions(run_dir, model)
        if run_dir not in references:
            references[run_dir] = read_reference(run_dir)
        reference = references[run_dir]
        index = align(reference.ids, predictions.ids, f"{run_dir / REFERENCE_FILE}")
        rows = results.per_image[results.per_image["model"] == model].set_index("sample_id")
        metadata = {column: rows[column].reindex(predictions.ids, fill_value="").tolist() for column in kept}
        scores = score(model, predictions.ids, predictions.probabilities, reference.masks[index], cut, metrics,
                       bootstrap_seed(record.plan.seed), metadata)
        per_image_frames.append(scores.per_image)
        summary_frames.append(scores.summary)
        records[model] = record.with_threshold(cut)
    if not summary_frames:
        raise SegbenchError("nothing to re-score: no model of these runs has results")
    record = results.record if threshold is None else results.record.with_threshold(threshold)
    return replace(results, record=record, per_image=pd.concat(per_image_frames, ignore_index=True),
                   summary=pd.concat(summary_frames, ignore_index=True), model_records=records)
