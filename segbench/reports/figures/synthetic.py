"""Synthetic X-rays beside real ones (the seed paper's Figure 3): for every model that synthesised images
after training, a row of them, under a row of evaluated real images, with FID/KID where computed."""

from __future__ import annotations

from matplotlib.figure import Figure

from segbench.results import RunResults
from segbench.results.arrays import read_reference, read_synthetic

COLUMNS = 8


def plot(results: RunResults) -> tuple[Figure, str] | None:
    """The grid, or None when no model of the run synthesised images."""
    made = {m: images for m in results.model_names
            if (images := read_synthetic(results.run_dir(m), m)) is not None}
    if not made:
        return None
    real = read_reference(results.run_dir(next(iter(made)))).images[:COLUMNS]
    rows = [("real (test)", real), *((m, images[:COLUMNS]) for m, images in made.items())]
    figure = Figure(figsize=(1.1 * COLUMNS, 1.15 * len(rows)))
    axes = figure.subplots(len(rows), COLUMNS, squeeze=False)
    for row, (name, images) in enumerate(rows):
        for column in range(COLUMNS):
            ax = axes[row, column]
            if column < len(images):
                ax.imshow(images[column], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.axis("on" if column < len(images) else "off")
        axes[row, 0].set_ylabel(name, fontsize=7)
    figure.tight_layout(pad=0.3)
    notes = []
    for model in made:
        record = results.models[model].synthetic
        if "fid" in record:
            notes.append(f"{model}: FID {record['fid']:.1f}, KID {record['kid_mean']:.4f} ± {record['kid_std']:.4f} "
                         f"({record['fidelity']})")
        elif record.get("fidelity"):
            notes.append(f"{model}: {record['fidelity']}")
    caption = ("Synthetic X-rays of each model's unconditional DDPM (one per seed derived from the run seed), under "
               "real test images at the same size." + (" " + "; ".join(notes) + "." if notes else ""))
    return figure, caption
