"""A model's training, stage by stage: each stage its own view of the data, objective, budget and
checkpoints, one loop (`segbench.engine.training.train`) running them all; a stage whose data do not depend
on the label budget is stored once, named by a digest of what it was made from, and reused."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segbench.data.cache import cache_dir
from segbench.data.views import TrainingView
from segbench.engine.device import Runtime
from segbench.engine.distributed import on_main
from segbench.engine.training import Checkpointing, Objective, TrainingDiverged, TrainingStep, train
from segbench.io import atomic_write_text
from segbench.io.checkpoints import load_checkpoint, save_checkpoint
from segbench.plan.training import TrainingSettings
from segbench.results.record import StageRecord
from segbench.seeds import derive_seed, sample_seed
from segbench.specs import Stage

CHECKPOINT = "last.pt"
STORE_FORMAT = 1  # part of every stored stage's digest: a change of what is stored names new files


@dataclass(frozen=True)
class StageHooks:
    """What a stage reports as it trains: `start(stage, total_steps)` returns the step reporter of that
    stage (a progress bar, trackers); `epoch(stage, epoch, loss)` after each epoch; `should_stop()`
    between steps."""

    start: Callable[[Stage, int], Callable[[TrainingStep], None]]
    epoch: Callable[[Stage, int, float], None]
    should_stop: Callable[[], bool]


def stage_seed(run_seed: int, model: str, stages: Sequence[Stage], stage: Stage) -> int:
    """The seed of a stage's training draws: a model's first stage keeps the seed a one-stage model always
    had, so adding stages changes nothing for it."""
    if stage is stages[0]:
        return derive_seed("model", run_seed, model)
    return derive_seed("model", run_seed, model, stage.name)


def reusable(stages: Sequence[Stage], index: int) -> bool:
    """Whether stage `index` and every stage before it read no masks: its result is the same for every
    label budget."""
    return not any(stage.needs_labels for stage in stages[:index + 1])


def view_digest(view: TrainingView) -> str:
    """SHA-256 of a view's ids and images: what a stored stage's digest knows of its data."""
    digest = hashlib.sha256("\n".join(view.ids).encode())
    digest.update(view.images.tobytes())
    return digest.hexdigest()


class StageStore:
    """Stored stages under `root` (the cache's `stages/`): `<digest>/last.pt` and `origin.json`."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "stages"

    def path(self, digest: str) -> Path:
        return self.root / digest / CHECKPOINT

    def find(self, digest: str) -> Path | None:
        path = self.path(digest)
        return path if path.is_file() else None

    def keep(self, digest: str, checkpoint: Path, origin: Mapping[str, str]) -> None:
        """Store a finished stage's checkpoint (and where it came from) under its digest."""
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, target.with_suffix(".tmp"))
        target.with_suffix(".tmp").replace(target)
        atomic_write_text(target.parent / "origin.json", json.dumps(dict(origin), indent=1) + "\n")


@dataclass(frozen=True)
class StagedTraining:
    """Everything a model's stages need besides the network: its name, stages and per-stage settings, the
    views (`view(stage)`), the run seed and runtime, checkpoints (each stage's folder, resume, timing), and
    for reuse the store and the identity of what the model is trained from (dataset, kernels, ...)."""

    model: str
    stages: tuple[Stage, ...]
    settings: Callable[[str], TrainingSettings]
    view: Callable[[Stage], TrainingView]
    run_seed: int
    runtime: Runtime
    checkpoints: Callable[[Stage], Path]  # each stage's checkpoint folder
    resume: bool
    checkpoint_every: float | None
    hooks: StageHooks
    identity: Mapping[str, Any]
    hyperparameters: Mapping[str, Any]
    store: StageStore | None = None
    origin: str = ""  # the run directory, recorded with a stored stage


