"""The training loop every model shares: AdamW, warm-up + cosine, clipping, EMA, resumable checkpoints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from segbench.io.checkpoints import load_checkpoint, save_checkpoint
from segbench.engine.device import Runtime
from segbench.engine.distributed import SINGLE, Distributed, any_rank, gather, total
from segbench.engine.random_state import rng_state, seed_everything, set_rng_state
from segbench.engine.selection import Selected, Selection
from segbench.engine.stability import DivergenceGuard, TrainingDiverged
from segbench.engine.stopping import Stopped
from segbench.engine.training_flops import step_flops
from segbench.errors import SegbenchError
from segbench.training_settings import TrainingSettings
from segbench.seeds import derive_seed
from segbench.selection import BEST

if TYPE_CHECKING:
    from segbench.engine.augment import Augmenter

__all__ = ["EMA", "Checkpointing", "Objective", "TrainState", "TrainingData", "TrainingDiverged", "TrainingStep", "train",
           "warmup_cosine"]


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
    selected: Selected | None = None  # with a selection: its scorings so far and the best weights
    step_flops: int | None = None  # where `train` counts them: counted again at every start, not checkpointed


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
    """Exponential moving average of a model's floating-point parameters and buffers (of the part named by
    `prefix`, e.g. "mlps.", where only that part trains; keys are the whole model's)."""

    def __init__(self, model: nn.Module, decay: float, prefix: str = "") -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()
                       if v.is_floating_point() and k.startswith(prefix)}

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


def global_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The batches of `epoch` as one process trains them: one seeded permutation per epoch, cut at batch_size."""
    return _batches(n, batch_size, torch.Generator().manual_seed(derive_seed("order", seed, epoch)))


def rank_slice(batch: torch.Tensor, dist: Distributed = SINGLE) -> torch.Tensor:
    """This rank's part of a global batch: near-equal contiguous slices, one per rank, no padding and no
    duplicates, so the ranks together train on exactly the batch one process would."""
    return torch.tensor_split(batch, dist.world)[dist.rank]


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, dist: Distributed = SINGLE) -> list[torch.Tensor]:
    """This rank's slice of every global batch of `epoch`: what its training steps see."""
    return [rank_slice(batch, dist) for batch in global_batches(n, batch_size, seed, epoch)]


@dataclass(frozen=True)
class Objective:
    """What a training stage optimises: the model's method `loss` (called with (images, masks), or with
    (images) when the stage's data have no masks), and the submodule `trains` whose parameters it trains
    ("": the whole model; the rest is frozen and in eval mode meanwhile)."""

    loss: str = "training_loss"
    trains: str = ""

    def trainable(self, model: nn.Module) -> nn.Module:
        return model.get_submodule(self.trains) if self.trains else model

    @property
    def prefix(self) -> str:
        """The trained part's keys in the model's state dict start with this."""
        return f"{self.trains}." if self.trains else ""


class _LossOf(nn.Module):
    """A Segmenter's loss method as a forward, so DistributedDataParallel averages its gradients."""

    def __init__(self, model: nn.Module, loss: str) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.loss)(*batch)


