"""The training loop every model shares: AdamW, warm-up + cosine, clipping, EMA, resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from segbench.data import SplitData
from segbench.engine.checkpoints import load_checkpoint, save_checkpoint
from segbench.engine.device import Runtime
from segbench.engine.random_state import rng_state, seed_everything, set_rng_state
from segbench.engine.stability import DivergenceGuard, TrainingDiverged
from segbench.errors import SegbenchError
from segbench.plan.training import TrainingSettings
from segbench.seeds import derive_seed

__all__ = ["EMA", "Checkpointing", "TrainState", "TrainingDiverged", "TrainingStep", "train", "warmup_cosine"]


@dataclass(frozen=True)
class Checkpointing:
    """Where `last.pt` goes, whether to continue from it, and how often to write it inside an epoch
    (`every_seconds`: None after epochs only, 0 after every step)."""

    folder: Path
    resume: bool = False
    every_seconds: float | None = None


class TrainingStep(NamedTuple):
    """One finished optimiser step: its epoch and step in the epoch (0-based), steps done and in all, loss, lr."""

    epoch: int
    step: int
    done: int
    total: int
    loss: float
    lr: float


@dataclass
class TrainState:
    """What a checkpoint restores: epochs done, and inside the next epoch the batches done
    (`step`), their loss sum, and the recent losses the divergence check compares against;
    `parts`: how many micro-batches each batch is split into (more than 1 after GPU out-of-memory)."""

    epoch: int = 0
    losses: list[float] | None = None
    seconds: float = 0.0
    step: int = 0
    loss_sum: float = 0.0
    recent: list[float] | None = None
    parts: int = 1


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over the first fraction of steps, then cosine decay to 0."""
    warmup = max(1, int(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v, 1 - self.decay)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict({**model.state_dict(), **self.shadow})


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A seeded permutation cut into batches; a trailing batch smaller than 2 is dropped (BatchNorm)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()
    return batches


def _accumulated_loss(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, idx: torch.Tensor,
                      parts: int, network_precision: torch.autocast) -> float:
    """Gradients of the batch's loss left in .grad, computed in `parts` near-equal micro-batches
    (each part's mean loss weighted by its share of the batch); returns the batch's loss."""
    total = 0.0
    for part in torch.tensor_split(idx, min(parts, len(idx))):
        with network_precision:
            loss = model.training_loss(images[part], masks[part])
        weight = len(part) / len(idx)
        (loss * weight).backward()
        total += loss.item() * weight
    return total


def _batch_gradients(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, masks: torch.Tensor,
                     idx: torch.Tensor, state: TrainState, network_precision: torch.autocast) -> float:
    """One batch's gradients in .grad, in `state.parts` micro-batches; returns the batch's loss.
    On GPU out-of-memory the batch is redone in twice as many, from the random state it started with."""
    before = rng_state()
    while True:
        optimizer.zero_grad(set_to_none=True)
        try:
            return _accumulated_loss(model, images, masks, idx, state.parts, network_precision)
        except torch.cuda.OutOfMemoryError:
            if state.parts >= len(idx):
                raise SegbenchError(
                    "a single training image runs out of GPU memory; use a smaller --image-size or preset, "
                    "the model's gradient_checkpointing where it has one, or --device cpu") from None
            state.parts *= 2
            set_rng_state(before)  # the retry draws what the first try drew
            if idx.is_cuda:
                torch.cuda.empty_cache()


def train(
    model: nn.Module,
    data: SplitData,
    settings: TrainingSettings,
    *,
    seed: int,
    runtime: Runtime,
    checkpointing: Checkpointing | None = None,
    on_step: Callable[[TrainingStep], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainState:
    """Train `model` in place with its `training_loss` for `settings.total_steps`; returns epochs done,
    per-epoch mean losses and seconds. A step budget that ends inside an epoch cuts that epoch short.

    All randomness (data order, the model's own draws) derives from `seed`, so a rerun gives identical
    weights on the same machine. With `checkpointing`, `last.pt` is written after every epoch and, with
    `every_seconds`, also inside one once that many seconds passed since the last one. It holds weights,
    optimiser, schedule, EMA, every RNG state and the position in the epoch's data order, so a resume
    continues exactly where it stopped: the result is bit-identical to an uninterrupted run. The EMA's
    decay is `settings.ema_decay_used`. Raises TrainingDiverged on a NaN/Inf loss or gradient, or a loss
    above `settings.explode_factor` times its running median; the step that diverged is never applied,
    so last.pt stays good. The network runs in `runtime`'s precision. A batch that runs out of GPU memory
    is redone in twice as many micro-batches, with the random state it started with, and gradients
    accumulated: the same effective batch size (losses that pool over the batch, and BatchNorm
    statistics, see one part at a time).
    """
    n = len(data)
    images, masks = (t.to(runtime.device) for t in data.tensors())
    model.to(runtime.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    total = settings.total_steps(n)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, settings.warmup_fraction))
    decay = settings.ema_decay_used(n)
    ema = EMA(model, decay) if decay > 0 else None
    state = TrainState(losses=[], recent=[])
    seed_everything(derive_seed("train", seed))
    ckpt = checkpointing.folder / "last.pt" if checkpointing else None
    if checkpointing and checkpointing.resume and ckpt.exists():
        state = _restore(load_checkpoint(ckpt), model, optimizer, scheduler, ema)
    guard = DivergenceGuard(settings.explode_factor, state.recent)
    # max_norm=inf measures the norm without changing the gradients (they are scaled by exactly 1).
    max_norm = settings.grad_clip if settings.grad_clip > 0 else math.inf
    every = checkpointing.every_seconds if checkpointing else None

    clock = last_save = time.perf_counter()

    def save() -> None:
        nonlocal clock, last_save
        now = time.perf_counter()
        state.seconds, clock = state.seconds + now - clock, now
        state.recent = list(guard.recent)
        if ckpt:
            save_checkpoint(ckpt, _snapshot(state, model, optimizer, scheduler, ema))
            last_save = time.perf_counter()

    network_precision = runtime.autocast()
    per_epoch = settings.batches_per_epoch(n)
    for epoch in range(state.epoch, settings.epochs_run(n)):
        order = torch.Generator().manual_seed(derive_seed("order", seed, epoch))
        batches = _batches(n, settings.batch_size, order)
        last = min(len(batches), total - epoch * per_epoch)
        for step in range(state.step, last):
            value = _batch_gradients(model, optimizer, images, masks, batches[step].to(runtime.device), state,
                                     network_precision)
            guard.check_loss(value, epoch, step)
            guard.check_gradient(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item(), epoch, step)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            guard.record(value)
            state.step, state.loss_sum = step + 1, state.loss_sum + value
            if on_step:
                on_step(TrainingStep(epoch, step, epoch * per_epoch + step + 1, total, value, lr))
            if ckpt and every is not None and state.step < last and time.perf_counter() - last_save >= every:
                save()
        state.epoch = epoch + 1
        state.losses.append(state.loss_sum / last)
        state.step, state.loss_sum = 0, 0.0
        save()
        if on_epoch:
            on_epoch(epoch, state.losses[-1])
    if ema is not None:
        ema.copy_to(model)
    model.eval()
    return state


def _snapshot(state: TrainState, model, optimizer, scheduler, ema: EMA | None) -> dict[str, Any]:
    return {
        "epoch": state.epoch,
        "losses": list(state.losses or []),
        "seconds": state.seconds,
        "step": state.step,
        "loss_sum": state.loss_sum,
        "recent_losses": list(state.recent or []),
        "parts": state.parts,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.shadow if ema is not None else {},
        "rng": rng_state(),
    }


def _restore(saved: dict[str, Any], model, optimizer, scheduler, ema: EMA | None) -> TrainState:
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if ema is not None and saved["ema"]:
        ema.shadow = saved["ema"]
    set_rng_state(saved["rng"])
    return TrainState(epoch=saved["epoch"], losses=list(saved["losses"]), seconds=saved["seconds"],
                      step=saved["step"], loss_sum=saved["loss_sum"], recent=list(saved["recent_losses"]),
                      parts=saved.get("parts", 1))
