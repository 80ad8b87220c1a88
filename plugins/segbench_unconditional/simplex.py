"""Multi-octave 2-D simplex noise, AnoDDPM's alternative to Gaussian noise (Wyatt et al. 2022, CVPRW).

Simplex noise (Perlin 2001; the formulation of Gustavson 2005): the plane is cut into triangles by a skewed
square lattice; a point's value is the sum over its triangle's three corners of max(0, 1/2 - |d|^2)^4 (g . d),
with d the offset from the corner and g one of 8 unit gradients that a permutation table picks per corner.
It is smooth and band-limited around its lattice frequency, so its octaves destroy structures of chosen sizes.

AnoDDPM sums octaves k = 0..K-1 at frequency nu 2^k with amplitude gamma^k (nu = 2^-6 per pixel at 256 px,
K = 6, gamma = 0.8) and uses the sum in place of eps ~ N(0, I) for training and for the partial noising.
Its released code does not rescale the sum (simplex.py, GaussianDiffusion.py); here each sample's field is
normalised to zero mean and unit variance, so that q(x_t | x_0) keeps the schedule's signal-to-noise ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

SKEW = (math.sqrt(3) - 1) / 2  # F_2: (x, y) -> lattice coordinates (x + s, y + s), s = (x + y) F_2
UNSKEW = (3 - math.sqrt(3)) / 6  # G_2: lattice (i, j) -> the plane (i - u, j - u), u = (i + j) G_2
PERIOD = 256  # the permutation table's length: the lattice repeats after 256 cells


def simplex_2d(x: Tensor, y: Tensor, perm: Tensor) -> Tensor:
    """Simplex noise at points (x, y) (float64, (N, P)), one permutation of 0..255 per row (int64, (N, 256)).

    Unscaled (the fractal below normalises); exactly 0 at the lattice's vertices.
    """
    skew = (x + y) * SKEW
    i, j = torch.floor(x + skew), torch.floor(y + skew)
    unskew = (i + j) * UNSKEW
    x0, y0 = x - (i - unskew), y - (j - unskew)  # offset from the triangle's corner (i, j)
    lower = (x0 > y0).to(x.dtype)  # below the diagonal: the middle corner is (i + 1, j), else (i, j + 1)
    value = torch.zeros_like(x)
    for k, (di, dj) in enumerate(((0.0, 0.0), (lower, 1 - lower), (1.0, 1.0))):
        dx, dy = x0 - di + k * UNSKEW, y0 - dj + k * UNSKEW
        ci, cj = (i + di).long() % PERIOD, (j + dj).long() % PERIOD
        hashed = torch.gather(perm, 1, (torch.gather(perm, 1, ci) + cj) % PERIOD)
        angle = (hashed % 8).to(x.dtype) * (math.pi / 4)
        falloff = (0.5 - dx * dx - dy * dy).clamp(min=0) ** 4
        value = value + falloff * (torch.cos(angle) * dx + torch.sin(angle) * dy)
    return value


def fractal_simplex(size: int, generators: Sequence[torch.Generator], octaves: int, persistence: float,
                    frequency: float) -> Tensor:
    """One field per generator: float64 (N, size, size) = normalise(sum_k persistence^k simplex_k), octave k at
    frequency 2^k `frequency` lattice cells per image width, normalised per field to zero mean and unit variance.

    Octave k of field n draws, from generators[n] and in this order, its permutation (torch.randperm(256)) and
    its lattice offset (torch.rand(2, float64) * 256), so the octaves are independent and every pixel alike.
    """
    draws = [[(torch.randperm(PERIOD, generator=g), torch.rand(2, generator=g, dtype=torch.float64) * PERIOD)
              for _ in range(octaves)] for g in generators]
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                                indexing="ij")
    total = torch.zeros(len(generators), size * size, dtype=torch.float64)
    for k in range(octaves):
        perm = torch.stack([field[k][0] for field in draws])
        offset = torch.stack([field[k][1] for field in draws])
        cells_per_pixel = frequency * 2**k / size
        x = cols.reshape(1, -1) * cells_per_pixel + offset[:, :1]
        y = rows.reshape(1, -1) * cells_per_pixel + offset[:, 1:]
        total = total + persistence**k * simplex_2d(x, y, perm)
    total = total - total.mean(1, keepdim=True)
    return (total / total.std(1, correction=0, keepdim=True)).view(-1, size, size)


def simplex_per_sample(shape: Sequence[int], generators: Sequence[torch.Generator],
                       device: torch.device | str = "cpu", *, octaves: int, persistence: float,
                       frequency: float) -> Tensor:
    """Simplex noise shaped like `randn_per_sample`'s: float32 (len(generators), C, S, S) for shape (C, S, S),
    sample n's channels from generators[n] alone (channel by channel), computed on the CPU."""
    channels, height, width = shape
    if height != width:
        raise ValueError(f"simplex noise needs square images, got {height}x{width}")
    noise = torch.stack([fractal_simplex(height, generators, octaves, persistence, frequency)
                         for _ in range(channels)], dim=1)
    return noise.float().to(device)