def _as_float(images: torch.Tensor, masks: torch.Tensor | None, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """A batch of the uint8 training arrays as the Segmenter gets it: images in [0, 1], masks in {0, 1}
    (images alone for data without masks)."""
    batch = images[index].unsqueeze(1).float().div_(255)
    return (batch,) if masks is None else (batch, masks[index].unsqueeze(1).float())


class _Trainer:
    """What one model's training holds: the network (wrapped for DDP with several processes), optimiser,
    schedule, EMA, divergence guard and the checkpointed state."""

    def __init__(self, model: nn.Module, data: TrainingData, settings: TrainingSettings, seed: int, runtime: Runtime,
                 checkpointing: Checkpointing | None, objective: Objective, selection: Selection | None,
                 augment: Augmenter | None = None) -> None:
        self.model, self.settings, self.runtime, self.dist = model, settings, runtime, runtime.dist
        self.augment = augment
        self.selection = selection
        self.n, self.seed = len(data), seed
        # the whole training set on the device as uint8 (a quarter of float32); batches are converted there
        self.images = torch.from_numpy(data.images).to(runtime.device)
        self.masks = None if data.masks is None else torch.from_numpy(data.masks).to(runtime.device)
        self.trainable, self.prefix = objective.trainable(model), objective.prefix
        model.to(runtime.device)
        self._train_mode()
        self.optimizer = torch.optim.AdamW(self.trainable.parameters(), lr=settings.lr,
                                           weight_decay=settings.weight_decay)
        self.total = settings.total_steps(self.n)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           warmup_cosine(self.total, settings.warmup_fraction))
        decay = settings.ema_decay_used(self.n)
        self.ema = EMA(model, decay, objective.prefix) if decay > 0 else None
        self.state = TrainState(losses=[], recent=[], selected=Selected() if selection is not None else None)
        rank_seed = ("rank", self.dist.rank) if self.dist.rank else ()  # one process: the seed a run always used
        seed_everything(derive_seed("train", seed, *rank_seed))
        self.ckpt = checkpointing.folder / "last.pt" if checkpointing else None
        self.every = checkpointing.every_seconds if checkpointing else None
        if checkpointing and checkpointing.resume and self.ckpt.exists():
            self._restore(load_checkpoint(self.ckpt))
        self.guard = DivergenceGuard(settings.explode_factor, self.state.recent)
        self.loss_of = (DistributedDataParallel(_LossOf(model, objective.loss), device_ids=[runtime.device.index]
                                                if runtime.device.type == "cuda" else None)
                        if self.dist.enabled else getattr(model, objective.loss))
        self.clock = self.last_save = time.perf_counter()

    def step(self, batch: torch.Tensor) -> float:
        """One optimiser step on the global batch `batch` (this rank trains its slice); returns the batch's
        loss, the same on every rank."""
        value = total(_batch_gradients(self, batch.to(self.runtime.device)), self.dist)
        epoch, step = self.state.epoch, self.state.step
        self.guard.check_loss(value, epoch, step)
        max_norm = self.settings.grad_clip if self.settings.grad_clip > 0 else math.inf
        # max_norm=inf measures the norm without changing the gradients (they are scaled by exactly 1).
        self.guard.check_gradient(torch.nn.utils.clip_grad_norm_(self.trainable.parameters(), max_norm).item(), epoch,
                                  step)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.guard.record(value)
        return value

    def inputs(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The loss's inputs for the training samples `index` in the current epoch: as `_as_float` gives them,
        augmented where the stage's batches are."""
        batch = _as_float(self.images, self.masks, index)
        return batch if self.augment is None else self.augment(batch, index, self.state.epoch)

    def count_step_flops(self, loss: str, batch: torch.Tensor) -> int | None:
        """FLOPs of one optimiser step on the global batch `batch` (every rank's slice together): `step_flops`
        of the objective's `loss` on it, in the micro-batches a step splits it into, or in more where the
        count's copy of the model runs out of GPU memory; None where a single image does."""
        parts = self.state.parts * self.dist.world
        while True:
            try:
                return step_flops(self.model, loss, (_as_float(self.images, self.masks, part) for part in
                                                     torch.tensor_split(batch, min(parts, len(batch)))),
                                  self.runtime.autocast)
            except torch.cuda.OutOfMemoryError:
                if parts >= len(batch):
                    return None
                parts *= 2
                if self.images.is_cuda:
                    torch.cuda.empty_cache()

    def _train_mode(self) -> None:
        """The trained part in training mode, the rest of the model in eval mode."""
        self.model.train(self.trainable is self.model)
        self.trainable.train()

    def select(self, done: int) -> None:
        """Score the weights training would keep if it ended after step `done` (the EMA's where there is one)
        and keep them where they beat every earlier score; the weights, modes and random state that training
        goes on with are left as they were."""
        before = rng_state()
        weights = {k: v.clone() for k, v in self.model.state_dict().items()} if self.ema is not None else None
        if self.ema is not None:
            self.ema.copy_to(self.model)
        self.state.selected.record(done, self.selection.score(self.model), self.model)
        if weights is not None:
            self.model.load_state_dict(weights)
        self._train_mode()
        set_rng_state(before)

    def keep_selected(self) -> None:
        """Load the best-scored weights into the model and write them as best.pt (rank 0)."""
        selected = self.state.selected
        self.model.load_state_dict(selected.weights)
        if self.ckpt and self.dist.main:
            save_checkpoint(self.ckpt.with_name(BEST), {"model": selected.weights, "ema": {}, "step": selected.step,
                                                        "score": selected.score})

    def save(self) -> None:
        """Write last.pt (rank 0) with every rank's random state: a collective with several processes."""
        now = time.perf_counter()
        self.state.seconds, self.clock = self.state.seconds + now - self.clock, now
        self.state.recent = list(self.guard.recent)
        states = gather(rng_state(), self.dist)
        if self.ckpt and self.dist.main:
            save_checkpoint(self.ckpt, _snapshot(self.state, self.model, self.optimizer, self.scheduler, self.ema,
                                                 states))
        self.last_save = time.perf_counter()

    def _restore(self, saved: dict[str, Any]) -> None:
        ranks = saved.get("world", 1)
        if ranks != self.dist.world:
            raise SegbenchError(f"checkpoint {self.ckpt} was written by {ranks} process(es); resume its training "
                                f"with {ranks} (torchrun --nproc_per_node), not {self.dist.world}")
        self.state = _restore(saved, self.model, self.optimizer, self.scheduler, self.ema, self.dist.rank,
                              self.prefix)
        if self.selection is not None:
            self.state.selected = Selected.from_checkpoint(saved["selection"])


def _accumulated_loss(trainer: _Trainer, batch: torch.Tensor) -> float:
    """Gradients of the global batch's mean loss left in .grad: this rank's slice in `trainer.state.parts`
    near-equal micro-batches, each part's mean loss weighted by its share of the batch (and by the number
    of processes, whose gradients DistributedDataParallel averages); returns this rank's weighted part of
    the batch's loss. A rank whose slice is empty (a batch smaller than the number of processes) still
    joins the average, through the batch's first sample weighted by 0."""
    world = trainer.dist.world
    index = rank_slice(batch, trainer.dist)
    parts = torch.tensor_split(index, min(trainer.state.parts, len(index))) if len(index) else [batch[:0]]
    loss_total = 0.0
    for p, part in enumerate(parts):
        weight = len(part) / len(batch)
        last = p == len(parts) - 1
        inputs = trainer.inputs(part if len(part) else batch[:1])
        with nullcontext() if last or world == 1 else trainer.loss_of.no_sync(), trainer.runtime.autocast():
            loss = trainer.loss_of(*inputs)
        (loss * (weight * world if world > 1 else weight)).backward()
        loss_total += loss.item() * weight
    return loss_total


def _batch_gradients(trainer: _Trainer, batch: torch.Tensor) -> float:
    """This rank's gradients of one global batch in .grad; returns its weighted loss. On GPU out-of-memory
    the slice is redone in twice as many micro-batches, from the random state it started with."""
    before = rng_state()
    while True:
        trainer.optimizer.zero_grad(set_to_none=True)
        try:
            return _accumulated_loss(trainer, batch)
        except torch.cuda.OutOfMemoryError:
            if trainer.state.parts >= len(rank_slice(batch, trainer.dist)):
                raise SegbenchError(
                    "a single training image runs out of GPU memory; use a smaller --image-size or preset, "
                    "the model's gradient_checkpointing where it has one, or --device cpu") from None
            trainer.state.parts *= 2
            set_rng_state(before)  # the retry draws what the first try drew
            if batch.is_cuda:
                torch.cuda.empty_cache()


class TrainingData(Protocol):
    """What `train` reads: uint8 images (N, H, W), and masks (N, H, W) in {0, 1} or None (a stage that
    trains on images alone); `segbench.data.prepare.SplitData` and `segbench.data.views.TrainingView` are such."""

    images: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int: ...


def train(
    model: nn.Module,
    data: TrainingData,
    settings: TrainingSettings,
    *,
    seed: int,
    runtime: Runtime,
    checkpointing: Checkpointing | None = None,
    on_step: Callable[[TrainingStep], None] | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    objective: Objective = Objective(),
    selection: Selection | None = None,
    count_flops: bool = False,
    augment: Augmenter | None = None,
) -> TrainState:
    """Train `model` in place with `objective` (by default its `training_loss`, every parameter) for
    `settings.total_steps`; returns epochs done, per-epoch mean losses and seconds. A step budget that ends
    inside an epoch cuts that epoch short. Only the objective's part trains: the rest of the model stays in
    eval mode and its parameters get no gradients.

    All randomness (data order, the model's own draws) derives from `seed`, so a rerun gives identical
    weights on the same machine. With `checkpointing`, `last.pt` is written after every epoch and, with
    `every_seconds`, also inside one once that many seconds passed since the last one. It holds weights,
    optimiser, schedule, EMA, every rank's RNG states and the position in the epoch's data order, so a
    resume continues exactly where it stopped: the result is bit-identical to an uninterrupted run. The
    EMA's decay is `settings.ema_decay_used`. Raises TrainingDiverged on a NaN/Inf loss or gradient, or a
    loss above `settings.explode_factor` times its running median; the step that diverged is never
    applied, so last.pt stays good. The network runs in `runtime`'s precision. A batch that runs out of
    GPU memory is redone in twice as many micro-batches, with the random state it started with, and
    gradients accumulated: the same effective batch size (losses that pool over the batch, and BatchNorm
    statistics, see one part at a time). With several processes (`runtime.dist`), every step trains the
    global batch one process would, each rank its slice, gradients averaged by DistributedDataParallel.
    `should_stop()` is asked after every step (agreed by all ranks): True writes a checkpoint and raises
    Stopped. With `selection`, the weights after every `selection.every`-th step and the last one are scored
    (`segbench.engine.training._Trainer.select`: no RNG draw, weight or mode of training changes) and the
    best-scored ones are the model's at the end, written as best.pt beside last.pt, which holds the
    selection so far (`TrainState.selected`), so a resumed run keeps the same ones. With `count_flops`,
    `TrainState.step_flops` holds the FLOPs of one step on the first batch (`_Trainer.count_step_flops`,
    counted before the first step in a pass that changes nothing training does). With `augment`, every
    batch is augmented (`segbench.engine.augment`: each sample's draws from (seed, epoch, sample id) alone, none
    from the global generators); without it, batches are the data as they are.
    """
    trained = {id(p) for p in objective.trainable(model).parameters()}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in trained]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        return _train(model, data, settings, seed, runtime, checkpointing, on_step, on_epoch, should_stop, objective,
                      selection, count_flops, augment)
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)


