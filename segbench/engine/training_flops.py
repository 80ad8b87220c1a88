"""The FLOPs of one training step, counted in a pass of its own that leaves the training it measures untouched."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segbench.engine.random_state import rng_state, set_rng_state


def step_flops(model: nn.Module, loss: str, parts: Iterable[tuple[torch.Tensor, ...]],
               precision: Callable[[], AbstractContextManager]) -> int:
    """FLOPs of forward and backward of `model`'s method `loss` on each batch of `parts` (the micro-batches of
    one step, each the method's arguments), as torch.utils.flop_counter counts them (matrix products,
    convolutions, attention; not the optimiser's elementwise update), in `precision()`.

    Run on a copy of `model` (its device, frozen parameters and train/eval modes; compiled modules run eagerly)
    with every global generator's state put back afterwards: the model's parameters, gradients, buffers
    (BatchNorm statistics) and attributes, and every random draw after the count, are what they would have
    been without it."""
    twin = copy.deepcopy(model)
    before = rng_state()
    try:
        with FlopCounterMode(display=False) as counter:
            for batch in parts:
                with precision():
                    value = getattr(twin, loss)(*batch)
                value.backward()
    finally:
        set_rng_state(before)
    return counter.get_total_flops()
