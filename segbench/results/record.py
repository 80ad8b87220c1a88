"""A run directory's records, typed: config.json (the run plan and the facts of the run) and models.json.

config.json format 2 holds {"format": 2, "plan": <RunPlan>, <facts>}; runs made before format 2 held one
flat dict (the request's options, "hyperparameters" per model with the training settings mixed in) and
are read into the same types, so old run directories still report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from segbench.errors import SegbenchError
from segbench.selection import SelectionRecord
from segbench.plan.run_plan import DataPlan, EvaluationPlan, ModelPlan, RunPlan, from_fields
from segbench.training_settings import SettingError, TrainingSettings

CONFIG_FORMAT = 2
CONFIG_FILE = "config.json"
MODELS_FILE = "models.json"


@dataclass(frozen=True)
class RunRecord:
    """What config.json holds: the plan, and what was found when the run started."""

    plan: RunPlan
    command: str = ""
    device_name: str = ""  # e.g. "cuda (NVIDIA H200)"
    train_samples: int | None = None
    eval_samples_used: int | None = None
    empty_mask_policy: str = ""
    dataset_synthetic: str = ""  # the dataset's own note when its data are generated (DatasetSpec.synthetic)
    versions: dict[str, str] = field(default_factory=dict)
    kernels: dict[str, str] = field(default_factory=dict)  # `segbench.environment.kernels`; empty in older runs
    git_sha: str = ""
    trained_in: str = ""  # `segbench evaluate`: the run directory whose trained models were evaluated
    # `segbench evaluate --dataset/--data-root/--split`: the data the models were trained on (the plan's are
    # the evaluated ones); None where they were evaluated on their own run's test split
    trained_on: DataPlan | None = None

    def to_json(self) -> dict[str, Any]:
        facts = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("plan", "trained_on")}
        trained_on = {"trained_on": asdict(self.trained_on)} if self.trained_on is not None else {}
        return {"format": CONFIG_FORMAT, "plan": self.plan.to_json(), **facts, **trained_on}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        if data.get("format") == CONFIG_FORMAT:
            facts = {f.name: data[f.name] for f in fields(cls) if f.name not in ("plan", "trained_on") and f.name in data}
            trained_on = from_fields(DataPlan, data["trained_on"]) if data.get("trained_on") else None
            return cls(RunPlan.from_json(data["plan"]), **facts, trained_on=trained_on)
        return _legacy(data)

    def with_threshold(self, threshold: float) -> RunRecord:
        return replace(self, plan=self.plan.with_threshold(threshold))


@dataclass(frozen=True)
class StageRecord:
    """What one training stage did: its view and split, the images it saw and how many of them with masks,
    optimiser steps, epochs, batch size, per-epoch losses, seconds, the parameters it trained, and where
    its result was reused from ("" when trained in this run)."""

    name: str
    view: str
    split: str
    images: int
    masks: int
    steps: int
    epochs: int
    batch_size: int | None
    losses: list[float]
    seconds: float | None  # None in a report without timings
    parameters_trained: int
    reused_from: str = ""
    accumulation_parts: int = 1
    ema_decay_used: float | None = None  # the EMA decay the stage ran with, where its setting was capped
    selection: SelectionRecord | None = None  # where the stage kept its best weights instead of its last
    # FLOPs of one optimiser step (forward and backward of its first batch, as torch.utils.flop_counter counts
    # them, in a pass of its own) and steps x that; a stage fitted without an optimiser: None and 0; older runs: None
    step_flops: int | None = None
    training_flops: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageRecord:
        selection = data.get("selection")
        return cls(**{**data, "selection": None if selection is None else SelectionRecord(**selection)})


@dataclass(frozen=True)
class ModelRecord:
    """One model's entry in models.json: status ("done" or "failed", with `error`), size, training (its
    stages, and what the result cost: masks and images used, parameters trained, network evaluations and
    FLOPs per mask) and speed."""

    status: str = "failed"
    error: str | None = None
    parameters: int | None = None
    epochs: int | None = None
    steps: int | None = None
    losses: list[float] = field(default_factory=list)
    train_seconds: float | None = None
    ema_decay_used: float | None = None
    accumulation_parts: int | None = None
    compile_seconds: float | None = None
    predict_seconds: float | None = None
    masks_per_second: float | None = None
    eval_batch_size_used: int | None = None  # the prediction batch shape where it differs from the one asked (CPU lanes, GPU memory)
    stages: list[StageRecord] = field(default_factory=list)
    parameters_trained: int | None = None
    validation_masks: int | None = None  # validation images whose masks a stage read or checkpoint selection scored
    network_evaluations: int | None = None  # network forward passes per predicted mask
    flops_per_mask: float | None = None  # counted by torch.utils.flop_counter on the first prediction batch
    synthetic: dict[str, float | int | str] = field(default_factory=dict)  # images synthesised, FID/KID or why none
    fusion: str | None = None  # under --fusion paper: the rule its ensemble was fused by (its paper's)

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def labelled_images(self) -> int | None:
        """Training images whose masks the model read (None before stages were recorded)."""
        return max((s.masks for s in self.stages if s.split == "train"), default=0) if self.stages else None

    @property
    def unlabelled_images(self) -> int | None:
        """Training images the model saw without their masks (None before stages were recorded)."""
        return max((s.images for s in self.stages if s.split == "train" and not s.masks), default=0) if self.stages else None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != []}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRecord:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["stages"] = [StageRecord.from_json(stage) for stage in values.get("stages", [])]
        return cls(**values)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SegbenchError(f"{path} cannot be read: {exc}") from exc


def read_record(run_dir: Path) -> RunRecord:
    """config.json of `run_dir`; a folder without one is a clear error."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise SegbenchError(f"{run_dir} is not a segbench run directory (no {CONFIG_FILE})")
    try:
        return RunRecord.from_json(_read_json(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise SegbenchError(f"{path} is not a config.json segbench can read ({type(exc).__name__}: {exc})") from None


def read_models(run_dir: Path) -> dict[str, ModelRecord]:
    """models.json of `run_dir` by model name (empty before any model finished)."""
    path = Path(run_dir) / MODELS_FILE
    return {name: ModelRecord.from_json(entry) for name, entry in _read_json(path).items()} if path.exists() else {}


def _legacy(c: dict[str, Any]) -> RunRecord:
    """A config.json written before format 2, as a record."""
    training_keys = set(TrainingSettings.keys())

    def model_plan(name: str) -> ModelPlan:
        flat = dict(c.get("hyperparameters", {}).get(name, {}))
        variant = flat.pop("variant", None)
        try:
            training = TrainingSettings.layered({k: v for k, v in flat.items() if k in training_keys})
        except (SettingError, TypeError):
            training = TrainingSettings()
        return ModelPlan(name, c.get("plugins", {}).get(name, ""), "",
                         {k: v for k, v in flat.items() if k not in training_keys}, training, variant)

    device = str(c.get("device", ""))
    plan = RunPlan(
        seed=c.get("seed", 0), preset=c.get("preset", ""), preset_requested=c.get("preset_requested", c.get("preset", "")),
        device=device.split(" (", 1)[0], precision=c.get("precision"), precision_requested=c.get("precision_requested"),
        compile=bool(c.get("compile", False)), checkpoint_every=c.get("checkpoint_every", 300.0),
        data=DataPlan(c.get("dataset", ""), c.get("task", ""), c.get("data_root"), c.get("image_size", 64),
                      c.get("mask_threshold")),
        evaluation=EvaluationPlan(c.get("eval_samples"), c.get("eval_batch_size") or 32, c.get("ensemble", 1),
                                  c.get("threshold", 0.5)),
        models=tuple(model_plan(name) for name in c.get("models", [])),
    )
    return RunRecord(plan, command=c.get("command", ""), device_name=device, train_samples=c.get("train_samples"),
                     eval_samples_used=c.get("eval_samples_used"), empty_mask_policy=c.get("empty_mask_policy", ""),
                     versions=c.get("versions", {}), git_sha=c.get("git_sha", ""))
