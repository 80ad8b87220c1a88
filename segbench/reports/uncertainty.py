"""The uncertainty table: per model, how well its stored per-pixel uncertainty points at its errors, and
how well calibrated its probabilities are, from predictions/ and the evaluated reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segbench.errors import SegbenchError
from segbench.metrics.calibration import ECE_BINS, auroc, brier_score, expected_calibration_error
from segbench.metrics.statistics import bootstrap_ci
from segbench.protocol import bootstrap_seed
from segbench.reports.table import fmt
from segbench.results import RunResults
from segbench.results.arrays import Reference, align, read_predictions, read_reference

METHOD = (f"A pixel is an error when the thresholded prediction differs from the reference. Uncertainty AUROC: "
          f"how well the stored per-pixel uncertainty (the ensemble's: the std of the mean fusion, the entropy of a "
          f"vote or STAPLE; or the model's own) ranks error "
          f"pixels above correct ones (0.5: no better than chance), per image over the images with both kinds of "
          f"pixel (mean with a seeded bootstrap 95% CI, n images) and pooled over all pixels; – for models that "
          f"store no uncertainty. ECE: expected calibration error of the foreground probabilities over all pixels "
          f"({ECE_BINS} equal-width bins); Brier: mean squared difference of probability and reference; lower is "
          f"better for both.")


@dataclass(frozen=True)
class UncertaintyQuality:
    """One model's row; the AUROC fields are NaN (and `images` 0) when it stores no uncertainty."""

    model: str
    auroc_mean: float
    auroc_ci_low: float
    auroc_ci_high: float
    images: int
    auroc_pooled: float
    ece: float
    brier: float


@dataclass(frozen=True)
class ModelPixels:
    """A model's evaluated pixels: probabilities float32, errors and references bool, uncertainty float32
    or None, each (N, H, W)."""

    probabilities: np.ndarray
    errors: np.ndarray
    references: np.ndarray
    uncertainty: np.ndarray | None


def model_pixels(results: RunResults, model: str, references: dict[Path, Reference]) -> ModelPixels:
    """`model`'s saved predictions against its run's reference (cached in `references` by run directory)."""
    run_dir = results.run_dir(model)
    if run_dir not in references:
        references[run_dir] = read_reference(run_dir)
    predictions = read_predictions(run_dir, model)
    reference = references[run_dir]
    masks = reference.masks[align(reference.ids, predictions.ids, str(run_dir))].astype(bool)
    probabilities = predictions.probabilities.astype(np.float32)
    errors = (probabilities >= results.record_of(model).plan.evaluation.threshold) != masks
    uncertainty = predictions.uncertainty.astype(np.float32) if predictions.has_uncertainty else None
    return ModelPixels(probabilities, errors, masks, uncertainty)


def uncertainty_quality(results: RunResults) -> list[UncertaintyQuality]:
    """A row per model with results; a run without its saved reference is a clear error."""
    references: dict[Path, Reference] = {}
    rows = []
    for model in results.scored_models:
        pixels = model_pixels(results, model, references)
        ece = expected_calibration_error(pixels.probabilities, pixels.references)
        brier = brier_score(pixels.probabilities, pixels.references)
        if pixels.uncertainty is None:
            rows.append(UncertaintyQuality(model, *[float("nan")] * 3, 0, float("nan"), ece, brier))
            continue
        n = len(pixels.errors)
        per_image = auroc(pixels.uncertainty.reshape(n, -1), pixels.errors.reshape(n, -1))
        defined = per_image[~np.isnan(per_image)]
        low, high = bootstrap_ci(defined, bootstrap_seed(results.record_of(model).plan.seed))
        pooled = float(auroc(pixels.uncertainty.ravel(), pixels.errors.ravel()))
        rows.append(UncertaintyQuality(model, float(defined.mean()) if defined.size else float("nan"), low, high,
                                       int(defined.size), pooled, ece, brier))
    if not rows:
        raise SegbenchError("no model has results")
    return rows


UNCERTAINTY_COLUMNS = ("Model", "Uncertainty AUROC, per image [95% CI] (n)", "Uncertainty AUROC, pooled", "ECE", "Brier")


def uncertainty_rows(quality: list[UncertaintyQuality]) -> list[list[str]]:
    """The uncertainty table as text, UNCERTAINTY_COLUMNS."""
    return [[q.model, "–" if not q.images else f"{fmt(q.auroc_mean)} [{fmt(q.auroc_ci_low)}, {fmt(q.auroc_ci_high)}] ({q.images})",
             fmt(q.auroc_pooled), fmt(q.ece), fmt(q.brier)] for q in quality]
