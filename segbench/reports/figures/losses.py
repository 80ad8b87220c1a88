"""Training loss curves: each model's mean loss per epoch (models.json "losses"), and for a model trained in
stages each stage's ("stages"[i]["losses"], labelled "MODEL/STAGE")."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from segbench.errors import SegbenchError
from segbench.results import RunResults

PANELS_PER_ROW = 4


def curves(results: RunResults) -> dict[str, np.ndarray]:
    """Label -> mean training loss per epoch: the model's name for a model in one stage, "MODEL/STAGE" for
    each stage of a model in several that has losses (a stage fitted without an optimiser has none)."""
    found = {}
    for model in results.model_names:
        info = results.models[model]
        if len(info.stages) > 1:
            found.update({f"{model}/{s.name}": np.asarray(s.losses, np.float64) for s in info.stages if s.losses})
        elif info.losses:
            found[model] = np.asarray(info.losses, np.float64)
    return found


def plot(results: RunResults) -> tuple[Figure, str]:
    found = curves(results)
    if not found:
        raise SegbenchError("models.json records no training losses")
    # One panel per curve: a diffusion loss, a BCE+Dice loss and a stage's reconstruction loss do not share a scale.
    columns = min(len(found), PANELS_PER_ROW)
    rows = math.ceil(len(found) / columns)
    figure = Figure(figsize=(0.6 + 2.6 * columns, 2.6 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (label, losses) in zip(axes, found.items()):
        epochs = np.arange(1, losses.size + 1)
        ax.plot(epochs, losses, marker="o" if losses.size <= 30 else None, markersize=3)
        if (losses > 0).all() and losses.max() / losses.min() > 30:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[len(found):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("mean training loss")
    figure.tight_layout()
    staged = any(label not in results.models for label in found)
    return figure, ("Mean training loss per epoch, one panel per model"
                    + (" (per stage, MODEL/STAGE, for a model trained in stages)." if staged else "."))
