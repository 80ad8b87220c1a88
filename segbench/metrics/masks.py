"""What a mask metric sees of one image (`MaskPair`), and the loop that scores every image with the mask metrics.

Boundary distances come from MONAI's `monai.metrics.utils` (imported on first use: it takes a second to
import), computed once per image and shared by every metric that asks for them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from typing import NamedTuple

import numpy as np

from segbench.specs import MetricSpec


class SurfaceDistances(NamedTuple):
    """Distances in pixels (float64) from each boundary element of the prediction to the reference's boundary
    (`to_reference`) and from each of the reference's to the prediction's (`to_prediction`); with each
    element's contour length in pixels where the boundary is a contour (`*_lengths`), else None."""

    to_reference: np.ndarray
    to_prediction: np.ndarray
    prediction_lengths: np.ndarray | None = None
    reference_lengths: np.ndarray | None = None


class MaskPair:
    """One evaluated image as a mask metric sees it.

    prediction, reference: bool (H, W), the thresholded prediction and the ground truth; probabilities:
    float32 (H, W) in [0, 1]. The distance properties need both masks non-empty (MONAI gives inf otherwise):
    check `prediction.any()` and `reference.any()` first.
    """

    def __init__(self, prediction: np.ndarray, reference: np.ndarray, probabilities: np.ndarray) -> None:
        self.prediction = prediction
        self.reference = reference
        self.probabilities = probabilities

    @property
    def diagonal(self) -> float:
        """The image diagonal in pixels, sqrt(H² + W²): more than any two pixels of the image are apart."""
        height, width = self.reference.shape
        return math.hypot(height, width)

    @cached_property
    def edge_distances(self) -> SurfaceDistances:
        """Between boundary pixels (foreground pixels with a 4-neighbour in the background or outside the
        image), Euclidean between pixel centres: MONAI's `get_mask_edges` and `get_surface_distance`, the
        boundaries MONAI's Hausdorff and average surface distances use."""
        from monai.metrics.utils import get_mask_edges, get_surface_distance

        prediction, reference = get_mask_edges(self.prediction, self.reference, crop=False)
        return SurfaceDistances(np.asarray(get_surface_distance(prediction, reference), np.float64),
                                np.asarray(get_surface_distance(reference, prediction), np.float64))

    @cached_property
    def contour_distances(self) -> SurfaceDistances:
        """Between contour elements on the grid of pixel corners, each with its length (MONAI's sub-voxel
        edges, the surface definition of Nikolov et al.'s surface-distance library), for NSD."""
        import torch
        from monai.metrics.utils import get_mask_edges, get_surface_distance

        # One pixel of background around the image, so contours along its border are closed.
        padded = [torch.from_numpy(np.pad(m, 1)) for m in (self.prediction, self.reference)]
        prediction, reference, prediction_lengths, reference_lengths = (  # numpy or torch, by MONAI version
            np.asarray(a) for a in get_mask_edges(*padded, crop=False, spacing=(1, 1)))
        return SurfaceDistances(np.asarray(get_surface_distance(prediction, reference), np.float64),
                                np.asarray(get_surface_distance(reference, prediction), np.float64),
                                np.asarray(prediction_lengths[prediction], np.float64),
                                np.asarray(reference_lengths[reference], np.float64))


def mask_metric_values(predictions: np.ndarray, references: np.ndarray, probabilities: np.ndarray,
                       metrics: Mapping[str, MetricSpec]) -> dict[str, np.ndarray]:
    """Each mask metric per image, float64 (N,): predictions and references bool (N, H, W), probabilities
    float32 (N, H, W)."""
    values = {name: np.empty(len(references), np.float64) for name in metrics}
    for i in range(len(references)):
        pair = MaskPair(predictions[i], references[i], probabilities[i])
        for name, spec in metrics.items():
            values[name][i] = spec.fn(pair)
    return values