def _train(model: nn.Module, data: TrainingData, settings: TrainingSettings, seed: int, runtime: Runtime,
           checkpointing: Checkpointing | None, on_step: Callable[[TrainingStep], None] | None,
           on_epoch: Callable[[int, float], None] | None, should_stop: Callable[[], bool] | None,
           objective: Objective, selection: Selection | None, count_flops: bool,
           augment: Augmenter | None) -> TrainState:
    trainer = _Trainer(model, data, settings, seed, runtime, checkpointing, objective, selection, augment)
    state, per_epoch, dist = trainer.state, settings.batches_per_epoch(trainer.n), runtime.dist
    if count_flops:
        first = global_batches(trainer.n, settings.batch_size, seed, 0)[0].to(runtime.device)
        state.step_flops = trainer.count_step_flops(objective.loss, first)
        trainer.clock = time.perf_counter()  # the count is no training time
    for epoch in range(state.epoch, settings.epochs_run(trainer.n)):
        batches = global_batches(trainer.n, settings.batch_size, seed, epoch)
        last = min(len(batches), trainer.total - epoch * per_epoch)
        for step in range(state.step, last):
            lr = trainer.optimizer.param_groups[0]["lr"]
            value = trainer.step(batches[step])
            state.step, state.loss_sum = step + 1, state.loss_sum + value
            done = epoch * per_epoch + step + 1
            if selection is not None and selection.due(done, trainer.total):
                trainer.select(done)
            if on_step:
                on_step(TrainingStep(epoch, step, done, trainer.total, value, lr))
            due = (trainer.ckpt is not None and trainer.every is not None and state.step < last
                   and time.perf_counter() - trainer.last_save >= trainer.every)
            due, stop = any_rank([due and dist.main, bool(should_stop and should_stop())], dist)
            if (due or stop) and state.step < last:
                trainer.save()
            if stop and state.step < last:
                raise Stopped(f"at epoch {epoch + 1}, step {state.step} of {last}")
        state.epoch = epoch + 1
        state.losses.append(state.loss_sum / last)
        state.step, state.loss_sum = 0, 0.0
        trainer.save()
        if on_epoch:
            on_epoch(epoch, state.losses[-1])
        if should_stop is not None and any_rank([should_stop()], dist)[0] and state.epoch < settings.epochs_run(trainer.n):
            raise Stopped(f"after epoch {state.epoch}")
    if trainer.ema is not None:
        trainer.ema.copy_to(model)
    if selection is not None:
        trainer.keep_selected()
    model.eval()
    return state


