"""The run plan: frozen, typed, built once (`segbench.plan.build`); config.json holds its JSON form."""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from segbench.errors import SegbenchError
from segbench.specs import FUSION_RULES, DatasetOptions
from segbench.training_settings import TrainingSettings


@dataclass(frozen=True)
class ModelPlan:
    """One model of the run: its spec's name and plugin, typed hyperparameters (what the factory gets, in
    declaration order), the prefix variant if any ("FPN:resnet18" of "smp:FPN:resnet18"), and what it trains
    with: `training` for a model in one stage; for a model in several, `stages` holds the settings of each
    stage that trains with an optimiser (a stage fitted once has none) and `training` is None."""

    name: str
    plugin: str
    family: str
    hyperparameters: dict[str, Any]
    training: TrainingSettings | None
    variant: str | None = None
    stages: dict[str, TrainingSettings] = field(default_factory=dict)

    def stage_training(self, stage: str) -> TrainingSettings:
        """The training settings of stage `stage` (`training` for a model in one stage)."""
        if self.training is not None:
            return self.training
        if stage not in self.stages:
            raise SegbenchError(f"model {self.name!r}: stage {stage!r} trains without an optimiser; "
                                f"stages with training settings: {', '.join(self.stages)}")
        return self.stages[stage]

    @property
    def trained(self) -> dict[str, TrainingSettings]:
        """The settings of every stage trained with an optimiser ("train" for a model in one stage)."""
        return {"train": self.training} if self.training is not None else dict(self.stages)

    def factory_input(self, image_size: int) -> dict[str, Any]:
        """What the spec's factory is called with."""
        extra = {"variant": self.variant} if self.variant is not None else {}
        return {**self.hyperparameters, "image_size": image_size, **extra}

    def to_json(self) -> dict[str, Any]:
        """config.json's form: `training` for a model in one stage, else `stages` (what ran, nothing else)."""
        trained = {"training": self.training.to_json()} if self.training is not None else {
            "stages": {k: v.to_json() for k, v in self.stages.items()}}
        return {**{k: v for k, v in asdict(self).items() if k not in ("training", "stages")}, **trained}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelPlan:
        known = set(TrainingSettings.keys())

        def settings(values: dict[str, Any]) -> TrainingSettings:
            return TrainingSettings(**{k: v for k, v in values.items() if k in known})

        stages = {stage: settings(values) for stage, values in data.get("stages", {}).items()}
        return from_fields(cls, data, hyperparameters=dict(data["hyperparameters"]),
                           training=None if stages else settings(data["training"]), stages=stages)


@dataclass(frozen=True)
class DataPlan:
    """What is segmented and from where: dataset, task, data root, the size images are resized to, the
    mask threshold for non-binary masks (None: only binary masks are accepted), and for k-fold
    cross-validation the folds file and the fold that is the test split (`segbench.data.folds`); the label
    budget: `labels` training images keep their masks (None: all), chosen by `labels_seed`; `downloaded_from`:
    the `kaggle:` handle `root` was downloaded from (None: `root` is the folder given)."""

    dataset: str
    task: str
    root: str | None
    image_size: int
    mask_threshold: int | None
    folds: str | None = None
    fold: int | None = None
    labels: int | None = None
    labels_seed: int = 0
    downloaded_from: str | None = None

    def options(self, seed: int) -> DatasetOptions:
        return DatasetOptions(task=self.task, root=Path(self.root).expanduser() if self.root else None,
                              size=self.image_size, seed=seed, mask_threshold=self.mask_threshold)


THRESHOLD = 0.5  # the protocol's: a pixel is foreground when its probability is >= THRESHOLD
SELECTION_RULES = ("last", "best")  # RunPlan.select: each stage's last weights, or its best on validation Dice
SELECTION_SCORINGS = 10  # --select best: validation scorings per stage where `select_every` is not given
EVALUATED_SPLITS = ("test", "all")  # EvaluationPlan.split: a dataset's test split, or every image of it
# EvaluationPlan.fusion: how an ensemble's K maps become one (`segbench.fusion`), as the report states it
FUSIONS = dict(zip(FUSION_RULES, ("mean (uncertainty: std)", "majority vote (uncertainty: entropy of the vote fraction)",
                                  "STAPLE, Warfield et al. 2004 (uncertainty: entropy of its posterior)"), strict=True))
PAPER_FUSION = "paper"  # `--fusion paper`: each model fused by its paper's rule (`ModelSpec.fusion`)
FUSION_CHOICES = (*FUSIONS, PAPER_FUSION)  # what --fusion accepts


def model_fusion(fusion: str, paper: str) -> str:
    """The rule a model's ensemble is fused by: `fusion`, or under "paper" the model's own `paper` rule."""
    return paper if fusion == PAPER_FUSION else fusion


@dataclass(frozen=True)
class RunDevice:
    """The device a run plans for, resolved (`segbench.engine.device.run_device`): its name ("cuda:0"), the
    precision it computes in and its prediction batch cap."""

    name: str
    precision: str
    eval_batch_cap: int

    @property
    def type(self) -> str:
        return self.name.partition(":")[0]


