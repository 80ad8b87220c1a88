"""The study directory: study.json (the grid as last run), folds/ (written once), cells/ and variants/
(ordinary run directories), and what state each cell is in."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from segbench.engine.device import run_device
from segbench.errors import SegbenchError
from segbench.io import atomic_write_text
from segbench.plan.build import build_plan
from segbench.plan.run_plan import first_difference
from segbench.plugins import Registry
from segbench.results import read_models, read_record
from segbench.study.grid import CELLS, VARIANTS, Cell
from segbench.study.schema import Study, Variant

STUDY_FILE = "study.json"


def is_study(path: Path) -> bool:
    return (Path(path) / STUDY_FILE).is_file()


def variant_dir(study_dir: Path, cell: Cell, variant: Variant) -> Path:
    return Path(study_dir) / VARIANTS / cell.id / variant.name


def finished(run_dir: Path, models: list[str]) -> bool:
    """Whether a run directory holds every model's results and its report."""
    if not (run_dir / "report.md").is_file():
        return False
    status = read_models(run_dir)
    return all(m in status and status[m].done for m in models)


def cell_state(study_dir: Path, cell: Cell) -> str:
    """"done" (trained, evaluated and every variant too), "partial", or "new"."""
    run_dir = Path(cell.request.out)
    if not run_dir.exists():
        return "new"
    done = finished(run_dir, cell.request.models) and all(
        finished(variant_dir(study_dir, cell, v), cell.request.models) for v in cell.variants)
    return "done" if done else "partial"


def check_unchanged(study_dir: Path, cells: list[Cell], registry: Registry) -> None:
    """Refuse to mix results: a cell on disk with the same dataset, model, seed and fold as one of the
    grid's but another digest was made with other settings; the error names the first of them."""
    folder = Path(study_dir) / CELLS
    if not folder.is_dir():
        return
    wanted = {cell.key: cell for cell in cells}
    for existing in sorted(folder.iterdir()):
        key = existing.name.rsplit("-", 1)[0]
        cell = wanted.get(key)
        if cell is None or cell.id == existing.name or not (existing / "config.json").is_file():
            continue
        old = {k: v for k, v in read_record(existing).plan.shaping().items() if k != "fold"}
        request = replace(cell.request, folds=None, fold=None)
        new = build_plan(request, registry, run_device(request.device, request.precision)).shaping()
        change = first_difference(old, {k: new.get(k) for k in old}, "") or "the folds (k or seed)"
        raise SegbenchError(
            f"study directory {study_dir}: cell {key} was run with other settings ({change}); the study file "
            f"changed what that cell means: move {existing} away to run it anew, or use another --out")


def write_study_json(study_dir: Path, study: Study, cells: list[Cell]) -> None:
    data: dict[str, Any] = {"name": study.name, "source": str(study.path), "study_file": study.text,
                            "baseline": study.baseline, "seeds": list(study.seeds),
                            "folds": list(study.folds) if study.folds else None,
                            "datasets": {d.label: d.task for d in study.datasets},
                            "models": {m.label: m.model for m in study.models},
                            "cells": [c.to_json() for c in cells]}
    atomic_write_text(Path(study_dir) / STUDY_FILE, json.dumps(data, indent=1) + "\n")


def read_study_json(study_dir: Path) -> dict[str, Any]:
    path = Path(study_dir) / STUDY_FILE
    try:
        data = json.loads(path.read_text())
        data["cells"] = [Cell.from_json(c) for c in data["cells"]]
        return data
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SegbenchError(f"{path} cannot be read ({type(exc).__name__}: {exc}); run the study again to "
                            "write it") from None