def train_stages(network: nn.Module, job: StagedTraining) -> list[StageRecord]:
    """Train `network` through its stages in order; each resumes from its checkpoint (a stage that had
    finished does nothing but restore its final state), or from the stored stage of the same digest."""
    results, previous = [], ""
    for index, stage in enumerate(job.stages):
        view = job.view(stage)
        digest = _digest(job, stage, view, previous)
        previous = digest
        folder = job.checkpoints(stage)
        reused = ""
        if job.store is not None and reusable(job.stages, index):
            reused = on_main(lambda: _restore_stored(job.store, digest, folder), job.runtime.dist)
        try:
            result = (_fit(network, job, stage, view, folder, resume=job.resume or bool(reused)) if stage.fit
                      else _train(network, job, stage, view, folder, resume=job.resume or bool(reused)))
        except TrainingDiverged as exc:
            exc.stage = stage.name
            raise
        if job.store is not None and reusable(job.stages, index) and not reused and job.runtime.dist.main:
            job.store.keep(digest, folder / CHECKPOINT, {"run": job.origin, "model": job.model, "stage": stage.name})
        results.append(result if not reused else _as_reused(result, reused))
    return results


def _as_reused(result: StageRecord, path: str) -> StageRecord:
    return replace(result, reused_from=path, seconds=0.0)


def _restore_stored(store: StageStore, digest: str, folder: Path) -> str:
    """Copy the stored stage of `digest` into `folder` when there is one; returns its path or ""."""
    found = store.find(digest)
    if found is None:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found, folder / CHECKPOINT)
    return str(found.parent)


def _digest(job: StagedTraining, stage: Stage, view: TrainingView, previous: str) -> str:
    """What a stage's result depends on: the model's identity, the stage's hyperparameters, training
    settings and view, the earlier stages (through `previous`), and the run seed."""
    names = stage.hyperparameters or tuple(job.hyperparameters)
    parts = {
        "format": STORE_FORMAT, **job.identity, "model": job.model, "stage": stage.name, "view": stage.view,
        "split": stage.split, "hyperparameters": {k: job.hyperparameters[k] for k in names},
        "training": job.settings(stage.name).to_json(), "data": view_digest(view), "previous": previous,
        "seed": job.run_seed,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _trained_parameters(network: nn.Module, objective: Objective) -> int:
    return sum(p.numel() for p in objective.trainable(network).parameters())


def _train(network: nn.Module, job: StagedTraining, stage: Stage, view: TrainingView, folder: Path,
           resume: bool) -> StageRecord:
    settings = job.settings(stage.name)
    objective = Objective(stage.loss, stage.trains)
    report = job.hooks.start(stage, settings.total_steps(len(view)))
    state = train(network, view, settings, seed=stage_seed(job.run_seed, job.model, job.stages, stage),
                  runtime=job.runtime, checkpointing=Checkpointing(folder, resume, job.checkpoint_every),
                  should_stop=job.hooks.should_stop, on_step=report, objective=objective,
                  on_epoch=lambda epoch, loss: job.hooks.epoch(stage, epoch, loss))
    return StageRecord(stage.name, stage.view, stage.split, len(view), view.labelled,
                       settings.total_steps(len(view)), state.epoch, settings.batch_size, list(state.losses),
                       round(state.seconds, 3), _trained_parameters(network, objective),
                       accumulation_parts=state.parts)


def _fit(network: nn.Module, job: StagedTraining, stage: Stage, view: TrainingView, folder: Path,
         resume: bool) -> StageRecord:
    """A stage without an optimiser: `fit(images, seeds)` once with the whole view (seeds per image, as
    prediction derives them), its result kept in the checkpoint like a trained stage's."""
    checkpoint = folder / CHECKPOINT
    network.to(job.runtime.device).eval()
    start = time.perf_counter()
    if resume and checkpoint.is_file():
        network.load_state_dict(load_checkpoint(checkpoint)["model"])
    else:
        images = torch.from_numpy(view.images).unsqueeze(1).float().div_(255).to(job.runtime.device)
        seeds = torch.tensor([sample_seed(job.run_seed, sample_id) for sample_id in view.ids], dtype=torch.int64)
        with torch.no_grad():
            getattr(network, stage.fit)(images, seeds.to(job.runtime.device))
        if job.runtime.dist.main:
            save_checkpoint(checkpoint, {"model": network.state_dict(), "ema": {}, "epoch": 0, "fit": True})
    return StageRecord(stage.name, stage.view, stage.split, len(view), view.labelled, 0, 0, None, [],
                       round(time.perf_counter() - start, 3), 0)


__all__ = ["StageHooks", "StageStore", "StagedTraining", "reusable", "train_stages"]
