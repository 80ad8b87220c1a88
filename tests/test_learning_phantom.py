"""Slow: models learn the phantom lung task through the engine (train + predict + metrics)."""

from __future__ import annotations

import pytest
import torch

from segbench import DatasetOptions, DatasetSpec
from segbench.data.prepare import load_split
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.engine.training import train
from segbench.metrics import confusion_counts
from segbench.plan.build import plan_model
from segbench.plan.run_plan import EvaluationPlan
from segbench.metrics.definitions import dice
from segbench_cxr.phantom import PhantomSource

SIZE = 32


def _lung_data(train_size: int, test_size: int):
    source = PhantomSource("lung", SIZE, train=train_size, val=4, test=test_size)
    spec = DatasetSpec("cxr-phantom-small", ("lung",), lambda o: source, "short-run phantom")
    options = DatasetOptions("lung", None, SIZE, 0)
    return load_split(spec, source, options, "train"), load_split(spec, source, options, "test")


def _dice_after_training(registry, name: str, preset: str, sets: dict[str, str]) -> float:
    """Per-image mean Dice on 32 phantom test lungs after training on 128, with `--set`-style overrides."""
    train_data, test_data = _lung_data(128, 32)
    spec = registry.model(name)
    plan = plan_model(spec, name, preset, "lung", SIZE, sets=sets)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(SIZE))
    cpu = Runtime(torch.device("cpu"), "fp32")
    train(model, train_data, plan.training, seed=0, runtime=cpu)
    preds = predict_split(model, test_data, EvaluationPlan(None, 32, 1, 0.5), run_seed=0, runtime=cpu)
    _, masks = test_data.tensors()
    return dice(*confusion_counts(preds.probabilities, masks).as_float()).mean().item()


@pytest.mark.slow
def test_unet_learns_phantom_lungs(registry):
    assert _dice_after_training(registry, "unet", "small", {"epochs": "6"}) > 0.85


@pytest.mark.slow
def test_tiny_diff_add_learns_phantom_lungs(registry):
    assert _dice_after_training(registry, "diff-add", "tiny", {"epochs": "12", "lr": "3e-3", "sampling_steps": "5"}) > 0.75
