"""The training loop every model shares: AdamW, warm-up + cosine, clipping, EMA, resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segbench.data import SplitData
from segbench.engine.checkpoints import load_checkpoint, save_checkpoint
from segbench.engine.device import autocast, resolve_precision
from segbench.engine.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from segbench.engine.stability import DivergenceGuard, TrainingDiverged
from segbench.errors import SegbenchError

__all__ = ["EMA", "TrainConfig", "TrainState", "TrainingDiverged", "ema_decay_for", "train", "warmup_cosine"]

EMA_INITIAL_SHARE = 0.01  # the most of the initial (random) weights an EMA may still hold when training ends


@dataclass(frozen=True)
class TrainConfig:
    """Training settings the engine owns; a model's preset may set any of them."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    explode_factor: float = 1000.0

    @classmethod
    def keys(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def problem(self) -> str | None:
        """The first setting outside its valid range, as "key must be ..., got value"; None when all are valid."""
        rules = {
            "epochs": (self.epochs >= 1, "an integer >= 1"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "lr": (math.isfinite(self.lr) and self.lr > 0, "a positive finite number"),
            "weight_decay": (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "a finite number >= 0"),
            "warmup_fraction": (0 <= self.warmup_fraction < 1, "in [0, 1)"),
            "grad_clip": (math.isfinite(self.grad_clip) and self.grad_clip >= 0, "a finite number >= 0 (0: no clipping)"),
            "ema_decay": (0 <= self.ema_decay < 1, "in [0, 1) (0: no EMA)"),
            "explode_factor": (self.explode_factor >= 0, "a number >= 0 (0: no explosion check)"),
        }
        return next((f"{key} must be {rule}, got {getattr(self, key)!r}" for key, (ok, rule) in rules.items() if not ok),
                    None)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        return cls(**{k: v for k, v in params.items() if k in cls.keys()})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total_steps(self, samples: int) -> int:
        """Optimizer steps over all epochs on `samples` training images."""
        return len(_batches(samples, self.batch_size, torch.Generator().manual_seed(0))) * self.epochs

    def ema_decay_used(self, samples: int) -> float:
        """`ema_decay`, capped to this run's length by `ema_decay_for`."""
        return ema_decay_for(self.ema_decay, self.total_steps(samples))


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


def ema_decay_for(decay: float, total_steps: int) -> float:
    """The EMA decay a run uses: `decay`, capped so that at most 1 % of the initial weights remain
    after `total_steps` updates (decay ** total_steps <= 0.01). A decay meant for long runs, such as
    guided-diffusion's 0.9999, would otherwise leave a short run's EMA near its random start (99 %
    of it after 100 steps). 0 (no EMA) stays 0."""
    if decay <= 0:
        return 0.0
    return min(decay, EMA_INITIAL_SHARE ** (1 / max(1, total_steps)))


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
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_step: Callable[[int, int, int, float], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    checkpoint_seconds: float | None = None,
    precision: str = "auto",
) -> TrainState:
    """Train `model` in place with its `training_loss`; returns epochs done, per-epoch losses, seconds.

    All randomness (data order, the model's own draws) derives from `seed`, so a
    rerun gives identical weights on the same machine. `checkpoint_dir/last.pt` is
    written after every epoch and, with `checkpoint_seconds`, also inside an epoch
    once that many seconds passed since the last one (0: after every step). It holds
    weights, optimiser, schedule, EMA, every RNG state and the position in the
    epoch's data order, so `resume` continues exactly where it stopped: the result
    is bit-identical to an uninterrupted run. The EMA's decay is `config.ema_decay_used`.
    Raises TrainingDiverged on a NaN/Inf loss or gradient, or a loss above
    `config.explode_factor` times its running median; the step that diverged is never
    applied, so last.pt stays good.
    `precision` ("auto", "fp32" or "bf16") is the network's autocast (see `resolve_precision`).
    A batch that runs out of GPU memory is redone in twice as many micro-batches, with the
    random state it started with, and gradients accumulated: the same effective batch size
    (losses that pool over the batch, and BatchNorm statistics, see one part at a time).
    """
    images, masks = (t.to(device) for t in data.tensors())
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(config.total_steps(len(data)), config.warmup_fraction)
    )
    decay = config.ema_decay_used(len(data))
    ema = EMA(model, decay) if decay > 0 else None
    state = TrainState(losses=[], recent=[])
    seed_everything(derive_seed("train", seed))
    ckpt = checkpoint_dir / "last.pt" if checkpoint_dir else None
    if resume and ckpt and ckpt.exists():
        state = _restore(load_checkpoint(ckpt), model, optimizer, scheduler, ema)
    guard = DivergenceGuard(config.explode_factor, state.recent)
    # max_norm=inf measures the norm without changing the gradients (they are scaled by exactly 1).
    max_norm = config.grad_clip if config.grad_clip > 0 else math.inf

    clock = last_save = time.perf_counter()

    def save() -> None:
        nonlocal clock, last_save
        now = time.perf_counter()
        state.seconds, clock = state.seconds + now - clock, now
        state.recent = list(guard.recent)
        if ckpt:
            save_checkpoint(ckpt, _snapshot(state, model, optimizer, scheduler, ema))
            last_save = time.perf_counter()

    network_precision = autocast(device, resolve_precision(precision, device))
    for epoch in range(state.epoch, config.epochs):
        order = torch.Generator().manual_seed(derive_seed("order", seed, epoch))
        batches = _batches(len(data), config.batch_size, order)
        for step in range(state.step, len(batches)):
            value = _batch_gradients(model, optimizer, images, masks, batches[step].to(device), state,
                                     network_precision)
            guard.check_loss(value, epoch, step)
            guard.check_gradient(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item(), epoch, step)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            guard.record(value)
            state.step, state.loss_sum = step + 1, state.loss_sum + value
            if on_step:
                on_step(epoch, step, len(batches), value)
            if (ckpt and checkpoint_seconds is not None and state.step < len(batches)
                    and time.perf_counter() - last_save >= checkpoint_seconds):
                save()
        state.epoch = epoch + 1
        state.losses.append(state.loss_sum / len(batches))
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
