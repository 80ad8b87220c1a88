"""Training loss curves: each model's mean loss per epoch (models.json "losses")."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from segbench.errors import SegbenchError
from segbench.results import RunResults


def plot(results: RunResults) -> tuple[Figure, str]:
    curves = {m: np.asarray(results.models[m].losses, np.float64) for m in results.model_names if results.models[m].losses}
    if not curves:
        raise SegbenchError("models.json records no training losses")
    # One panel per model: a diffusion loss and a BCE+Dice loss do not share a scale.
    figure = Figure(figsize=(0.6 + 2.6 * len(curves), 2.6))
    axes = figure.subplots(1, len(curves), squeeze=False)[0]
    for ax, (model, losses) in zip(axes, curves.items()):
        epochs = np.arange(1, losses.size + 1)
        ax.plot(epochs, losses, marker="o" if losses.size <= 30 else None, markersize=3)
        if (losses > 0).all() and losses.max() / losses.min() > 30:
            ax.set_yscale("log")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean training loss")
    figure.tight_layout()
    return figure, "Mean training loss per epoch, one panel per model."
