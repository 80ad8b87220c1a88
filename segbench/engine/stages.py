"""A model's training, stage by stage: each stage its own view of the data, objective, budget and
checkpoints, one loop (`segbench.engine.training.train`) running them all; a stage whose data do not depend
on the label budget is stored once, named by a digest of what it was made from (`StageSource`), and reused."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segbench import environment
from segbench.data.augmentation import AugmentPolicy
from segbench.data.cache import cache_dir
from segbench.data.views import TrainingView
from segbench.engine.augment import Augmenter
from segbench.engine.device import Runtime, batch_shape
from segbench.engine.distributed import on_main
from segbench.engine.evaluation import map_split
from segbench.engine.selection import Selection, ValidationSelection, validation_dice
from segbench.engine.stopping import Stopped
from segbench.engine.training import Checkpointing, Objective, TrainingDiverged, TrainingStep, train
from segbench.errors import SegbenchError
from segbench.io import atomic_write, atomic_write_text
from segbench.io.checkpoints import load_checkpoint, save_checkpoint
from segbench.io.lock import folder_lock
from segbench.seeds import derive_seed
from segbench.selection import SelectionRecord
from segbench.specs import Stage
from segbench.training_settings import TrainingSettings

CHECKPOINT = "last.pt"
STORED = "stage.pt"  # a stored stage's checkpoint, in the store (a run directory's is CHECKPOINT)
STORE_FORMAT = 2  # part of every stored stage's digest: a change of what is stored or digested names new files
WAIT_SECONDS = 0.5  # between tries of a stored stage's lock that another process holds


@dataclass(frozen=True)
class StageHooks:
    """What a stage reports as it trains: `start(stage, total_steps)` returns the step reporter of that
    stage (a progress bar, trackers); `epoch(stage, epoch, loss)` after each epoch; `should_stop()`
    between steps (and while waiting); `wait(stage, holder)` once when another process ("pid N on HOST")
    is making the stored result of the stage, which this one then reuses."""

    start: Callable[[Stage, int], Callable[[TrainingStep], None]]
    epoch: Callable[[Stage, int, float], None]
    should_stop: Callable[[], bool]
    wait: Callable[[Stage, str], None]


@dataclass(frozen=True)
class StageRun:
    """What one stage did: the images of its view and how many of them with masks, optimiser steps (0 for a
    fit), epochs, batch size (None for a fit), per-epoch losses, seconds, parameters trained, micro-batches
    per batch, and the stored stage it was reused from ("" when it ran here)."""

    stage: Stage
    images: int
    masks: int
    steps: int
    epochs: int
    batch_size: int | None
    losses: list[float]
    seconds: float
    parameters_trained: int
    accumulation_parts: int = 1
    reused_from: str = ""
    selected: SelectionRecord | None = None  # what its checkpoint selection kept, where it selected
    step_flops: int | None = None  # of one optimiser step (`train`'s count_flops); None for a fit


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
    """SHA-256 of a view's ids, image shape and images: what a stored stage's digest knows of its data."""
    digest = hashlib.sha256("\n".join(view.ids).encode())
    digest.update(repr(view.images.shape).encode())
    digest.update(view.images.tobytes())
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> None:
    """`source`'s bytes to `target`, through a temporary file beside it that is renamed once complete."""
    with open(source, "rb") as read, atomic_write(target) as written:
        shutil.copyfileobj(read, written)


