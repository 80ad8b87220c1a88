"""The built-in boundary metrics (mask kind), in pixels of the evaluated image: HD95, ASSD, NSD at a tolerance.

MONAI computes the distances (`MaskPair`); these functions aggregate them and apply the empty-mask rule
(Metrics Reloaded): both masks empty is perfect (0 px, NSD 1), exactly one empty is the worst case (the
image diagonal, NSD 0).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from segbench.errors import SegbenchError
from segbench.metrics.masks import MaskPair
from segbench.specs import MetricSpec

DEFAULT_TOLERANCE = 1.0  # NSD tolerance in pixels of the evaluated image
DISTANCE_RULE = ("both masks empty: 0 px; exactly one empty: the image diagonal sqrt(H² + W²) "
                 "(e.g. 90.51 px at 64x64), more than any two pixels are apart")
NSD_RULE = "both masks empty: 1; exactly one empty: 0"


def _when_empty(pair: MaskPair, perfect: float, worst: float) -> float | None:
    """The value the empty-mask rule gives, or None when both masks have foreground."""
    predicted, present = bool(pair.prediction.any()), bool(pair.reference.any())
    if predicted and present:
        return None
    return perfect if predicted == present else worst


def hd95(pair: MaskPair) -> float:
    """95th-percentile Hausdorff distance (px): the larger of the two directed 95th percentiles of the
    distances between boundary pixels (MONAI's compute_hausdorff_distance, percentile=95)."""
    empty = _when_empty(pair, 0.0, pair.diagonal)
    if empty is not None:
        return empty
    d = pair.edge_distances
    return float(max(np.percentile(d.to_reference, 95), np.percentile(d.to_prediction, 95)))


def assd(pair: MaskPair) -> float:
    """Average symmetric surface distance (px): the mean, over the boundary pixels of both masks, of the
    distance to the other mask's boundary (MONAI's compute_average_surface_distance, symmetric)."""
    empty = _when_empty(pair, 0.0, pair.diagonal)
    if empty is not None:
        return empty
    d = pair.edge_distances
    return float(np.concatenate([d.to_reference, d.to_prediction]).mean())


def nsd(pair: MaskPair, tolerance: float = DEFAULT_TOLERANCE) -> float:
    """Normalised surface Dice at `tolerance` px: the share of both contours' length that lies within
    `tolerance` of the other contour (Nikolov et al. 2021; MONAI's compute_surface_dice with sub-voxels)."""
    empty = _when_empty(pair, 1.0, 0.0)
    if empty is not None:
        return empty
    c = pair.contour_distances
    within = c.prediction_lengths[c.to_reference <= tolerance].sum() + c.reference_lengths[c.to_prediction <= tolerance].sum()
    return float(within / (c.prediction_lengths.sum() + c.reference_lengths.sum()))


def nsd_spec(name: str = "nsd", tolerance: float = DEFAULT_TOLERANCE) -> MetricSpec:
    """The NSD metric at `tolerance` px; the default one serves "nsd:<tolerance>" names too."""
    default = name == "nsd"
    more = " (nsd:<tolerance> for another, e.g. nsd:2)" if default else ""
    return MetricSpec(name, partial(nsd, tolerance=tolerance), f"normalised surface Dice at {tolerance:g} px{more}",
                      kind="masks", empty_rule=NSD_RULE, variants=nsd_variant if default else None,
                      variant_help="<tolerance in px>" if default else "", label=f"NSD ({tolerance:g} px)")


def nsd_variant(text: str) -> MetricSpec:
    """The spec of "nsd:<text>": NSD at a tolerance of `text` pixels (a positive number)."""
    try:
        tolerance = float(text)
    except ValueError:
        tolerance = math.nan
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise SegbenchError(f"metric 'nsd:{text}': the tolerance must be a positive number of pixels, "
                            "e.g. nsd:2 or nsd:1.5")
    return nsd_spec(f"nsd:{text}", tolerance)


BOUNDARY_METRICS = (
    MetricSpec("hd95", hd95, "95th-percentile Hausdorff distance between the boundaries (px)", higher_is_better=False,
               kind="masks", empty_rule=DISTANCE_RULE, label="HD95 (px)"),
    MetricSpec("assd", assd, "average symmetric surface distance (px)", higher_is_better=False, kind="masks",
               empty_rule=DISTANCE_RULE, label="ASSD (px)"),
    nsd_spec(),
)
