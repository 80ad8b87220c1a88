"""Slow: tiny score segmenters learn the phantom lung task through the engine."""

import pytest

from tests.test_learning_phantom import _dice_after_training


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ncsn-add", "sde-add"])
def test_tiny_score_model_learns_phantom_lungs(registry, name):
    assert _dice_after_training(registry, name, "tiny", {"epochs": "12", "lr": "3e-3"}) > 0.75