class StageStore:
    """Stored stages under `root` (the cache's `stages/`): `<digest>/stage.pt`, `origin.json` and `.lock`,
    which the process making or copying the stage holds."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "stages"

    def path(self, digest: str) -> Path:
        return self.root / digest / STORED

    @contextlib.contextmanager
    def claimed(self, digest: str, busy: Callable[[str], None]) -> Iterator[Path | None]:
        """Hold the lock of `digest` (`busy(holder)` between tries while another process holds it); yields
        the stored stage's checkpoint, or None: then the holder makes it and `keep`s it before letting go,
        so processes that want the same stage make it once."""
        (self.root / digest).mkdir(parents=True, exist_ok=True)
        with folder_lock(self.root / digest, busy):
            path = self.path(digest)
            yield path if path.is_file() else None

    def keep(self, digest: str, checkpoint: Path, origin: Mapping[str, str]) -> None:
        """Store a finished stage's checkpoint (and where it came from) under its digest; the caller holds
        its claim. The checkpoint comes last: its presence is what makes the stage stored."""
        atomic_write_text(self.root / digest / "origin.json", json.dumps(dict(origin), indent=1) + "\n")
        _copy(checkpoint, self.path(digest))


@dataclass(frozen=True)
class StagedTraining:
    """Everything a model's stages need besides the network: its name and plugin, stages and per-stage
    settings (a trained stage's), hyperparameters (what its factory got), the views (`view(stage)`), the run
    seed and runtime, the prediction batch size (a fit's outputs are computed in prediction's batches),
    checkpoints (each stage's folder, resume, timing), and the store of reused stages."""

    model: str
    plugin: str
    stages: tuple[Stage, ...]
    settings: Callable[[str], TrainingSettings]
    hyperparameters: Mapping[str, Any]
    view: Callable[[Stage], TrainingView]
    run_seed: int
    runtime: Runtime
    prediction_batch: int
    checkpoints: Callable[[Stage], Path]  # each stage's checkpoint folder
    resume: bool
    checkpoint_every: float | None
    hooks: StageHooks
    store: StageStore | None = None
    origin: str = ""  # the run directory, recorded with a stored stage
    selection: ValidationSelection | None = None  # `--select best`; None keeps every stage's last weights
    augment: AugmentPolicy | None = None  # `--augment` (its flips the dataset's); None: batches as they are


@dataclass(frozen=True)
class StageSource:
    """Everything a stage's result is made from; `digest` names it in the store. The one place that decides
    what a stored stage depends on: every field is digested (a field added here names new stored stages;
    `augment` only where the stage is augmented, so stages stored before it existed keep their names).

    Noise: a stage's training draws derive from (seed, model, stage name, first stage or not: `previous`);
    a fit's per-sample draws from (seed, sample id). Last bits: device type, precision, processes, kernels
    and versions; a fit's outputs also depend on the batch shape they are computed in."""

    model: str
    plugin: str
    stage: Mapping[str, Any]  # the Stage's fields (those it compares by)
    hyperparameters: Mapping[str, Any]  # those the stage's `hyperparameters` type holds (all without one)
    training: Mapping[str, Any] | None  # a trained stage's settings; None for a fit
    fit_batch: int | None  # the batch shape a fit's outputs are computed in; None for a trained stage
    data: str  # `view_digest`
    seed: int
    previous: str  # the digest of the stage before ("" for the first)
    device: str
    precision: str
    processes: int
    kernels: Mapping[str, str]
    versions: Mapping[str, str]
    format: int = STORE_FORMAT
    augment: Mapping[str, Any] | None = None  # the policy the stage's batches went through; None: not augmented

    def digest(self) -> str:
        made_from = asdict(self)
        if self.augment is None:
            del made_from["augment"]
        return hashlib.sha256(json.dumps(made_from, sort_keys=True, default=str).encode()).hexdigest()[:32]


def stage_source(job: StagedTraining, stage: Stage, view: TrainingView, previous: str) -> StageSource:
    """What `stage` of `job` is made from, given its view and the digest of the stage before."""
    runtime = job.runtime
    return StageSource(
        model=job.model, plugin=job.plugin,
        # Stage.augment enters as `augment`: the policy itself, which may change what the flag does not
        stage={f.name: getattr(stage, f.name) for f in fields(stage) if f.compare and f.name != "augment"},
        hyperparameters=_stage_hyperparameters(job, stage),
        training=None if stage.fit else job.settings(stage.name).to_json(),
        fit_batch=batch_shape(job.prediction_batch, runtime.device, runtime.precision) if stage.fit else None,
        data=view_digest(view), seed=job.run_seed, previous=previous, device=runtime.device.type,
        precision=runtime.precision, processes=runtime.dist.world, kernels=environment.kernels(runtime.device.type),
        versions=environment.versions(), augment=asdict(policy) if (policy := _policy(job, stage)) else None)


def _policy(job: StagedTraining, stage: Stage) -> AugmentPolicy | None:
    """The augmentation policy `stage`'s batches go through, if any."""
    return job.augment if stage.augmented else None


def _stage_hyperparameters(job: StagedTraining, stage: Stage) -> dict[str, Any]:
    if stage.hyperparameters is None:
        return dict(job.hyperparameters)
    names = [f.name for f in fields(stage.hyperparameters)]
    missing = [name for name in names if name not in job.hyperparameters]
    if missing:
        raise SegbenchError(f"model {job.model!r}: stage {stage.name!r} depends on hyperparameter(s) "
                            f"{', '.join(missing)}, which the model does not have")
    return {name: job.hyperparameters[name] for name in names}


def train_stages(network: nn.Module, job: StagedTraining) -> list[StageRun]:
    """Train `network` through its stages in order; each resumes from its checkpoint (a stage that had
    finished does nothing but restore its final state), or from the stored stage of the same digest. A
    stage another process is making is waited for and reused; only rank 0 touches the store (the other
    ranks wait in its broadcast, whose timeout bounds the wait)."""
    runs, previous = [], ""
    for index, stage in enumerate(job.stages):
        view = job.view(stage)
        digest = stage_source(job, stage, view, previous).digest()
        previous = digest
        folder = job.checkpoints(stage)
        stored = job.store is not None and reusable(job.stages, index)
        with contextlib.ExitStack() as claim:
            reused = on_main(lambda: _restore(claim, job, stage, digest, folder), job.runtime.dist) if stored else ""
            try:
                run = (_fit(network, job, stage, view, folder, resume=job.resume or bool(reused)) if stage.fit
                       else _train(network, job, stage, view, folder, resume=job.resume or bool(reused)))
            except TrainingDiverged as exc:
                exc.stage = stage.name
                raise
            if stored and not reused and job.runtime.dist.main:
                job.store.keep(digest, folder / CHECKPOINT, {"run": job.origin, "model": job.model, "stage": stage.name})
        runs.append(replace(run, reused_from=reused, seconds=0.0) if reused else run)
    return runs


def _restore(claim: contextlib.ExitStack, job: StagedTraining, stage: Stage, digest: str, folder: Path) -> str:
    """Claim `digest` in the store (held until `claim` closes) and copy its stored stage into `folder` when
    there is one; returns the stored stage's folder, or "" when this process is to make it."""
    found = claim.enter_context(job.store.claimed(digest, _waiting(job, stage)))
    if found is None:
        return ""
    _copy(found, folder / CHECKPOINT)
    return str(found.parent)


def _waiting(job: StagedTraining, stage: Stage) -> Callable[[str], None]:
    """What a process does while another holds the stage's claim: say so once, then wait, stopping on request."""
    told = False

    def wait(holder: str) -> None:
        nonlocal told
        if not told:
            job.hooks.wait(stage, holder)
            told = True
        if job.hooks.should_stop():
            raise Stopped(f"while {job.model} waited for its stage {stage.name}, which {holder} is making")
        time.sleep(WAIT_SECONDS)

    return wait


def _trained_parameters(network: nn.Module, objective: Objective) -> int:
    return sum(p.numel() for p in objective.trainable(network).parameters())


def _train(network: nn.Module, job: StagedTraining, stage: Stage, view: TrainingView, folder: Path,
           resume: bool) -> StageRun:
    settings = job.settings(stage.name)
    objective = Objective(stage.loss, stage.trains)
    total = settings.total_steps(len(view))
    report = job.hooks.start(stage, total)
    selection = _selection(job, total) if job.selection is not None and job.selection.applies(stage) else None
    state = train(network, view, settings, seed=stage_seed(job.run_seed, job.model, job.stages, stage),
                  runtime=job.runtime, checkpointing=Checkpointing(folder, resume, job.checkpoint_every),
                  should_stop=job.hooks.should_stop, on_step=report, objective=objective,
                  on_epoch=lambda epoch, loss: job.hooks.epoch(stage, epoch, loss), selection=selection,
                  count_flops=True, augment=Augmenter(policy, job.run_seed, view.ids) if (policy := _policy(job, stage))
                  else None)
    selected = state.selected
    return StageRun(stage, len(view), view.labelled, total, state.epoch, settings.batch_size, list(state.losses),
                    state.seconds, _trained_parameters(network, objective), state.parts,
                    selected=None if selected is None else SelectionRecord(
                        selection.every, len(selected.scores), len(job.selection.view), selected.step, selected.score),
                    step_flops=state.step_flops)


def _selection(job: StagedTraining, total_steps: int) -> Selection:
    """A stage's selection by validation Dice, scored as evaluation predicts (its batch shape and seeds)."""
    rule = job.selection
    return Selection(rule.steps_between(total_steps), lambda network: validation_dice(
        network, rule.view, rule.threshold, job.prediction_batch, run_seed=job.run_seed, runtime=job.runtime,
        model_name=job.model))


def _fit(network: nn.Module, job: StagedTraining, stage: Stage, view: TrainingView, folder: Path,
         resume: bool) -> StageRun:
    """A stage without an optimiser: `fit(outputs)` once, with the outputs of `fit_on` on the whole view
    computed as prediction computes `predict`'s (`map_split`), its result kept in the checkpoint like a
    trained stage's."""
    checkpoint = folder / CHECKPOINT
    network.to(job.runtime.device).eval()
    start = time.perf_counter()
    if resume and checkpoint.is_file():
        network.load_state_dict(load_checkpoint(checkpoint)["model"])
    else:
        images = torch.from_numpy(view.images).unsqueeze(1).float().div_(255)
        outputs = map_split(network, view.ids, images, stage.fit_on, job.prediction_batch, run_seed=job.run_seed,
                            runtime=job.runtime, model_name=job.model)
        with torch.no_grad():
            getattr(network, stage.fit)(outputs)
        if job.runtime.dist.main:
            save_checkpoint(checkpoint, {"model": network.state_dict(), "ema": {}, "epoch": 0, "fit": True})
    return StageRun(stage, len(view), view.labelled, 0, 0, None, [], time.perf_counter() - start, 0)


__all__ = ["StageHooks", "StageRun", "StageSource", "StageStore", "StagedTraining", "reusable",
           "stage_source", "train_stages"]
