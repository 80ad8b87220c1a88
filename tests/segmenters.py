"""Builders shared by the tests of the diffusion segmenter plugins: registered specs, planned
hyperparameters, perturbed tiny models and random images."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import torch

from segbench import ModelSpec
from segbench.plan.build import plan_model


def perturbed(factory: Callable[[dict[str, Any]], torch.nn.Module], values: Mapping[str, Any]) -> Any:
    """`factory(values)` built after torch.manual_seed(0), in eval mode, with every parameter moved by
    0.1 x N(0, 1), so the zero-initialised output layers do not make the samples independent of the image,
    the seed and the network."""
    torch.manual_seed(0)
    model = factory(dict(values)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def random_images(size: int, n: int, seed: int = 0) -> torch.Tensor:
    """n uniform random one-channel images of size x size, from their own seeded generator."""
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def registered(plugin: ModuleType) -> dict[str, ModelSpec]:
    """The ModelSpecs a plugin module registers, by name."""
    specs: list[ModelSpec] = []
    plugin.register_models(specs.append)
    return {spec.name: spec for spec in specs}


def planned(spec: ModelSpec, preset: str = "tiny", image_size: int = 32, task: str = "lung", **sets: Any) -> Any:
    """The hyperparameters (spec.schema) a run plans for `spec`, with `--set`-style overrides (as text)."""
    plan = plan_model(spec, spec.name, preset, task, image_size, sets={k: str(v) for k, v in sets.items()})
    return spec.schema.from_mapping(plan.factory_input(image_size))
