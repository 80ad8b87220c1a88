"""Helpers for the segbench_unets tests: build registered models by name and preset."""

from __future__ import annotations

import pytest
import torch

from segbench.plugins import Registry


@pytest.fixture
def build(registry: Registry):
    """build(name, preset="tiny", image_size=64, **overrides) -> Segmenter, seeded."""

    def make(name: str, preset: str = "tiny", image_size: int = 64, **overrides):
        spec = registry.model(name)
        config = {**spec.hyperparameters(preset), "image_size": image_size, **overrides}
        if spec.prefix:
            config["variant"] = name.split(":", 1)[1]
        torch.manual_seed(0)
        return spec.factory(config)

    return make