def _snapshot(state: TrainState, model, optimizer, scheduler, ema: EMA | None, rng: list[dict]) -> dict[str, Any]:
    """What last.pt holds; `rng`: every rank's random state (one entry with one process)."""
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
        "rng": rng[0],
        **({"world": len(rng), "rng_ranks": rng} if len(rng) > 1 else {}),
        **({"selection": state.selected.to_checkpoint()} if state.selected is not None else {}),
    }


def _restore(saved: dict[str, Any], model, optimizer, scheduler, ema: EMA | None, rank: int = 0,
             prefix: str = "") -> TrainState:
    # Only the part the stage trains (keys under `prefix`) comes from its checkpoint: the rest is frozen
    # meanwhile and holds what earlier stages and the model's construction left, as in the run that wrote
    # it. So a stored stage is reused by a model whose other parts differ (ddpm-features' MLPs under other
    # feature blocks have other shapes) exactly as that model would have made it.
    model.load_state_dict({**model.state_dict(), **{k: v for k, v in saved["model"].items() if k.startswith(prefix)}})
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if ema is not None and saved["ema"]:
        ema.shadow = saved["ema"]
    set_rng_state(saved["rng_ranks"][rank] if "rng_ranks" in saved else saved["rng"])
    return TrainState(epoch=saved["epoch"], losses=list(saved["losses"]), seconds=saved["seconds"],
                      step=saved["step"], loss_sum=saved["loss_sum"], recent=list(saved["recent_losses"]),
                      parts=saved.get("parts", 1))
