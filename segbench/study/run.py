"""`segbench study plan FILE` and `segbench study run FILE`: the grid of a study file, and running it
into a study directory with an executor, skipping finished cells and resuming interrupted ones."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.data.folds import write_folds
from segbench.data.kaggle import located
from segbench.errors import SegbenchError
from segbench.plugins import Registry
from segbench.study.directory import cell_state, check_unchanged, write_study_json
from segbench.study.grid import Cell, expand, folds_file
from segbench.study.jobs import CellJob
from segbench.study.schema import Study, read_study

if TYPE_CHECKING:
    from segbench.runner import RunReport


@dataclass(frozen=True)
class StudyPlan:
    """A study file's grid in a study directory, with each cell's state ("new", "partial", "done")."""

    study: Study
    directory: Path
    cells: list[Cell]
    states: dict[str, str]


def plan_study(path: str | Path, out: str | None, registry: Registry) -> StudyPlan:
    """The expanded grid; nothing is run or written. Cells of a changed study file that would mix with
    results made under other settings are refused here."""
    study = read_study(path)
    directory = Path(out or f"runs/study-{study.name}")
    cells = expand(study, registry, directory)
    check_unchanged(directory, cells, registry)
    check_cell_data(cells, registry)
    return StudyPlan(study, directory, cells, {c.id: cell_state(directory, c) for c in cells})


def check_cell_data(cells: list[Cell], registry: Registry) -> None:
    """Every refusal a cell's data can give (a label budget at or above its training split, a model of
    anomalies on a task without healthy images), before any cell runs: only the data cache is written.
    Cells with folds are checked when they run (their folds file is written then)."""
    from segbench.engine.device import run_device
    from segbench.plan.build import build_plan
    from segbench.progress import Progress
    from segbench.runner import check_views, load_data, training_splits

    checked = set()
    for cell in cells:
        request = cell.request
        key = (cell.dataset, request.labels, tuple(request.models))
        if request.folds is not None or key in checked:
            continue
        checked.add(key)
        plan = build_plan(request, registry, run_device(request.device, request.precision))
        try:
            training, _ = load_data(registry, plan, Progress(silent=True), training_splits(registry, plan))
            check_views(registry, plan, training)
        except SegbenchError as exc:
            raise SegbenchError(f"study cell {cell.id}: {exc}") from None


def executor_for(registry: Registry, study: Study, name: str | None, workers: int | None):
    """The study's executor ([executor] in the file, or --executor / --workers), built from its options."""
    options = dict(study.executor)
    chosen = name or options.pop("name", "local")
    options.pop("name", None)
    if workers is not None:
        options["workers"] = workers
    spec = registry.executor(chosen)
    if spec.requires and importlib.util.find_spec(spec.requires) is None:
        raise SegbenchError(f"executor {chosen!r} needs the Python package {spec.requires!r}, which is not installed: "
                            f"pip install 'segbench[{spec.requires}]' (or pip install {spec.requires})")
    return spec.factory(options)


def run_study(plan: StudyPlan, registry: Registry, executor, report: RunReport,
              plugins: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Run every cell that is not done, each run directory's report written by `report`; returns cell id ->
    None (finished) or why it did not finish."""
    plan.directory.mkdir(parents=True, exist_ok=True)
    if plan.study.folds is not None:
        k, seed = plan.study.folds
        for data in plan.study.datasets:
            spec = registry.dataset(data.dataset)
            cell = next(c for c in plan.cells if c.dataset == data.label)
            source = spec.factory(_options(cell))
            folds_file(plan.directory, data.label).parent.mkdir(parents=True, exist_ok=True)
            write_folds(folds_file(plan.directory, data.label), source, k, seed)
    write_study_json(plan.directory, plan.study, plan.cells)
    pending = [c for c in plan.cells if plan.states[c.id] != "done"]
    outcomes = executor.run([CellJob(str(plan.directory), c.id, report, plugins) for c in pending])
    return dict(zip((c.id for c in pending), outcomes))


def _options(cell: Cell):
    from segbench.specs import DatasetOptions

    request = cell.request
    root = located(request.data_root)[0]  # a `kaggle:` handle: the folder it downloads into
    return DatasetOptions(task=request.task, root=Path(root).expanduser() if root else None, size=request.image_size,
                          seed=request.seed, mask_threshold=request.mask_threshold)
