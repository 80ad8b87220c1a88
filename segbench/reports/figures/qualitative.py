"""Qualitative grid, as the seed paper's Figures 4-7: image, ground truth, each model's mask (and uncertainty)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from segbench.seeds import derive_seed
from segbench.errors import SegbenchError
from segbench.results import RunResults
from segbench.results.arrays import align, read_predictions, read_reference

SAMPLES = 4


def choose_samples(ids: list[str], seed: int, count: int = SAMPLES) -> list[str]:
    """A seeded choice of `count` ids, in their original order: the same run always shows the same images."""
    rng = np.random.default_rng(derive_seed("qualitative", seed))
    return [ids[i] for i in np.sort(rng.choice(len(ids), size=min(count, len(ids)), replace=False))]


def plot(results: RunResults) -> tuple[Figure, str]:
    models = results.scored_models
    if not models:
        raise SegbenchError("no model has predictions")
    reference = read_reference(results.run_dir(models[0]))
    predictions = {m: read_predictions(results.run_dir(m), m) for m in models}
    shared = [i for i in reference.ids if all(i in set(p.ids) for p in predictions.values())]
    if not shared:
        raise SegbenchError("the models were evaluated on no common sample")
    chosen = choose_samples(shared, results.record.plan.seed)
    ref_index = align(reference.ids, chosen, "reference")
    columns: list[tuple[str, np.ndarray, str]] = [
        ("image", reference.images[ref_index], "gray"), ("ground truth", reference.masks[ref_index], "gray")]
    for model, pred in predictions.items():
        index = align(pred.ids, chosen, f"predictions of {model}")
        threshold = results.record_of(model).plan.evaluation.threshold
        columns.append((model, (pred.probabilities[index].astype(np.float32) >= threshold).astype(np.uint8), "gray"))
        if pred.has_uncertainty:
            columns.append((f"{model} std", pred.uncertainty[index].astype(np.float32), "magma"))
    figure = Figure(figsize=(1.5 * len(columns), 1.55 * len(chosen) + 0.3))
    axes = figure.subplots(len(chosen), len(columns), squeeze=False)
    for col, (title, stack, cmap) in enumerate(columns):
        vmax = 255 if title == "image" else (1 if cmap == "gray" else max(float(stack.max()), 1e-6))
        for row in range(len(chosen)):
            ax = axes[row, col]
            ax.imshow(stack[row], cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
    for row, sample_id in enumerate(chosen):
        axes[row, 0].set_ylabel(sample_id, fontsize=7)
    figure.tight_layout(pad=0.3)
    thresholds = sorted({results.record_of(m).plan.evaluation.threshold for m in models})
    caption = (f"Image, ground truth and each model's mask (threshold {', '.join(f'{t:g}' for t in thresholds)}) "
               f"on {len(chosen)} test images chosen with the run seed.")
    if any(p.has_uncertainty for p in predictions.values()):
        caption += " Columns marked std: per-pixel standard deviation of the sampled masks (uncertainty)."
    return figure, caption
