"""Uncertainty against error: the share of wrong pixels in bins of per-pixel uncertainty, one line per model
that stores uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from segbench.errors import SegbenchError
from segbench.reports.uncertainty import model_pixels
from segbench.results import RunResults
from segbench.results.arrays import Reference

BINS = 10


def binned(uncertainty: np.ndarray, errors: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """(mean uncertainty, share of errors) per bin of about equal pixel counts (fewer bins where many pixels
    share one value, e.g. zero)."""
    u, e = uncertainty.ravel().astype(np.float64), errors.ravel()
    edges = np.unique(np.quantile(u, np.linspace(0, 1, bins + 1)))
    index = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, max(len(edges) - 2, 0))
    counts = np.bincount(index)
    used = counts > 0
    return (np.bincount(index, weights=u)[used] / counts[used], np.bincount(index, weights=e)[used] / counts[used])


def plot(results: RunResults) -> tuple[Figure, str]:
    references: dict[Path, Reference] = {}
    curves = {}
    for model in results.scored_models:
        pixels = model_pixels(results, model, references)
        if pixels.uncertainty is not None:
            curves[model] = binned(pixels.uncertainty, pixels.errors)
    if not curves:
        raise SegbenchError("no model stores a per-pixel uncertainty (an ensemble, --ensemble K > 1, does)")
    figure = Figure(figsize=(4.2, 3.0))
    ax = figure.add_subplot()
    for model, (u, e) in curves.items():
        ax.plot(u, e, marker="o", markersize=3, label=model)
    ax.set_xlabel("per-pixel uncertainty")
    ax.set_ylabel("share of wrong pixels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    caption = (f"Share of wrong pixels against per-pixel uncertainty: every evaluated pixel in up to {BINS} bins of "
               "about equal size by its uncertainty, one point per bin at its mean uncertainty. Uncertainty that "
               "points at errors rises from left to right.")
    return figure, caption
