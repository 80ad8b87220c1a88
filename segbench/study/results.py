"""A study directory read back: per dataset, model (and evaluation variant) and seed, the per-image
results of its cells (the folds of a seed pooled), and their aggregation over seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.results import load_run
from segbench.seeds import derive_seed
from segbench.study.directory import finished, read_study_json, variant_dir
from segbench.study.statistics import OverSeeds, PairedOverSeeds, over_seeds, paired_over_seeds

VARIANT_MARK = "@"  # "diff-add@ddim50": model diff-add evaluated with variant ddim50


@dataclass
class StudyResults:
    """frames[(dataset, entry)][seed]: per-image rows (sample_id, metrics) of that seed, folds pooled.
    Entries are the study's model labels and "<label>@<variant>" for evaluation variants."""

    directory: Path
    name: str
    baseline: str
    datasets: dict[str, str]  # label -> task
    entries: list[str]
    metrics: list[str]
    frames: dict[tuple[str, str], dict[int, pd.DataFrame]]
    missing: list[str] = field(default_factory=list)  # cells (or variants) without results yet

    def seeds(self, dataset: str, entry: str) -> list[int]:
        return sorted(self.frames.get((dataset, entry), {}))

    def summary(self, dataset: str, entry: str, metric: str) -> OverSeeds | None:
        seeds = self.seeds(dataset, entry)
        if not seeds:
            return None
        per_seed = [self.frames[(dataset, entry)][s][metric].to_numpy(np.float64) for s in seeds]
        return over_seeds(seeds, per_seed, self.bootstrap_seed(dataset))

    def paired(self, dataset: str, entry: str, metric: str, higher_is_better: bool = True) -> PairedOverSeeds | None:
        """`entry` against the baseline on the seeds both have, image by image."""
        seeds = [s for s in self.seeds(dataset, entry) if s in self.seeds(dataset, self.baseline)]
        if entry == self.baseline or not seeds:
            return None
        model, base = [], []
        for s in seeds:
            joined = self.frames[(dataset, entry)][s].merge(self.frames[(dataset, self.baseline)][s], on="sample_id",
                                                             suffixes=("", "_baseline"))
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
    collected: dict[tuple[str, str], dict[int, list[pd.DataFrame]]] = {}
    entries: list[str] = []
    missing: list[str] = []
    metrics: list[str] | None = None
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
            frame = results.per_image[["sample_id", *results.metric_names]]
            collected.setdefault((cell.dataset, entry), {}).setdefault(cell.seed, []).append(frame)
    if metrics is None:
        raise SegbenchError(f"study {directory} has no finished cell yet; run it with `segbench study run`")
    frames = {key: {seed: pd.concat(parts, ignore_index=True) for seed, parts in by_seed.items()}
              for key, by_seed in collected.items()}
    return StudyResults(directory, data["name"], data["baseline"], data["datasets"], entries, metrics, frames, missing)
