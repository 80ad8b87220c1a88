"""What runs one cell of a study, in whatever process an executor gives it: train (resuming exactly what
an earlier, interrupted attempt left), then evaluate each variant that reuses the trained model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.errors import SegbenchError
from segbench.study.directory import read_study_json, variant_dir

if TYPE_CHECKING:
    from segbench.runner import RunReport


@dataclass(frozen=True)
class CellJob:
    """One cell to run: picklable, so an executor can send it to another process or machine. `report`
    writes each run directory's report (a module-level function, so it pickles); `plugins`: the --plugin
    modules the study was run with (the worker loads them too)."""

    study_dir: str
    cell_id: str
    report: RunReport
    plugins: tuple[str, ...] = ()

    def __call__(self) -> None:
        run_cell(Path(self.study_dir), self.cell_id, self.report, self.plugins)


def run_cell(study_dir: Path, cell_id: str, report: RunReport, plugins: tuple[str, ...] = ()) -> None:
    """Train and evaluate cell `cell_id` of the study in `study_dir`, then its variants; each is an
    ordinary run directory, resumed with --resume semantics (a folder without a run starts it). Progress
    goes to stderr as `segbench run` shows it: bars on a terminal, plain lines in a log file."""
    from segbench.evaluate import EvaluateRequest, evaluate
    from segbench.plugins import load_plugins
    from segbench.progress import Progress
    from segbench.runner import run

    registry = load_plugins(plugins)
    progress = Progress()
    cell = next((c for c in read_study_json(study_dir)["cells"] if c.id == cell_id), None)
    if cell is None:
        raise SegbenchError(f"cell {cell_id} is not in {study_dir}/study.json any more: another `segbench study run` "
                            f"with a different study file rewrote it; run one study file per directory at a time")
    progress.log(f"cell {cell_id}")
    run(cell.request, registry, progress, report)
    for variant in cell.variants:
        sets = [f"{model}.{key}={value}" for model in cell.request.models for key, value in variant.sets.items()]
        evaluate(EvaluateRequest(run_dir=cell.request.out, models=list(cell.request.models), sets=sets,
                                 ensemble=variant.ensemble, fusion=variant.fusion, threshold=variant.threshold,
                                 eval_samples=variant.eval_samples, eval_batch_size=cell.request.eval_batch_size,
                                 dataset=variant.dataset, data_root=variant.root, split=variant.split,
                                 device=cell.request.device, out=str(variant_dir(study_dir, cell, variant)),
                                 resume=True), registry, progress, report)