@dataclass(frozen=True)
class EvaluationPlan:
    """How every model is evaluated: the evaluated images (`split`: the test split, or "all" of a dataset's
    images) and of them all or a seeded subset of `samples`, the prediction batch cap (speed only), the
    ensemble size, the threshold and how an ensemble is fused (`FUSION_CHOICES`)."""

    samples: int | None
    batch_size: int
    ensemble: int
    threshold: float
    split: str = "test"
    fusion: str = "mean"


T = TypeVar("T")
NESTED = ("data", "evaluation", "models", "track")  # RunPlan's fields that are not plain JSON scalars


@dataclass(frozen=True)
class RunPlan:
    """Everything a run does. `device` and `precision` are resolved ("cuda", "bf16"); the requested
    values are kept beside them for the report. `processes` is how many processes share the run (the
    device is rank 0's)."""

    seed: int
    preset: str
    preset_requested: str
    device: str
    precision: str | None
    precision_requested: str | None
    compile: bool
    checkpoint_every: float
    data: DataPlan
    evaluation: EvaluationPlan
    models: tuple[ModelPlan, ...]
    track: tuple[str, ...] = ()  # experiment trackers; not result-shaping, so --resume may change them
    processes: int = 1  # torch.distributed: processes sharing the run (not result-shaping for evaluation)
    sync_batchnorm: bool = False  # several processes: BatchNorm statistics over the global batch
    # the weights a stage on the labelled images keeps: "last", or "best" validation Dice (at most the label
    # budget of validation masks, scored every `select_every` steps; None: `segbench.engine.selection`'s default)
    select: str = "last"
    select_every: int | None = None
    # `--augment`: the policy every stage on the labelled images (and a stage that asks) trains with, and the
    # flips the dataset allows it (`segbench.data.augmentation`)
    augment: str = "none"
    augment_flips: tuple[str, ...] = ()

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    def model(self, name: str) -> ModelPlan:
        for plan in self.models:
            if plan.name == name:
                return plan
        raise SegbenchError(f"the run has no model {name!r}; it has: {', '.join(self.model_names)}")

    def with_threshold(self, threshold: float) -> RunPlan:
        return replace(self, evaluation=replace(self.evaluation, threshold=threshold))

    def to_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name not in NESTED},
                "data": asdict(self.data), "evaluation": asdict(self.evaluation),
                "models": [m.to_json() for m in self.models], "track": list(self.track)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunPlan:
        return from_fields(cls, data, data=from_fields(DataPlan, data["data"]),
                           evaluation=from_fields(EvaluationPlan, data["evaluation"]),
                           models=tuple(ModelPlan.from_json(m) for m in data["models"]),
                           track=tuple(data.get("track", ())), augment_flips=tuple(data.get("augment_flips", ())))

    def shaping(self) -> dict[str, Any]:
        """The settings results depend on, in config.json's JSON form: what `--resume` must find unchanged
        (not the device index, checkpoint timing, compiling or the process count, which change speed only;
        the prediction batch size is the network's batch shape, which can change the last bits)."""
        return as_json({
            "task": self.data.task, "dataset": self.data.dataset, "image_size": self.data.image_size,
            "mask_threshold": self.data.mask_threshold, "fold": self.data.fold, "seed": self.seed, "preset": self.preset,
            "precision": self.precision, "eval_samples": self.evaluation.samples, "ensemble": self.evaluation.ensemble,
            "threshold": self.evaluation.threshold, "eval_batch_size": self.evaluation.batch_size,
            "models": self.model_names,
            **({"split": self.evaluation.split} if self.evaluation.split != "test" else {}),  # ids of older plans stay
            **({"fusion": self.evaluation.fusion} if self.evaluation.fusion != "mean" else {}),  # likewise
            **({"sync_batchnorm": True} if self.sync_batchnorm else {}),  # only when on: ids of older plans stay
            **({"select": self.select, "select_every": self.select_every} if self.select != "last" else {}),
            **({"augment": self.augment, "augment_flips": self.augment_flips} if self.augment != "none" else {}),
            **({"labels": self.data.labels, "labels_seed": self.data.labels_seed} if self.data.labels else {}),
            "hyperparameters": {m.name: m.hyperparameters for m in self.models},
            "training": {m.name: m.training.to_json() for m in self.models if m.training is not None},
            **({"stages": {m.name: {k: v.to_json() for k, v in m.stages.items()} for m in self.models if m.stages}}
               if any(m.stages for m in self.models) else {}),
        })


def from_fields(cls: type[T], stored: dict[str, Any], /, **typed: Any) -> T:
    """A dataclass from its JSON form: each field from `typed` (what needs converting), else as stored, else
    its default (a field added since the file was written), else None (keys the file has that the class
    lacks are ignored)."""
    def value(f: Field) -> Any:
        if f.name in typed:
            return typed[f.name]
        if f.name in stored:
            return stored[f.name]
        if f.default is not MISSING:
            return f.default
        return f.default_factory() if f.default_factory is not MISSING else None

    return cls(**{f.name: value(f) for f in fields(cls)})


def as_json(value: Any) -> Any:
    """`value` as config.json holds it once read back (tuples become lists): the one form settings compare in."""
    return json.loads(json.dumps(value, default=str))


def first_difference(old: Any, new: Any, path: str) -> str | None:
    """The first key path at which two JSON values differ, as "path: old -> new"; None when equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if old == new else f"{path}: {json.dumps(old)} -> {json.dumps(new)}"
