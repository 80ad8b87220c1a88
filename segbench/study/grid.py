"""A study's cells: one ordinary run for each dataset, model, seed (and fold), with a stable id.

A cell's id is its labels and seed (and fold) plus a short digest of every setting its results depend
on (the run plan's `shaping`, less the seed and fold already in the id), so the same study gives the
same ids on any machine, and a changed setting gives a new id instead of mixing into old results.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from segbench.engine.device import run_device
from segbench.errors import SegbenchError
from segbench.plan.build import build_plan
from segbench.plan.request import RunRequest
from segbench.plan.run_plan import RunPlan, from_fields
from segbench.plugins import Registry
from segbench.results.store import safe_name
from segbench.seeds import stable_digest
from segbench.study.schema import DatasetEntry, ModelEntry, Study, Variant

CELLS = "cells"
VARIANTS = "variants"
FOLDS = "folds"


@dataclass(frozen=True)
class Cell:
    """One run of a study: its dataset and model labels, seed and fold, the request that runs it (into the
    study directory), the evaluation variants that reuse its trained model, and its label budget (None: all)."""

    id: str
    dataset: str
    model: str
    seed: int
    fold: int | None
    request: RunRequest
    variants: tuple[Variant, ...]
    labels: int | None = None

    @property
    def key(self) -> str:
        """The id without its digest: what identifies the cell to a reader."""
        return self.id.rsplit("-", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "dataset": self.dataset, "model": self.model, "seed": self.seed, "fold": self.fold,
                "request": asdict(self.request), "variants": [asdict(v) for v in self.variants], "labels": self.labels}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        variants = tuple(from_fields(Variant, v, models=None if v["models"] is None else tuple(v["models"]))
                         for v in data["variants"])
        return from_fields(cls, data, request=from_fields(RunRequest, data["request"]), variants=variants)


def folds_file(study_dir: Path, dataset: str) -> Path:
    return study_dir / FOLDS / f"{safe_name(dataset)}.json"


def _request(study: Study, data: DatasetEntry, model: ModelEntry, seed: int, fold: int | None,
             study_dir: Path, labels: int | None = None) -> RunRequest:
    options = dict(study.options)
    if data.image_size is not None:
        options["image_size"] = data.image_size
    if data.mask_threshold is not None:
        options["mask_threshold"] = data.mask_threshold
    return RunRequest(task=data.task, models=[model.model], dataset=data.dataset, data_root=data.root, seed=seed,
                      sets=[f"{model.model}.{k}={v}" for k, v in model.sets.items()], resume=True,
                      folds=None if fold is None else str(folds_file(study_dir, data.label)), fold=fold, labels=labels,
                      **options)


def cell_id(data: DatasetEntry, model: ModelEntry, seed: int, fold: int | None, plan: RunPlan,
            folds: tuple[int, int] | None, labels_axis: bool = False) -> str:
    """`<dataset>-<model>[-labels<N>]-seed<S>[-fold<F>]-<digest>`; the digest covers the plan's result-shaping
    settings and the fold assignment (k and its seed); the budget is in the id when the study has a labels axis."""
    shaping = {**{k: v for k, v in plan.shaping().items() if k not in ("seed", "fold")}, "folds": folds}
    digest = stable_digest(json.dumps(shaping, sort_keys=True), size=4).hex()
    budget = [f"labels{plan.data.labels or 'all'}"] if labels_axis else []
    parts = [safe_name(data.label), safe_name(model.label), *budget, f"seed{seed}",
             *([f"fold{fold}"] if fold is not None else [])]
    return "-".join([*parts, digest])


def expand(study: Study, registry: Registry, study_dir: Path) -> list[Cell]:
    """Every cell of the study, in dataset, model, label budget, seed, fold order; each request is planned
    here, so a model, dataset or setting the registry refuses is one clear line naming the study's key."""
    cells = []
    folds = range(study.folds[0]) if study.folds else [None]
    for data in study.datasets:
        for model in study.models:
            variants = tuple(v for v in study.variants if v.models is None or model.label in v.models)
            for labels in study.labels:
                for seed in study.seeds:
                    for fold in folds:
                        request = _request(study, data, model, seed, fold, study_dir, labels)
                        try:  # planned without the folds file, which `study plan` does not write
                            plan = build_plan(replace(request, folds=None, fold=None), registry,
                                              run_device(request.device, request.precision))
                        except SegbenchError as exc:
                            raise SegbenchError(f"study file {study.path}: datasets.{data.label} x "
                                                f"models.{model.label}: {exc}") from None
                        plan = replace(plan, data=replace(plan.data, folds=request.folds, fold=fold))
                        out = study_dir / CELLS / cell_id(data, model, seed, fold, plan, study.folds,
                                                          study.has_labels_axis)
                        cells.append(Cell(out.name, data.label, model.label, seed, fold,
                                          replace(request, out=str(out)), variants, labels))
    return cells
