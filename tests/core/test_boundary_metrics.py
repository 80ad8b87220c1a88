"""HD95, ASSD and NSD against independent computations on random and edge-case mask pairs.

HD95 and ASSD: boundary pixels found by shifting the mask, distances from scipy's Euclidean distance
transform. NSD: the surface-distance definition of Nikolov et al. (DeepMind's library), written here from
that definition: contour elements on the grid of pixel corners with marching-squares lengths, brute-force
distances between them. segbench's values come from MONAI, which returns float32 distances, hence the
relative tolerance of 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from segbench.errors import SegbenchError
from segbench.metrics.boundary import BOUNDARY_METRICS, NSD_RULE, nsd_spec, nsd_variant
from segbench.metrics.masks import MaskPair
from segbench.plugins import load_plugins

SHAPE = (18, 23)  # not square: a swapped axis or a wrong diagonal shows
HALF_DIAGONAL = math.sqrt(2) / 2


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour in the background or outside the image."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def directed(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Distance of each boundary pixel of `source` to the boundary of `target`."""
    return ndimage.distance_transform_edt(~boundary_pixels(target))[boundary_pixels(source)]


def contour(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions (K, 2) on the corner grid, lengths (K,)) of the mask's contour elements: every 2x2
    window of the zero-padded mask that is neither empty nor full, with the length of the contour through
    it (one or three corners inside: half a diagonal; two adjacent: 1; two opposite: two half diagonals)."""
    padded = np.pad(mask, 1).astype(int)
    windows = np.stack([padded[:-1, :-1], padded[:-1, 1:], padded[1:, 1:], padded[1:, :-1]], -1)  # clockwise
    inside = windows.sum(-1)
    opposite = (windows[..., 0] == windows[..., 2]) & (windows[..., 1] == windows[..., 3])
    lengths = np.select([inside % 2 == 1, (inside == 2) & opposite, inside == 2],
                        [HALF_DIAGONAL, 2 * HALF_DIAGONAL, 1.0], 0.0)
    where = lengths > 0
    return np.argwhere(where).astype(float), lengths[where]


def expected(name: str, prediction: np.ndarray, reference: np.ndarray, tolerance: float = 1.0) -> float:
    predicted, present = prediction.any(), reference.any()
    if not (predicted and present):
        both_empty = predicted == present
        if name == "nsd":
            return 1.0 if both_empty else 0.0
        return 0.0 if both_empty else math.hypot(*SHAPE)
    if name == "hd95":
        return max(np.percentile(directed(prediction, reference), 95), np.percentile(directed(reference, prediction), 95))
    if name == "assd":
        d = np.concatenate([directed(prediction, reference), directed(reference, prediction)])
        return d.sum() / d.size
    (p, p_len), (r, r_len) = contour(prediction), contour(reference)
    distances = np.sqrt(((p[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    within = p_len[distances.min(1) <= tolerance].sum() + r_len[distances.min(0) <= tolerance].sum()
    return within / (p_len.sum() + r_len.sum())


def cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """Edge cases (both empty, one empty, one pixel, touching the border, several components), then random."""
    rng = np.random.default_rng(0)
    empty, full = np.zeros(SHAPE, bool), np.ones(SHAPE, bool)

    def pixels(*points: tuple[int, int]) -> np.ndarray:
        mask = empty.copy()
        for point in points:
            mask[point] = True
        return mask

    box = empty.copy()
    box[4:11, 5:15] = True
    edge_row, edge_col = empty.copy(), empty.copy()
    edge_row[0, :] = True
    edge_col[:, -3:] = True
    corner = empty.copy()
    corner[-4:, -5:] = True
    components = pixels((2, 2), (2, 3), (15, 20)) | box
    diagonal = pixels(*[(i, i) for i in range(10)])
    checker = (np.indices(SHAPE).sum(0) % 2 == 0)
    edge = [(empty, empty), (empty, box), (box, empty), (full, empty), (pixels((5, 5)), pixels((5, 5))),
            (pixels((5, 5)), pixels((12, 19))), (pixels((0, 0)), pixels((17, 22))), (pixels((0, 0)), box),
            (full, full), (full, box), (box, full), (edge_row, edge_col), (corner, full), (corner, edge_col),
            (components, box), (box, components), (diagonal, box), (checker, box), (checker, full),
            (pixels((3, 3), (3, 5)), pixels((3, 4))), (box, np.roll(box, 1, 1)), (box, np.roll(box, 3, 0))]
    random = []
    for density in (0.02, 0.1, 0.3, 0.6, 0.9):
        for _ in range(20):
            random.append((rng.random(SHAPE) < density, rng.random(SHAPE) < density * rng.uniform(0.3, 1.5)))
    for sigma in (1.0, 2.0, 3.0):
        for _ in range(30):  # smooth blobs, often several components, some touching the border
            blob = ndimage.gaussian_filter(rng.random((2, *SHAPE)), (0, sigma, sigma))
            random.append(tuple(b > np.quantile(b, rng.uniform(0.4, 0.9)) for b in blob))
    return edge + random


CASES = cases()


def test_there_are_enough_cases():
    assert len(CASES) >= 200


@pytest.mark.parametrize("spec", BOUNDARY_METRICS, ids=lambda s: s.name)
def test_metric_matches_the_independent_computation(spec):
    probabilities = np.zeros(SHAPE, np.float32)
    actual = [spec.fn(MaskPair(p, r, probabilities)) for p, r in CASES]
    wanted = [expected(spec.name, p, r) for p, r in CASES]
    np.testing.assert_allclose(actual, wanted, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("tolerance", ["0.5", "2", "3.5"])
def test_nsd_at_another_tolerance(tolerance):
    spec = load_plugins().metric(f"nsd:{tolerance}")
    assert spec.name == f"nsd:{tolerance}" and spec.kind == "masks"
    probabilities = np.zeros(SHAPE, np.float32)
    actual = [spec.fn(MaskPair(p, r, probabilities)) for p, r in CASES[:80]]
    np.testing.assert_allclose(actual, [expected("nsd", p, r, float(tolerance)) for p, r in CASES[:80]],
                               rtol=1e-6, atol=1e-6)


def test_the_empty_mask_rule_and_direction():
    spec = {s.name: s for s in BOUNDARY_METRICS}
    probabilities = np.zeros(SHAPE, np.float32)
    empty, box = CASES[1]
    assert spec["hd95"].fn(MaskPair(empty, empty, probabilities)) == 0.0
    assert spec["hd95"].fn(MaskPair(box, empty, probabilities)) == pytest.approx(math.hypot(18, 23))
    assert spec["nsd"].fn(MaskPair(empty, empty, probabilities)) == 1.0
    assert spec["nsd"].fn(MaskPair(empty, box, probabilities)) == 0.0
    assert not spec["hd95"].higher_is_better and not spec["assd"].higher_is_better and spec["nsd"].higher_is_better
    assert all(s.empty_rule for s in BOUNDARY_METRICS)


@pytest.mark.parametrize("text", ["abc", "0", "-1", "inf", ""])
def test_a_bad_nsd_tolerance_is_one_clear_error(text):
    with pytest.raises(SegbenchError, match=rf"^metric 'nsd:{text}': the tolerance must be a positive number of "
                                            r"pixels, e\.g\. nsd:2 or nsd:1\.5$"):
        nsd_variant(text)


def test_the_nsd_specs_describe_their_tolerance_and_only_the_default_serves_variants():
    default, variant = nsd_spec(), nsd_variant("2.5")
    assert (default.name, default.label, default.empty_rule, default.variants, default.variant_help) == \
        ("nsd", "NSD (1 px)", NSD_RULE, nsd_variant, "<tolerance in px>")
    assert default.description == "normalised surface Dice at 1 px (nsd:<tolerance> for another, e.g. nsd:2)"
    assert (variant.name, variant.label, variant.empty_rule, variant.variants, variant.variant_help) == \
        ("nsd:2.5", "NSD (2.5 px)", NSD_RULE, None, "")
    assert variant.description == "normalised surface Dice at 2.5 px"
    assert variant.fn.keywords == {"tolerance": 2.5}


def test_unknown_metric_variant_names_the_valid_ones():
    with pytest.raises(SegbenchError, match=r"unknown metric 'dice:2'; did you mean 'dice'\? valid: .*nsd:<tolerance in px>"):
        load_plugins().metric("dice:2")


def test_check_metric_covers_both_kinds():
    from segbench import MetricSpec
    from segbench.metrics.definitions import dice
    from segbench.testing import check_metric

    for spec in BOUNDARY_METRICS:
        check_metric(spec)
    check_metric(MetricSpec("dice", dice, ""))
    nan_when_empty = MetricSpec("bad", lambda pair: float("nan") if not pair.reference.any() else 1.0, "",
                                kind="masks", empty_rule="none")
    with pytest.raises(AssertionError, match="bad must return a finite float per image, also for empty masks"):
        check_metric(nan_when_empty)
    with pytest.raises(AssertionError, match="mask metric quiet must state its empty_rule"):
        check_metric(MetricSpec("quiet", lambda pair: 0.0, "", kind="masks"))
    with pytest.raises(AssertionError, match="ratio must follow the empty-mask policy"):
        check_metric(MetricSpec("ratio", lambda tp, fp, fn, tn: tp / (tp + fn), ""))
    with pytest.raises(SegbenchError, match="metric 'odd' has kind 'pixels'; valid: counts, masks"):
        MetricSpec("odd", dice, "", kind="pixels")
