"""Models Genesis's restoration pretext in 2D (Zhou et al., "Models Genesis: Generic Autodidactic Models for 3D
Medical Image Analysis", MICCAI 2019; MedIA 2021): a network learns to restore an image from a copy transformed by
local pixel shuffling, a non-linear intensity map and in- or out-painting, in the reference code's order and
rates (`generate_pair` in MrGiovanni/ModelsGenesis: local_rate 0.5, nonlinear_rate 0.9, paint_rate 0.9,
outpaint_rate 0.8).

Departures: 2D, not 3D; local shuffling permutes the pixels inside every cell of a grid of `shuffle_cell` pixels
(about the reference's mean block, up to a tenth of the side) instead of 10,000 randomly placed blocks; the Bezier
curve has 1,000 knots, not 100,000; the reference's flips of both copies are left out (a flip is the dataset's
to allow: `DatasetSpec.flips`).

Each sample's transforms are drawn on the CPU from a generator of its own (`draw_sample`), always the same
draws in the same order whatever the gates say, then applied to the batch on its device element by element
(`corrupt`), so a sample's corruption depends on its seed alone: not on its companions, position or batch size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SHUFFLE_RATE = 0.5
NONLINEAR_RATE = 0.9
PAINT_RATE = 0.9
INPAINT_RATE = 0.2  # of painted images; the rest are out-painted
BOXES = 5  # in-painting: up to 5 boxes; out-painting: a window and up to 4 more
BOX_CONTINUE = 0.95  # the chance of each further box (the reference's `while cnt > 0 and random() < 0.95`)
CURVE_KNOTS = 1000


@dataclass(frozen=True)
class Corruption:
    """A batch's drawn transforms, on its device: `source` (B, H W) the pixel each output pixel is taken from
    (local shuffling), `curve_x`, `curve_y` (B, K) the knots of each intensity map, `mapped` (B, 1, 1, 1)
    whether the map applies, `keep` (B, 1, H, W) False where painting puts `noise` (B, 1, H, W), uniform in
    [0, 1)."""

    source: torch.Tensor
    curve_x: torch.Tensor
    curve_y: torch.Tensor
    mapped: torch.Tensor
    keep: torch.Tensor
    noise: torch.Tensor


def shuffle_cell(size: int) -> int:
    """The side of local shuffling's cells for images of `size` pixels: 4 at 64 px."""
    return max(2, size // 16)


def _randint(u: float, low: int, high: int) -> int:
    """numpy's randint(low, high) from a uniform u in [0, 1); a range that would be empty gives `low`."""
    return low + int(u * max(high - low, 1))


def _shuffled_source(keys: torch.Tensor, cell: int) -> torch.Tensor:
    """(H W,) the source of each pixel when the pixels inside every `cell` x `cell` cell are permuted by the
    order of `keys` (H, W); pixels past the last whole cell stay."""
    h, w = keys.shape
    th, tw = h - h % cell, w - w % cell

    def cells(x: torch.Tensor) -> torch.Tensor:
        return x[:th, :tw].reshape(th // cell, cell, tw // cell, cell).transpose(1, 2).reshape(-1, cell * cell)

    source = torch.arange(h * w).view(h, w)
    shuffled = cells(source).gather(1, cells(keys).argsort(dim=1))
    source[:th, :tw] = shuffled.view(th // cell, tw // cell, cell, cell).transpose(1, 2).reshape(th, tw)
    return source.flatten()


def _curve(controls: torch.Tensor, decreasing: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The knots (x, y) of the reference's intensity map: the cubic Bezier curve from (0, 0) through the
    control points `controls` (x1, y1, x2, y2) to (1, 1), x sorted; y sorted too, or in the reference's
    unsorted order reversed (`decreasing`: its half of the draws that invert the intensities)."""
    t = torch.linspace(0, 1, CURVE_KNOTS, dtype=torch.float64)
    weights = torch.stack([3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3])  # the Bernstein terms of P1..P3
    x = weights[0] * controls[0] + weights[1] * controls[2] + weights[2]
    y = weights[0] * controls[1] + weights[1] * controls[3] + weights[2]
    return x.sort().values, (y.flip(0) if decreasing else y.sort().values)


def _boxes(shape: tuple[int, int], u: torch.Tensor, first: bool, out: bool) -> torch.Tensor:
    """(H, W) True inside the boxes the uniforms `u` (BOXES, 5: go on, height, width, top, left) place: the
    reference's in-painting boxes (a sixth to a third of each side), or out-painting's windows (3/7 to 4/7);
    the first box always where `first`, each further one while its draw stays below BOX_CONTINUE."""
    h, w = shape
    inside = torch.zeros(h, w, dtype=torch.bool)
    for index, (go, uh, uw, top, left) in enumerate(u.tolist()):
        if not (first and index == 0) and go >= BOX_CONTINUE:
            break
        if out:
            bh, bw = h - _randint(uh, 3 * h // 7, 4 * h // 7), w - _randint(uw, 3 * w // 7, 4 * w // 7)
        else:
            bh, bw = _randint(uh, h // 6, h // 3), _randint(uw, w // 6, w // 3)
        y0, x0 = _randint(top, 3, h - bh - 3), _randint(left, 3, w - bw - 3)
        inside[y0:y0 + bh, x0:x0 + bw] = True
    return inside


def draw_sample(seed: int, shape: tuple[int, int]) -> dict[str, torch.Tensor]:
    """One sample's transforms (CPU) for an image of `shape`, from a generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)
    gates = torch.rand(5, generator=g, dtype=torch.float64).tolist()  # shuffle, map, decreasing, paint, in-paint
    controls = torch.rand(4, generator=g, dtype=torch.float64)
    boxes = torch.rand(BOXES, 5, generator=g, dtype=torch.float64)
    keys = torch.rand(shape, generator=g)
    noise = torch.rand(1, *shape, generator=g)
    shuffle, mapped, decreasing, paint, inpaint = (gates[0] < SHUFFLE_RATE, gates[1] < NONLINEAR_RATE,
                                                    gates[2] < 0.5, gates[3] < PAINT_RATE, gates[4] < INPAINT_RATE)
    source = _shuffled_source(keys, shuffle_cell(min(shape))) if shuffle else torch.arange(math.prod(shape))
    curve_x, curve_y = _curve(controls, decreasing)
    keep = torch.ones(shape, dtype=torch.bool)
    if paint:
        keep = ~_boxes(shape, boxes, first=False, out=False) if inpaint else _boxes(shape, boxes, first=True, out=True)
    return {"source": source, "curve_x": curve_x.float(), "curve_y": curve_y.float(),
            "mapped": torch.tensor(mapped).view(1, 1, 1), "keep": keep.unsqueeze(0), "noise": noise}


def draw(seeds: Sequence[int], shape: tuple[int, int], device: torch.device) -> Corruption:
    """Every sample's transforms, each from its own seed, stacked on `device`."""
    samples = [draw_sample(seed, shape) for seed in seeds]
    return Corruption(**{key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]})


def _interpolate(x: torch.Tensor, knots_x: torch.Tensor, knots_y: torch.Tensor) -> torch.Tensor:
    """np.interp of each sample's values x (B, N) on its knots (B, K): piecewise linear, flat past the ends."""
    right = torch.searchsorted(knots_x, x.contiguous(), right=True).clamp(1, knots_x.shape[1] - 1)
    x0, x1 = knots_x.gather(1, right - 1), knots_x.gather(1, right)
    y0, y1 = knots_y.gather(1, right - 1), knots_y.gather(1, right)
    span = x1 - x0
    weight = torch.where(span > 0, (x - x0) / span.clamp_min(torch.finfo(span.dtype).tiny), 0.0).clamp(0, 1)
    return y0 + weight * (y1 - y0)


def corrupt(images: torch.Tensor, c: Corruption) -> torch.Tensor:
    """Images (B, 1, H, W) in [0, 1] transformed by `c`: local shuffling, then the intensity map, then painting
    (the reference's order); a transform a sample did not draw leaves it as it was."""
    b, _, h, w = images.shape
    x = images.reshape(b, h * w).gather(1, c.source)
    x = torch.where(c.mapped.view(b, 1), _interpolate(x, c.curve_x, c.curve_y), x).view(b, 1, h, w)
    return torch.where(c.keep, x, c.noise)
