"""A study's cells: one ordinary run for each dataset, model, augmentation policy, label budget, labelled
subset, seed (and fold), with a stable id.

A cell's id is its labels and seed (and fold) plus a short digest of every setting its results depend
on (the run plan's `shaping`, less the seed and fold already in the id), so the same study gives the
same ids on any machine, and a changed setting gives a new id instead of mixing into old results.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from itertools import product
from pathlib import Path
from typing import Any

from segbench.engine.device import run_device
from segbench.errors import SegbenchError
from segbench.plan.build import build_plan, evaluated_data
from segbench.plan.request import RunRequest, check_fusion
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
    study directory), the evaluation variants that reuse its trained model, its label budget (None: all) and,
    with a labels_seeds axis, the labels seed of its labelled subset (None: no axis, or all labels), and with an
    augment axis its augmentation policy (None: no axis)."""

    id: str
    dataset: str
    model: str
    seed: int
    fold: int | None
    request: RunRequest
    variants: tuple[Variant, ...]
    labels: int | None = None
    labels_seed: int | None = None
    augment: str | None = None

    @property
    def key(self) -> str:
        """The id without its digest: what identifies the cell to a reader."""
        return self.id.rsplit("-", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "dataset": self.dataset, "model": self.model, "seed": self.seed, "fold": self.fold,
                "request": asdict(self.request), "variants": [asdict(v) for v in self.variants], "labels": self.labels,
                "labels_seed": self.labels_seed, "augment": self.augment}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        variants = tuple(from_fields(Variant, v, models=None if v["models"] is None else tuple(v["models"]))
                         for v in data["variants"])
        return from_fields(cls, data, request=from_fields(RunRequest, data["request"]), variants=variants)


def folds_file(study_dir: Path, dataset: str) -> Path:
    return study_dir / FOLDS / f"{safe_name(dataset)}.json"


def _request(study: Study, data: DatasetEntry, model: ModelEntry, seed: int, fold: int | None,
             study_dir: Path, labels: int | None = None, labels_seed: int | None = None,
             augment: str | None = None) -> RunRequest:
    options = dict(study.options)
    if labels_seed is not None:
        options["labels_seed"] = labels_seed
    if augment is not None:
        options["augment"] = augment
    if data.image_size is not None:
        options["image_size"] = data.image_size
    if data.mask_threshold is not None:
        options["mask_threshold"] = data.mask_threshold
    return RunRequest(task=data.task, models=[model.model], dataset=data.dataset, data_root=data.root, seed=seed,
                      sets=[f"{model.model}.{k}={v}" for k, v in model.sets.items()], resume=True,
                      folds=None if fold is None else str(folds_file(study_dir, data.label)), fold=fold, labels=labels,
                      **options)


def cell_id(data: DatasetEntry, model: ModelEntry, seed: int, fold: int | None, plan: RunPlan,
            folds: tuple[int, int] | None, labels_axis: bool = False, labels_seed: int | None = None,
            augment: str | None = None) -> str:
    """`<dataset>-<model>[-augment<P>][-labels<N>][-subset<L>]-seed<S>[-fold<F>]-<digest>`; the digest covers the
    plan's result-shaping settings and the fold assignment (k and its seed); the policy is in the id when the
    study has an augment axis, the budget when it has a labels axis, and `subset<L>` (the labelled subset of
    labels seed L) when it has a labels_seeds axis."""
    shaping = {**{k: v for k, v in plan.shaping().items() if k not in ("seed", "fold")}, "folds": folds}
    digest = stable_digest(json.dumps(shaping, sort_keys=True), size=4).hex()
    budget = [f"labels{plan.data.labels or 'all'}"] if labels_axis else []
    budget += [f"subset{labels_seed}"] if labels_seed is not None else []
    policy = [f"augment{augment}"] if augment is not None else []
    parts = [safe_name(data.label), safe_name(model.label), *policy, *budget, f"seed{seed}",
             *([f"fold{fold}"] if fold is not None else [])]
    return "-".join([*parts, digest])


def subsets_note(study: Study) -> str | None:
    """What `study plan` says about a labels_seeds axis (None without one): the budgets it multiplies, and
    that all labels is one cell per seed."""
    if not study.labels_seeds:
        return None
    budgets = ", ".join(str(b) for b in study.labels if b is not None)
    note = (f"labelled subsets: labels seeds {', '.join(map(str, study.labels_seeds))} at {budgets} labels, a cell "
            "each per seed")
    if None in study.labels:
        note += "; at all labels one cell per seed (every training image is labelled, whatever the labels seed)"
    return note


def expand(study: Study, registry: Registry, study_dir: Path) -> list[Cell]:
    """Every cell of the study, in dataset, model, augmentation policy (of an augment axis), label budget, labels
    seed, seed, fold order; each request is planned here, so a model, dataset or setting the registry refuses is
    one clear line naming the study's key. An augment axis multiplies every cell, once per policy.
    A labels_seeds axis multiplies the cells of each budget but all (at all labels every training image is
    labelled, whatever the labels seed: one cell per seed there)."""
    cells = []
    folds = range(study.folds[0]) if study.folds else [None]
    subsets = [(labels, labels_seed) for labels in study.labels
               for labels_seed in (study.labels_seeds if labels is not None and study.labels_seeds else (None,))]
    for data in study.datasets:
        for model in study.models:
            variants = tuple(v for v in study.variants if v.models is None or model.label in v.models)
            for augment, (labels, labels_seed) in product(study.augments or (None,), subsets):
                for seed in study.seeds:
                    for fold in folds:
                        request = _request(study, data, model, seed, fold, study_dir, labels, labels_seed, augment)
                        try:  # planned without the folds file, which `study plan` does not write
                            plan = build_plan(replace(request, folds=None, fold=None), registry,
                                              run_device(request.device, request.precision))
                        except SegbenchError as exc:
                            raise SegbenchError(f"study file {study.path}: datasets.{data.label} x "
                                                f"models.{model.label}: {exc}") from None
                        for variant in variants:
                            try:
                                evaluated_data(plan.data, variant.split, registry, variant.dataset, variant.root)
                                check_fusion(variant.fusion or plan.evaluation.fusion,
                                             variant.ensemble or plan.evaluation.ensemble,
                                             [registry.model(name) for name in request.models])
                            except SegbenchError as exc:
                                raise SegbenchError(f"study file {study.path}: evaluations.{variant.name} x "
                                                    f"datasets.{data.label}: {exc}") from None
                        plan = replace(plan, data=replace(plan.data, folds=request.folds, fold=fold))
                        out = study_dir / CELLS / cell_id(data, model, seed, fold, plan, study.folds,
                                                          study.has_labels_axis, labels_seed, augment)
                        cells.append(Cell(out.name, data.label, model.label, seed, fold,
                                          replace(request, out=str(out)), variants, labels, labels_seed, augment))
    return cells
