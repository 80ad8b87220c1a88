"""Training FLOPs: a step's count is the forward and backward FLOPs of one batch that torch.utils.flop_counter
counts (checked against the hand count of every matrix product, with and without a frozen part), and counting
them changes nothing training does (weights, losses, checkpoints, random state and the model's own attributes
are those of a run without the count)."""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime
from segbench.engine.training import Checkpointing, Objective, train
from segbench.io.checkpoints import load_checkpoint
from segbench.training_settings import TrainingSettings

CPU = Runtime(torch.device("cpu"), "fp32")
SIZE, HIDDEN, BATCH, IMAGES = 4, 5, 3, 7


def _data(n: int = IMAGES) -> SplitData:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, SIZE, SIZE, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, SIZE, SIZE, generator=g) > 0.5).to(torch.uint8).numpy()
    return SplitData([f"s{i}" for i in range(n)], images, masks)


class _MLP(nn.Module):
    """Pixels (B, S*S) -> `hidden` -> (B, S*S) logits; BCE against the mask."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(SIZE * SIZE, HIDDEN), nn.Linear(HIDDEN, SIZE * SIZE)

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        logits = self.second(torch.relu(self.first(images.flatten(1))))
        return F.binary_cross_entropy_with_logits(logits, masks.flatten(1))


def _matmul(m: int, k: int, n: int) -> int:
    """FLOPs of an (m, k) x (k, n) product: a multiply and an add per term."""
    return 2 * m * k * n


def test_a_step_counts_forward_and_backward_of_its_batch() -> None:
    """Forward: both layers' products. Backward: the second layer's weight gradient and input gradient, the
    first layer's weight gradient only (the images need no gradient); with the first layer frozen, only the
    second layer's weight gradient. The batch is the stage's batch size (3 of 7 images)."""
    pixels = SIZE * SIZE
    first, second = _matmul(BATCH, pixels, HIDDEN), _matmul(BATCH, HIDDEN, pixels)
    settings = TrainingSettings(epochs=None, steps=4, batch_size=BATCH, lr=0.01)
    torch.manual_seed(0)
    state = train(_MLP(), _data(), settings, seed=0, runtime=CPU, count_flops=True)
    assert state.step_flops == (first + second) + (2 * second + first)
    frozen = train(_MLP(), _data(), settings, seed=0, runtime=CPU, count_flops=True, objective=Objective(trains="second"))
    assert frozen.step_flops == (first + second) + second
    assert train(_MLP(), _data(), settings, seed=0, runtime=CPU).step_flops is None  # counted where asked


class _Drawing(nn.Module):
    """A convolution with BatchNorm whose loss draws from the torch, numpy and python generators (as a
    diffusion model's noising does) and counts its calls in an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 1, 1))
        self.calls = 0

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        noisy = images + 0.1 * torch.randn_like(images) + 0.01 * (np.random.rand() + random.random())
        return F.binary_cross_entropy_with_logits(self.net(noisy), masks)


def test_counting_changes_nothing_training_does(tmp_path) -> None:
    settings = TrainingSettings(epochs=2, batch_size=BATCH, lr=0.01, ema_decay=0.9)
    runs = {}
    for count in (False, True):
        torch.manual_seed(0)
        model = _Drawing()
        folder = tmp_path / str(count)
        state = train(model, _data(), settings, seed=5, runtime=CPU, checkpointing=Checkpointing(folder, every_seconds=0),
                      count_flops=count)
        saved = load_checkpoint(folder / "last.pt")
        del saved["seconds"]  # wall time
        runs[count] = (model, state, saved, torch.get_rng_state(), np.random.rand(), random.random())
    (model, state, checkpoint, rng, draw, python), (counted, counted_state, *rest) = runs[False], runs[True]
    assert counted_state.step_flops > 0
    assert counted_state.losses == state.losses and counted.calls == model.calls == settings.total_steps(IMAGES)
    for (name, value), other in zip(model.state_dict().items(), counted.state_dict().values()):
        assert torch.equal(value, other), name
    _assert_same(rest[0], checkpoint)
    assert torch.equal(rest[1], rng) and rest[2:] == [draw, python]


def _assert_same(a: object, b: object, where: str = "last.pt") -> None:
    """`a` and `b` hold the same values, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


class _Fits(_MLP):
    """_MLP that runs out of (simulated) GPU memory above 1 image."""

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        if len(images) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return super().training_loss(images, masks)


def test_a_count_out_of_gpu_memory_is_made_in_micro_batches() -> None:
    """The FLOPs of a batch counted image by image equal those of the whole batch (products are linear in it)."""
    settings = TrainingSettings(epochs=None, steps=1, batch_size=BATCH, lr=0.01)
    whole = train(_MLP(), _data(), settings, seed=0, runtime=CPU, count_flops=True).step_flops
    state = train(_Fits(), _data(), settings, seed=0, runtime=CPU, count_flops=True)
    assert state.step_flops == whole and state.parts == 4
