"""Per-image metric distribution per model: a box plot with every image as a dot."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from segbench.seeds import derive_seed
from segbench.errors import SegbenchError
from segbench.results import RunResults


def plot(results: RunResults, metric: str | None) -> tuple[Figure, str]:
    frame = results.per_image
    if metric is None or metric not in frame.columns:
        raise SegbenchError("the runs hold no per-image metric to plot")
    models = [m for m in results.scored_models if (frame["model"] == m).any()]
    if not models:
        raise SegbenchError("no model has per-image results")
    values = [frame.loc[frame["model"] == m, metric].to_numpy(np.float64) for m in models]
    figure = Figure(figsize=(1.2 + 1.1 * len(models), 3.2))
    ax = figure.add_subplot()
    ax.boxplot(values, showfliers=False, widths=0.5)
    # Jitter is seeded so the same results always give the same picture.
    rng = np.random.default_rng(derive_seed("distribution-jitter", results.record.plan.seed))
    for i, v in enumerate(values, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=8, alpha=0.5, color="tab:blue", linewidths=0)
    ax.set_xticks(range(1, len(models) + 1), models, rotation=20 if len(models) > 3 else 0)
    ax.set_ylabel(f"per-image {metric}")
    ax.grid(axis="y", alpha=0.3)
    caption = (f"Per-image {metric} per model: box from the first to the third quartile with the median, "
               "whiskers to 1.5 IQR, one dot per image.")
    return figure, caption
