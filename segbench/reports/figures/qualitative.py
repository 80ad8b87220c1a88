"""Qualitative grid, as the seed paper's Figures 4-7 but readable in print: per row one test image, per
column the X-ray with the reference outlined, then each model's mask over the X-ray coloured by agreement
(true positive, false positive, false negative) with its per-image Dice, and the ensemble's uncertainty.
Rows are the images of the worst, lower-quartile, median and best mean Dice over the models, among the
images whose reference has foreground (so an empty image is never all the figure shows)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from segbench.errors import SegbenchError
from segbench.results import RunResults
from segbench.results.arrays import align, read_predictions, read_reference

QUANTILES = (("worst", 0.0), ("lower quartile", 0.25), ("median", 0.5), ("best", 1.0))
COLOURS = {"true positive": (0.15, 0.75, 0.3), "false positive": (0.95, 0.3, 0.15),
           "false negative": (0.2, 0.45, 1.0)}
ALPHA = 0.6
REFERENCE_LINE = (1.0, 0.85, 0.1)  # the reference's outline, yellow


def choose_samples(dice: dict[str, float], count: int = len(QUANTILES)) -> list[tuple[str, str]]:
    """(id, which quantile) of the images at the QUANTILES of `dice` (id -> mean Dice over the models),
    ties broken by id, each image once."""
    ranked = sorted(dice, key=lambda i: (dice[i], i))
    chosen: list[tuple[str, str]] = []
    for name, q in QUANTILES[:count]:
        sample = ranked[round(q * (len(ranked) - 1))]
        if sample not in {c for c, _ in chosen}:
            chosen.append((sample, name))
    return chosen


def _mean_dice(results: RunResults, models: list[str], shared: list[str]) -> dict[str, float]:
    """id -> mean per-image Dice over `models`, for the shared images whose reference has foreground (all
    shared images when none has)."""
    frame = results.per_image[results.per_image["model"].isin(models) & results.per_image["sample_id"].isin(shared)]
    non_empty = frame[(frame["tp"] + frame["fn"]) > 0]
    frame = non_empty if len(non_empty) else frame
    return frame.groupby("sample_id")["dice"].mean().to_dict()


def _overlay(image: np.ndarray, predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The grey image as RGB with the prediction's pixels coloured by agreement with the reference."""
    rgb = np.repeat((image.astype(np.float32) / 255)[..., None], 3, axis=2)
    for name, where in (("true positive", predicted & reference), ("false positive", predicted & ~reference),
                        ("false negative", ~predicted & reference)):
        rgb[where] = (1 - ALPHA) * rgb[where] + ALPHA * np.array(COLOURS[name])
    return rgb


def plot(results: RunResults) -> tuple[Figure, str]:
    models = results.scored_models
    if not models:
        raise SegbenchError("no model has predictions")
    if "dice" not in results.per_image:
        raise SegbenchError("per_image.csv has no dice column to choose the images by")
    reference = read_reference(results.run_dir(models[0]))
    predictions = {m: read_predictions(results.run_dir(m), m) for m in models}
    shared = [i for i in reference.ids if all(i in set(p.ids) for p in predictions.values())]
    if not shared:
        raise SegbenchError("the models were evaluated on no common sample")
    chosen = choose_samples(_mean_dice(results, models, shared))
    ids = [i for i, _ in chosen]
    ref_index = align(reference.ids, ids, "reference")
    images, truth = reference.images[ref_index], reference.masks[ref_index].astype(bool)
    dice = results.per_image.set_index(["model", "sample_id"])["dice"]
    uncertain = [m for m, p in predictions.items() if p.has_uncertainty]
    columns = 1 + len(models) + len(uncertain)
    figure = Figure(figsize=(1.45 * columns, 1.5 * len(ids) + 0.55))
    axes = figure.subplots(len(ids), columns, squeeze=False)
    for row in range(len(ids)):
        axes[row, 0].imshow(images[row], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[row, 0].contour(truth[row], levels=[0.5], colors=[REFERENCE_LINE], linewidths=0.7)
        axes[row, 0].set_ylabel(f"{chosen[row][1]}\n{ids[row]}", fontsize=6)
    column = 1
    for model, pred in predictions.items():
        index = align(pred.ids, ids, f"predictions of {model}")
        threshold = results.record_of(model).plan.evaluation.threshold
        masks = pred.probabilities[index].astype(np.float32) >= threshold
        for row in range(len(ids)):
            axes[row, column].imshow(_overlay(images[row], masks[row], truth[row]), interpolation="nearest")
            axes[row, column].set_title(f"Dice {dice[(model, ids[row])]:.3f}", fontsize=6, pad=2)
        axes[0, column].set_title(f"{model}\nDice {dice[(model, ids[0])]:.3f}", fontsize=7, pad=2)
        column += 1
        if pred.has_uncertainty:
            std = pred.uncertainty[index].astype(np.float32)
            for row in range(len(ids)):
                axes[row, column].imshow(std[row], cmap="magma", vmin=0, vmax=max(float(std.max()), 1e-6),
                                         interpolation="nearest")
            axes[0, column].set_title(f"{model}\nuncertainty", fontsize=7, pad=2)
            column += 1
    axes[0, 0].set_title("X-ray, reference", fontsize=7, pad=2)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=c, label=n) for n, c in COLOURS.items()] + [Patch(color=REFERENCE_LINE, label="reference")]
    figure.legend(handles=handles, loc="lower center", ncol=4, fontsize=6, frameon=False)
    figure.tight_layout(pad=0.3, rect=(0, 0.06, 1, 1))
    thresholds = sorted({results.record_of(m).plan.evaluation.threshold for m in models})
    caption = (f"Each model's mask (threshold {', '.join(f'{t:g}' for t in thresholds)}) over the X-ray: green "
               "true positive, red false positive, blue false negative; yellow: the reference's outline; the "
               "per-image Dice above each panel. Rows: the images of the worst, lower-quartile, median and best "
               "mean Dice over the models, among those whose reference has foreground.")
    if uncertain:
        caption += (" Columns marked uncertainty: each model's per-pixel uncertainty map (the standard deviation of "
                    "its sampled masks under mean fusion, an entropy under vote or STAPLE fusion; ddpm-features' "
                    "vote: its members' Jensen-Shannon divergence).")
    return figure, caption
