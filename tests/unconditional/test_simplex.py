"""AnoDDPM's simplex noise against independent computations: a scalar simplex noise written from the
algorithm's description (each corner unskewed on its own), zero at the lattice's vertices, the fractal
rebuilt from per-octave calls with weights persistence^k at frequencies 2^k nu, its per-sample moments and
stationarity over seeds, and its draws from each sample's own generator."""

import math

import pytest
import torch

from segbench_unconditional.simplex import fractal_simplex, simplex_2d, simplex_per_sample

SQRT3 = math.sqrt(3)


def reference_simplex(x: float, y: float, perm: list[int]) -> float:
    """2-D simplex noise at one point: skew to the lattice, pick the triangle, and for each of its three
    corners, unskewed on its own, add max(0, 1/2 - r^2)^4 (g . d), g the unit vector at angle h pi/4."""
    skew, unskew = (SQRT3 - 1) / 2, (3 - SQRT3) / 6
    s = (x + y) * skew
    i, j = math.floor(x + s), math.floor(y + s)
    u = (i + j) * unskew
    middle = (i + 1, j) if x - (i - u) > y - (j - u) else (i, j + 1)
    total = 0.0
    for ci, cj in ((i, j), middle, (i + 1, j + 1)):
        corner_u = (ci + cj) * unskew
        dx, dy = x - (ci - corner_u), y - (cj - corner_u)
        weight = 0.5 - dx * dx - dy * dy
        if weight > 0:
            h = perm[(perm[ci % 256] + cj) % 256] % 8
            total += weight**4 * (math.cos(h * math.pi / 4) * dx + math.sin(h * math.pi / 4) * dy)
    return total


def test_simplex_2d_is_the_scalar_reference_at_every_point():
    generator = torch.Generator().manual_seed(0)
    perm = torch.stack([torch.randperm(256, generator=generator) for _ in range(2)])
    x = (torch.rand(2, 300, generator=generator, dtype=torch.float64) - 0.5) * 600  # both signs, past the period
    y = (torch.rand(2, 300, generator=generator, dtype=torch.float64) - 0.5) * 600
    values = simplex_2d(x, y, perm)
    expected = torch.tensor([[reference_simplex(float(a), float(b), perm[n].tolist()) for a, b in zip(x[n], y[n])]
                             for n in range(2)], dtype=torch.float64)
    torch.testing.assert_close(values, expected, atol=1e-14, rtol=0)
    assert float(values.abs().max()) > 1e-3  # not a field of zeros


def test_simplex_2d_is_zero_at_the_lattice_vertices():
    i, j = torch.meshgrid(torch.arange(-5, 6, dtype=torch.float64), torch.arange(-5, 6, dtype=torch.float64),
                          indexing="ij")
    u = (i + j) * (3 - SQRT3) / 6
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(1)).view(1, -1)
    values = simplex_2d((i - u).reshape(1, -1), (j - u).reshape(1, -1), perm)
    assert float(values.abs().max()) < 1e-12


@pytest.mark.parametrize("octaves, persistence, frequency", [(1, 0.8, 4.0), (3, 0.6, 3.0), (4, 0.8, 2.5)])
def test_the_fractal_is_the_normalised_weighted_sum_of_its_octaves(octaves, persistence, frequency):
    """Octave k: simplex_2d at pixel (row, col) -> (col, row) 2^k frequency / size + that octave's offset, with
    the permutation and offset drawn in the documented order; weight persistence^k; then mean 0, variance 1."""
    size = 24
    field = fractal_simplex(size, [torch.Generator().manual_seed(7)], octaves, persistence, frequency)[0]
    generator = torch.Generator().manual_seed(7)
    rows, cols = (c.reshape(1, -1) for c in torch.meshgrid(torch.arange(size, dtype=torch.float64),
                                                            torch.arange(size, dtype=torch.float64), indexing="ij"))
    total = torch.zeros(1, size * size, dtype=torch.float64)
    for k in range(octaves):
        perm = torch.randperm(256, generator=generator).view(1, -1)
        offset = torch.rand(2, generator=generator, dtype=torch.float64) * 256
        scale = frequency * 2**k / size
        total += persistence**k * simplex_2d(cols * scale + offset[0], rows * scale + offset[1], perm)
    expected = (total - total.mean()) / total.std(correction=0)
    torch.testing.assert_close(field, expected.view(size, size), atol=1e-12, rtol=0)


def test_every_sample_has_mean_zero_and_variance_one_and_every_pixel_is_alike():
    """Per sample exactly; over 200 seeds, every quadrant's pixels have mean ~0 and variance ~1 (the random
    offsets leave no pixel at a fixed place of the lattice), and the noise is smooth: the correlation of
    horizontal neighbours is high, where Gaussian noise's is 0."""
    noise = simplex_per_sample((1, 32, 32), [torch.Generator().manual_seed(s) for s in range(200)], octaves=4,
                               persistence=0.8, frequency=4.0).double()
    per_sample = noise.flatten(1)
    torch.testing.assert_close(per_sample.mean(1), torch.zeros(200, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(per_sample.var(1, correction=0), torch.ones(200, dtype=torch.float64), atol=1e-5, rtol=0)
    for quadrant in (noise[..., :16, :16], noise[..., :16, 16:], noise[..., 16:, :16], noise[..., 16:, 16:]):
        assert abs(float(quadrant.mean())) < 0.1
        assert 0.85 < float(quadrant.var(0).mean()) < 1.15
    neighbours = float((noise[..., 1:] * noise[..., :-1]).mean())
    assert 0.3 < neighbours < 0.95


def test_a_samples_noise_comes_from_its_own_generator():
    """The same seed gives the same noise alone or beside another; another seed other noise; channel by
    channel from the same generator, so the channels differ."""
    def draw(seeds, channels=1):
        return simplex_per_sample((channels, 16, 16), [torch.Generator().manual_seed(s) for s in seeds], octaves=3,
                                  persistence=0.8, frequency=2.0)

    pair = draw([3, 4])
    assert pair.shape == (2, 1, 16, 16) and pair.dtype == torch.float32
    assert torch.equal(draw([3, 4]), pair)
    assert torch.equal(draw([4])[0], pair[1])
    assert not torch.allclose(pair[0], pair[1])
    two = draw([3], channels=2)
    assert torch.equal(two[0, 0], pair[0, 0]) and not torch.allclose(two[0, 0], two[0, 1])
