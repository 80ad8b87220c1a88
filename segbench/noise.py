"""Per-sample random draws for `predict`: one CPU generator per sample, seeded with that sample's seed.

Models draw every random number of a sample's prediction from its own generator, so a sample's
result depends neither on the batch it is in nor on the device (the generators live on the CPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sample_generators(seeds: torch.Tensor) -> list[torch.Generator]:
    """One CPU generator per seed of an int64 (B,) tensor, seeded with it."""
    return [torch.Generator().manual_seed(int(seed)) for seed in seeds.tolist()]


def randn_per_sample(
    shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal noise (len(generators), *shape): row i from generators[i] alone."""
    noise = torch.stack([torch.randn(tuple(shape), generator=g) for g in generators])
    return noise.to(device)
