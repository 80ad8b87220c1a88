"""A study directory read back: per dataset, model (and evaluation variant) and seed, the per-image
results of its cells (the folds of a seed pooled), and their aggregation over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.protocol import REFERENCE_EMPTY
from segbench.results import RunResults, load_run
from segbench.results.store import empty_references
from segbench.seeds import derive_seed
from segbench.study.directory import finished, read_study_json, variant_dir
from segbench.study.statistics import OverSeeds, PairedOverSeeds, over_seeds, paired_over_seeds

VARIANT_MARK = "@"  # "diff-add@ddim50": model diff-add evaluated with variant ddim50


@dataclass
class StudyResults:
    """frames[(dataset, entry, labels)][seed]: per-image rows (sample_id, reference_empty, metrics) of that seed,
    folds pooled.
    Entries are the study's model labels and "<label>@<variant>" for evaluation variants; `budgets` the
    study's label budgets (None: all labels), and `training_images` per dataset the size of its training
    split (what "all" labels is). Without a `labels` argument, methods use the largest budget."""

    directory: Path
    name: str
    baseline: str
    datasets: dict[str, str]  # label -> task
    entries: list[str]
    metrics: list[str]
    frames: dict[tuple[str, str, int | None], dict[int, pd.DataFrame]]
    missing: list[str] = field(default_factory=list)  # cells (or variants) without results yet
    budgets: list[int | None] = field(default_factory=lambda: [None])
    training_images: dict[str, int] = field(default_factory=dict)
    # first_runs[(dataset, model, labels)]: (run seed, results) of the model's finished cell with the lowest
    # seed (what reports read a model's cost from)
    first_runs: dict[tuple[str, str, int | None], tuple[int, RunResults]] = field(default_factory=dict)

    @property
    def has_labels_axis(self) -> bool:
        return self.budgets != [None]

    @property
    def ordered_budgets(self) -> list[int | None]:
        """The budgets from fewest labels to all."""
        return sorted(self.budgets, key=lambda b: math.inf if b is None else b)

    def _budget(self, labels: int | None | str) -> int | None:
        return self.ordered_budgets[-1] if labels == "default" else labels

    def seeds(self, dataset: str, entry: str, labels: int | None | str = "default") -> list[int]:
        return sorted(self.frames.get((dataset, entry, self._budget(labels)), {}))

    def has_empty_references(self, dataset: str) -> bool:
        """Whether some evaluated image of `dataset` has an empty reference (and some has foreground)."""
        empty = pd.concat([frame[REFERENCE_EMPTY] for (d, _, _), by_seed in self.frames.items() if d == dataset
                           for frame in by_seed.values()])
        return bool(empty.any()) and not bool(empty.all())

    def _rows(self, dataset: str, entry: str, budget: int | None, seed: int, foreground_only: bool) -> pd.DataFrame:
        frame = self.frames[(dataset, entry, budget)][seed]
        return frame[~frame[REFERENCE_EMPTY]] if foreground_only else frame

    def summary(self, dataset: str, entry: str, metric: str, labels: int | None | str = "default",
                foreground_only: bool = False) -> OverSeeds | None:
        """`entry`'s metric over seeds (at one label budget; over the images whose reference has foreground
        when `foreground_only`)."""
        budget = self._budget(labels)
        seeds = self.seeds(dataset, entry, budget)
        if not seeds:
            return None
        per_seed = [self._rows(dataset, entry, budget, s, foreground_only)[metric].to_numpy(np.float64) for s in seeds]
        return over_seeds(seeds, per_seed, self.bootstrap_seed(dataset))

    def paired(self, dataset: str, entry: str, metric: str, higher_is_better: bool = True,
               labels: int | None | str = "default", foreground_only: bool = False) -> PairedOverSeeds | None:
        """`entry` against the baseline on the seeds both have, image by image (at one label budget; over the
        images whose reference has foreground when `foreground_only`)."""
        budget = self._budget(labels)
        seeds = [s for s in self.seeds(dataset, entry, budget) if s in self.seeds(dataset, self.baseline, budget)]
        if entry == self.baseline or not seeds:
            return None
        model, base = [], []
        for s in seeds:
            joined = self._rows(dataset, entry, budget, s, foreground_only).merge(
                self.frames[(dataset, self.baseline, budget)][s], on="sample_id", suffixes=("", "_baseline"))
            model.append(joined[metric].to_numpy(np.float64))
            base.append(joined[f"{metric}_baseline"].to_numpy(np.float64))
        return paired_over_seeds(seeds, model, base, self.bootstrap_seed(dataset), higher_is_better)

    def bootstrap_seed(self, dataset: str) -> int:
        """The same resamples for every entry of a dataset, so its rows are resampled alike."""
        return derive_seed("study-bootstrap", self.name, dataset)


def load_study(directory: str | Path) -> StudyResults:
    """Read a study directory; cells that have not finished are listed in `missing`."""
    directory = Path(directory)
    data = read_study_json(directory)
    collected: dict[tuple[str, str, int | None], dict[int, list[pd.DataFrame]]] = {}
    entries: list[str] = []
    budgets: list[int | None] = list(dict.fromkeys(cell.labels for cell in data["cells"]))
    training_images: dict[str, int] = {}
    missing: list[str] = []
    metrics: list[str] | None = None
    first_runs: dict[tuple[str, str, int | None], tuple[int, RunResults]] = {}
    for cell in data["cells"]:
        runs = [(cell.model, Path(cell.request.out)),
                *((f"{cell.model}{VARIANT_MARK}{v.name}", variant_dir(directory, cell, v)) for v in cell.variants)]
        for entry, run_dir in runs:
            if entry not in entries:
                entries.append(entry)
            if not finished(run_dir, cell.request.models):
                missing.append(f"{cell.id}" + (f" ({entry})" if VARIANT_MARK in entry else ""))
                continue
            results = load_run(run_dir)
            metrics = metrics or results.metric_names
            frame = results.per_image[["sample_id", *results.metric_names]].assign(
                **{REFERENCE_EMPTY: empty_references(results.per_image).to_numpy()})
            key = (cell.dataset, entry, cell.labels)
            collected.setdefault(key, {}).setdefault(cell.seed, []).append(frame)
            if VARIANT_MARK not in entry and (key not in first_runs or cell.seed < first_runs[key][0]):
                first_runs[key] = (cell.seed, results)
            if results.record.train_samples:
                training_images[cell.dataset] = results.record.train_samples
    if metrics is None:
        raise SegbenchError(f"study {directory} has no finished cell yet; run it with `segbench study run`")
    frames = {key: {seed: pd.concat(parts, ignore_index=True) for seed, parts in by_seed.items()}
              for key, by_seed in collected.items()}
    return StudyResults(directory, data["name"], data["baseline"], data["datasets"], entries, metrics, frames, missing,
                        budgets, training_images, first_runs)
