"""`faulty-cnn`: the toy CNN with one fault chosen by `--set faulty-cnn.fault=...` at training step `at_step`.

fault: none | nan_loss | inf_loss | nan_grad | explode | raise_train | raise_predict.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from segbench import ModelSpec, hookimpl
from tests.toy_plugin import TOY_PRESET, ToyCNN

FAULTS = ("none", "nan_loss", "inf_loss", "nan_grad", "explode", "raise_train", "raise_predict")


class _NanGradient(torch.autograd.Function):
    """Identity forward; NaN gradient backward (a finite loss whose gradient is not)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class FaultyCNN(ToyCNN):
    def __init__(self, width: int, noise: float, fault: str, at_step: int) -> None:
        super().__init__(width, noise)
        self.fault, self.at_step, self.steps = fault, at_step, 0

    def training_loss(self, images, masks):
        # Draws from the global torch, numpy and python generators, so a resume must restore all three.
        jitter = 0.01 * torch.randn(()).item() + 0.01 * np.random.rand() + 0.01 * random.random()
        self.steps += 1
        loss = super().training_loss(images + jitter, masks)
        if self.steps < self.at_step:
            return loss
        if self.fault == "nan_loss":
            return loss * float("nan")
        if self.fault == "inf_loss":
            return loss + float("inf")
        if self.fault == "nan_grad":
            return _NanGradient.apply(loss)
        if self.fault == "explode" and self.steps == self.at_step:
            return loss.detach() * 1e6 + loss
        if self.fault == "raise_train":
            raise ValueError("training_loss broken on purpose")
        return loss

    def predict(self, images, seeds):
        if self.fault == "raise_predict":
            raise ValueError("predict broken on purpose")
        return super().predict(images, seeds)


@hookimpl
def register_models(register) -> None:
    register(ModelSpec(
        name="faulty-cnn",
        factory=lambda c: FaultyCNN(c["width"], c["noise"], c["fault"], c["at_step"]),
        family="cnn",
        presets={p: {**TOY_PRESET, "fault": "none", "at_step": 1} for p in ("tiny", "small", "paper")},
        description="toy CNN that fails on purpose",
    ))
