"""Metric speed: boundary metrics (HD95, ASSD, NSD) of 10,000 masks at 64x64 against calling MONAI's metric
functions per image, and the count metrics against scikit-learn per image, side by side in one process.

    python benchmarks/metrics.py [--masks 10000] [--library-subset 500]   # writes results/metrics.json

Boundary metrics: segbench scores every image once through `MaskPair`, whose boundary distances (MONAI's
`get_mask_edges` / `get_surface_distance`) are shared by the three metrics; the library way is MONAI's
compute_hausdorff_distance (95th percentile), compute_average_surface_distance (symmetric) and
compute_surface_dice (1 px, sub-voxels) per image, timed on a subset and scaled (it is linear in images).
Both give the same values (checked on the subset, pairs with foreground in both masks). The masks are
smooth blobs (several components, some touching the border), the predictions perturbed copies, about one in
ten of each empty.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy import ndimage

from _common import median_seconds, write_json
from segbench.metrics.masks import mask_metric_values
from segbench.plugins import load_plugins
from speed import metrics_against_sklearn

SIZE = 64
BOUNDARY = ("hd95", "assd", "nsd")


def mask_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, references) bool (n, SIZE, SIZE): each reference a smooth random field above a per-image
    level, its prediction a noisier copy of that field above another level; one in ten of each empty."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((2, n, SIZE, SIZE)), (0, 0, 4, 4))
    reference_field, prediction_field = field[0], 0.8 * field[0] + 0.2 * field[1]

    def above(values: np.ndarray, low: float, high: float) -> np.ndarray:
        flat = np.sort(values.reshape(n, -1), axis=1)
        level = flat[np.arange(n), (rng.uniform(low, high, n) * flat.shape[1]).astype(int)]
        return values > level[:, None, None]

    references, predictions = above(reference_field, 0.6, 0.95), above(prediction_field, 0.55, 0.97)
    references[rng.random(n) < 0.1] = False
    predictions[rng.random(n) < 0.1] = False
    return predictions, references


def library_per_image(predictions: np.ndarray, references: np.ndarray) -> np.ndarray:
    """MONAI's three metric functions, one call per metric per image; (n, 3), NaN where a mask is empty."""
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    values = np.full((len(references), 3), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on every empty mask
        for i, (p, r) in enumerate(zip(predictions, references)):
            y_pred, y = torch.from_numpy(p)[None, None], torch.from_numpy(r)[None, None]
            values[i] = [float(compute_hausdorff_distance(y_pred, y, percentile=95)),
                         float(compute_average_surface_distance(y_pred, y, symmetric=True)),
                         float(compute_surface_dice(y_pred, y, [1.0], use_subvoxels=True))]
    return values


def boundary_against_monai(registry, n: int, subset: int, chunk: int = 50) -> dict[str, float]:
    """Timed in chunks of `chunk` masks, the library on every few chunks right after segbench on the same
    ones, so that both see the same load on a shared machine."""
    predictions, references = mask_pairs(n)
    probabilities = predictions.astype(np.float32)
    specs = {name: registry.metric(name) for name in BOUNDARY}
    stride = max(1, n // subset)
    ours = {name: np.empty(n) for name in BOUNDARY}
    theirs, timed, segbench_seconds, library_seconds = [], [], 0.0, 0.0
    for k, lo in enumerate(range(0, n, chunk)):
        part = slice(lo, min(lo + chunk, n))
        start = time.perf_counter()
        for name, values in mask_metric_values(predictions[part], references[part], probabilities[part], specs).items():
            ours[name][part] = values
        segbench_seconds += time.perf_counter() - start
        if k % (stride // chunk or 1) == 0 and len(timed) < subset:
            start = time.perf_counter()
            theirs.append(library_per_image(predictions[part], references[part]))
            library_seconds += time.perf_counter() - start
            timed += range(part.start, part.stop)
    library = np.concatenate(theirs)
    both = predictions[timed].any((1, 2)) & references[timed].any((1, 2))
    difference = max(float(np.abs(ours[name][timed][both] - library[both, k]).max()) for k, name in enumerate(BOUNDARY))
    library_scaled = library_seconds * n / len(timed)
    return {"masks": n, "library_masks": len(timed), "segbench_seconds": segbench_seconds,
            "library_seconds_scaled": library_scaled, "speedup": library_scaled / segbench_seconds,
            "segbench_ms_per_mask": 1e3 * segbench_seconds / n, "library_ms_per_mask": 1e3 * library_seconds / len(timed),
            "max_abs_difference": difference,
            "pairs_with_an_empty_mask": int((~(predictions.any((1, 2)) & references.any((1, 2)))).sum())}


def count_metrics_cost_in_a_scoring_pass(registry, n: int) -> dict[str, float]:
    """The count metrics' vectorised pass alone, and with the boundary metrics registered beside them: the
    mask metrics do not touch the count path."""
    from segbench.metrics.confusion import confusion_counts
    from segbench.metrics.statistics import per_image

    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(n, 1, SIZE, SIZE, generator=generator)
    masks = (torch.rand(n, 1, SIZE, SIZE, generator=generator) > 0.7).to(torch.uint8)
    counts_only = {m: registry.metric(m) for m in registry.names("metrics") if registry.metric(m).kind == "counts"}
    everything = {m: registry.metric(m) for m in registry.names("metrics")}
    alone = median_seconds(lambda: per_image(confusion_counts(probs, masks), counts_only), repeats=5)
    beside = median_seconds(lambda: per_image(confusion_counts(probs, masks), everything), repeats=5)
    return {"masks": n, "count_metrics": len(counts_only), "seconds_alone": alone, "seconds_with_mask_metrics_registered": beside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=10_000)
    parser.add_argument("--library-subset", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads: tiny per-image convolutions only wait for busy cores with more")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = load_plugins()
    result = {"command": f"python benchmarks/metrics.py --threads {args.threads}", "torch_threads": args.threads}
    result["boundary"] = boundary_against_monai(registry, args.masks, args.library_subset)
    print("boundary", result["boundary"], flush=True)
    result["counts"] = metrics_against_sklearn(registry, args.masks)
    print("counts", result["counts"], flush=True)
    result["count_path"] = count_metrics_cost_in_a_scoring_pass(registry, args.masks)
    print("count path", result["count_path"], flush=True)
    write_json("metrics", result)


if __name__ == "__main__":
    main()
