"""For models whose probability is a thresholded score (an anomaly model's, calibrated on healthy images):
the per-image Dice at the best threshold on the test set, an upper bound no deployable model has (its
threshold is chosen on the images it is scored on), and how well the score separates images whose
reference has foreground from those without (image-level AUROC)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segbench.metrics.calibration import auroc
from segbench.metrics.confusion import confusion_counts
from segbench.metrics.definitions import dice
from segbench.reports.table import fmt
from segbench.reports.uncertainty import model_pixels
from segbench.results import RunResults
from segbench.results.arrays import Reference

THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)  # the thresholds searched, 0.01 apart
IMAGE_SCORE_QUANTILE = 0.99  # an image's anomaly score: this quantile of its pixels' probabilities

METHOD = (f"For models whose probability is a calibrated score, not a trained segmentation: the per-image mean "
          f"Dice at the run's threshold; the threshold among 0.01, 0.02, ..., 0.99 that maximises it on the test "
          f"images themselves, and the Dice there, an upper bound no deployable model has; the same over the images "
          f"whose reference has foreground (what the model is for: on an empty reference any false-positive pixel "
          f"scores Dice 0); and the image-level "
          f"AUROC of the score (an image's {IMAGE_SCORE_QUANTILE:.0%} quantile of pixel probabilities), images "
          f"whose reference has foreground against those without (0.5: chance).")


@dataclass(frozen=True)
class UpperBound:
    """One model's row."""

    model: str
    threshold: float
    dice: float
    best_threshold: float
    best_dice: float
    foreground_dice: float
    foreground_best_threshold: float
    foreground_best_dice: float
    image_auroc: float
    positives: int
    negatives: int


def per_image_dice(probabilities: np.ndarray, references: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) Dice of each image's mask at `threshold`, as the protocol scores it (empty-mask policy included)."""
    counts = confusion_counts(torch.from_numpy(probabilities), torch.from_numpy(references), threshold)
    return dice(*counts.as_float()).numpy()


def _best(per_image: list[np.ndarray]) -> tuple[float, float]:
    """(threshold, mean Dice) of the threshold with the highest per-image mean; per_image[i] at THRESHOLDS[i]."""
    means = [float(d.mean()) for d in per_image]
    best = int(np.argmax(means))
    return float(THRESHOLDS[best]), means[best]


def upper_bounds(results: RunResults, models: list[str]) -> list[UpperBound]:
    """A row per model of `models` that has results."""
    references: dict[Path, Reference] = {}
    rows = []
    for model in [m for m in models if m in results.scored_models]:
        pixels = model_pixels(results, model, references)
        threshold = results.record_of(model).plan.evaluation.threshold
        n = len(pixels.probabilities)
        positive = pixels.references.reshape(n, -1).any(1)
        at_threshold = per_image_dice(pixels.probabilities, pixels.references, threshold)
        searched = [per_image_dice(pixels.probabilities, pixels.references, t) for t in THRESHOLDS]
        scores = np.quantile(pixels.probabilities.reshape(n, -1), IMAGE_SCORE_QUANTILE, axis=1)
        rows.append(UpperBound(model, threshold, float(at_threshold.mean()), *_best(searched),
                               float(at_threshold[positive].mean()) if positive.any() else float("nan"),
                               *(_best([d[positive] for d in searched]) if positive.any() else (float("nan"),) * 2),
                               float(auroc(scores, positive)), int(positive.sum()), int((~positive).sum())))
    return rows


UPPER_BOUND_COLUMNS = ("Model", "Dice at its threshold", "Best threshold on the test set", "Dice there (upper bound)",
                       "With foreground: Dice at its threshold", "With foreground: best threshold",
                       "With foreground: Dice there (upper bound)", "Image-level AUROC (with vs without foreground)")


def upper_bound_rows(rows: list[UpperBound]) -> list[list[str]]:
    """The table as text, UPPER_BOUND_COLUMNS."""
    return [[r.model, f"{fmt(r.dice)} (at {r.threshold:g})", f"{r.best_threshold:g}", fmt(r.best_dice),
             fmt(r.foreground_dice), f"{r.foreground_best_threshold:g}", fmt(r.foreground_best_dice),
             f"{fmt(r.image_auroc)} ({r.positives} vs {r.negatives} images)"] for r in rows]
