"""The training loop every model shares: AdamW, warm-up + cosine, clipping, EMA, checkpoints."""

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
from segbench.engine.seeding import derive_seed, seed_everything


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

    @classmethod
    def keys(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainConfig":
        return cls(**{k: v for k, v in params.items() if k in cls.keys()})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainState:
    """What a checkpoint restores."""

    epoch: int = 0
    losses: list[float] | None = None
    seconds: float = 0.0


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
) -> TrainState:
    """Train `model` in place with its `training_loss`; returns epochs done, per-epoch losses, seconds.

    All randomness (data order, the model's own draws) derives from `seed`, so a
    rerun gives identical weights on the same machine. Checkpoints are written
    after every epoch to `checkpoint_dir/last.pt`; with `resume`, training
    continues from there. Raises TrainingDiverged on a non-finite loss.
    """
    images, masks = (t.to(device) for t in data.tensors())
    steps_per_epoch = len(_batches(len(data), config.batch_size, torch.Generator().manual_seed(0)))
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps_per_epoch * config.epochs, config.warmup_fraction)
    )
    ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
    state = TrainState(losses=[])
    seed_everything(derive_seed("train", seed))
    ckpt = checkpoint_dir / "last.pt" if checkpoint_dir else None
    if resume and ckpt and ckpt.exists():
        state = _restore(load_checkpoint(ckpt), model, optimizer, scheduler, ema)

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for epoch in range(state.epoch, config.epochs):
        start = time.perf_counter()
        order = torch.Generator().manual_seed(derive_seed("order", seed, epoch))
        total = 0.0
        batches = _batches(len(data), config.batch_size, order)
        for step, idx in enumerate(batches):
            idx = idx.to(device)
            with autocast:
                loss = model.training_loss(images[idx], masks[idx])
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update(model)
            total += loss.item()
            if on_step:
                on_step(epoch, step, len(batches), loss.item())
        state.epoch = epoch + 1
        state.losses.append(total / len(batches))
        state.seconds += time.perf_counter() - start
        if ckpt:
            save_checkpoint(ckpt, _snapshot(state, model, optimizer, scheduler, ema))
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
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.shadow if ema is not None else {},
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _restore(saved: dict[str, Any], model, optimizer, scheduler, ema: EMA | None) -> TrainState:
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if ema is not None and saved["ema"]:
        ema.shadow = saved["ema"]
    torch.set_rng_state(saved["rng_cpu"])
    if saved["rng_cuda"]:
        torch.cuda.set_rng_state_all(saved["rng_cuda"])
    return TrainState(epoch=saved["epoch"], losses=list(saved["losses"]), seconds=saved["seconds"])
