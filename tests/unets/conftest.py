"""Helpers for the segbench_unets tests: build registered models by name and preset."""

from __future__ import annotations

import pytest
import torch

from segbench.plan.build import plan_model
from segbench.plugins import Registry


@pytest.fixture
def build(registry: Registry):
    """build(name, preset="tiny", image_size=64, **overrides) -> Segmenter, seeded."""

    def make(name: str, preset: str = "tiny", image_size: int = 64, **overrides):
        spec = registry.model(name)
        values = {**plan_model(spec, name, preset, "lung", image_size).factory_input(image_size), **overrides}
        torch.manual_seed(0)
        return spec.factory(values)

    return make
