"""Draw docs/phantom.png: six cxr-phantom test images at 64x64, raw and with their masks outlined.

Run from the repository root: `python docs/make_phantom_figure.py`.
The first three infected and first three clean test phantoms are shown.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from segbench_cxr.phantom import DATASET_SEED, render_phantom  # noqa: E402

SIZE = 64
OUT = Path(__file__).with_name("phantom.png")


def pick_samples(per_kind: int = 3) -> list[int]:
    """Indices of the first `per_kind` infected and first `per_kind` clean test phantoms."""
    infected, clean = [], []
    index = 0
    while len(infected) < per_kind or len(clean) < per_kind:
        has_infection = render_phantom(DATASET_SEED, index, SIZE, "test")[2].any()
        (infected if has_infection else clean).append(index)
        index += 1
    return infected[:per_kind] + clean[:per_kind]


def main() -> None:
    indices = pick_samples()
    fig, axes = plt.subplots(2, len(indices), figsize=(2.2 * len(indices), 4.8))
    for column, index in enumerate(indices):
        image, lung, infection = render_phantom(DATASET_SEED, index, SIZE, "test")
        for row in (0, 1):
            axes[row, column].imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[row, column].set_axis_off()
        axes[1, column].contour(lung, [0.5], colors="deepskyblue", linewidths=1.0)
        if infection.any():
            axes[1, column].contour(infection, [0.5], colors="red", linewidths=1.0)
        axes[0, column].set_title(f"test/{index}", fontsize=9)
    fig.suptitle(
        f"cxr-phantom at {SIZE}x{SIZE}: images (top); lung (blue) and infection (red) masks outlined (bottom)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
