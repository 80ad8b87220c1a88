"""A study directory read back: per dataset, model (and evaluation variant, and augmentation policy), label
budget, labelled subset and seed, the per-image results of its cells (the folds of a seed pooled), and their
aggregation over seeds and subsets."""

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
from segbench.study.schema import Variant
from segbench.study.statistics import OverSeeds, PairedOverSeeds, over_runs, paired_over_runs

VARIANT_MARK = "@"  # "diff-add@ddim50": model diff-add evaluated with variant ddim50

# (dataset, entry, label budget (None: all), labels seed (None: the study's one labelled subset))
FrameKey = tuple[str, str, int | None, int | None]


def entry_label(entry: str, augment: str | None) -> str:
    """An entry under a policy of an augment axis as reports name it, "unet (augment standard)" (None: no axis)."""
    return entry if augment is None else f"{entry} (augment {augment})"


@dataclass
class StudyResults:
    """frames[(dataset, entry, labels, labels_seed)][seed]: per-image rows (sample_id, reference_empty, metrics)
    of that seed, folds pooled; labels_seed is the labelled subset's with a labels_seeds axis, else None.
    Entries are the study's model labels and "<label>@<variant>" for evaluation variants, each under every
    policy of an augment axis as `entry_label` names it (`augments`: entry -> (the entry without its policy,
    the policy)); `models` maps a model label to its registered model; `budgets` the study's label budgets
    (None: all labels), and `training_images` per dataset the size of its training split (what "all" labels
    is). Without a `labels` argument, methods use the largest budget; without `against`, `paired` compares
    with the baseline under the entry's policy."""

    directory: Path
    name: str
    baseline: str
    datasets: dict[str, str]  # label -> task
    entries: list[str]
    metrics: list[str]
    frames: dict[FrameKey, dict[int, pd.DataFrame]]
    missing: list[str] = field(default_factory=list)  # cells (or variants) without results yet
    budgets: list[int | None] = field(default_factory=lambda: [None])
    training_images: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    augments: dict[str, tuple[str, str]] = field(default_factory=dict)
    # runs[(dataset, entry, labels, labels_seed)][seed]: every finished cell's results (one per fold), keyed as
    # `frames`
    runs: dict[FrameKey, dict[int, list[RunResults]]] = field(default_factory=dict)

    @property
    def first_runs(self) -> dict[tuple[str, str, int | None], tuple[int, RunResults]]:
        """(dataset, model label, labels) -> (run seed, results) of its finished cell with the lowest seed (of
        the first labelled subset and fold that has it; evaluation variants left out): what reports read a
        model's cost from."""
        first: dict[tuple[str, str, int | None], tuple[int, RunResults]] = {}
        for (dataset, entry, labels, _), by_seed in self.runs.items():
            seed, key = min(by_seed), (dataset, entry, labels)
            if VARIANT_MARK not in entry and (key not in first or seed < first[key][0]):
                first[key] = (seed, by_seed[seed][0])
        return first

    @property
    def has_labels_axis(self) -> bool:
        return self.budgets != [None]

    @property
    def labels_seeds(self) -> list[int]:
        """The labels seeds of a labels_seeds axis (empty without one)."""
        return sorted({key[3] for key in self.frames if key[3] is not None})

    @property
    def policies(self) -> list[str]:
        """The policies of an augment axis, in the study's order (empty without one)."""
        return list(dict.fromkeys(policy for _, policy in self.augments.values()))

    def policy(self, entry: str) -> str | None:
        """The policy of an entry on an augment axis (None without one)."""
        return self.augments[entry][1] if entry in self.augments else None

    def under(self, entry: str, policy: str | None) -> str:
        """The same model (and variant) as `entry` under another policy (None: without its policy)."""
        return entry_label(self.augments[entry][0] if entry in self.augments else entry, policy)

    def baseline_of(self, entry: str) -> str:
        """The baseline `entry` is compared with: the one trained under the same policy."""
        return self.under(self.baseline, self.policy(entry))

    def model(self, entry: str) -> str:
        """The registered model of a model label, under any policy (the label itself where the study does not
        say)."""
        label = self.under(entry, None)
        return self.models.get(label, label)

    @property
    def ordered_budgets(self) -> list[int | None]:
        """The budgets from fewest labels to all."""
        return sorted(self.budgets, key=lambda b: math.inf if b is None else b)

    def _budget(self, labels: int | None | str) -> int | None:
        return self.ordered_budgets[-1] if labels == "default" else labels

    def _subsets(self, dataset: str, entry: str, budget: int | None) -> dict[int | None, dict[int, pd.DataFrame]]:
        """labels seed -> run seed -> rows, in labels seed order."""
        found = {key[3]: by_seed for key, by_seed in self.frames.items() if key[:3] == (dataset, entry, budget)}
        return {labels_seed: found[labels_seed] for labels_seed in sorted(found, key=lambda l: -1 if l is None else l)}

    def seeds(self, dataset: str, entry: str, labels: int | None | str = "default") -> list[int]:
        """The run seeds with results (on any labelled subset)."""
        return sorted({s for by_seed in self._subsets(dataset, entry, self._budget(labels)).values() for s in by_seed})

    def has_empty_references(self, dataset: str) -> bool:
        """Whether some evaluated image of `dataset` has an empty reference (and some has foreground)."""
        empty = pd.concat([frame[REFERENCE_EMPTY] for key, by_seed in self.frames.items() if key[0] == dataset
                           for frame in by_seed.values()])
        return bool(empty.any()) and not bool(empty.all())

    @staticmethod
    def _rows(frame: pd.DataFrame, foreground_only: bool) -> pd.DataFrame:
        return frame[~frame[REFERENCE_EMPTY]] if foreground_only else frame

    def summary(self, dataset: str, entry: str, metric: str, labels: int | None | str = "default",
                foreground_only: bool = False) -> OverSeeds | None:
        """`entry`'s metric over seeds (at one label budget; over the images whose reference has foreground
        when `foreground_only`)."""
        subsets = self._subsets(dataset, entry, self._budget(labels))
        if not subsets:
            return None
        runs = {labels_seed: {s: self._rows(by_seed[s], foreground_only)[metric].to_numpy(np.float64)
                              for s in sorted(by_seed)} for labels_seed, by_seed in subsets.items()}
        return over_runs(runs, self.bootstrap_seed(dataset))

    def paired(self, dataset: str, entry: str, metric: str, higher_is_better: bool = True,
               labels: int | None | str = "default", foreground_only: bool = False,
               against: str | None = None) -> PairedOverSeeds | None:
        """`entry` against `against` (default: its baseline, `baseline_of`) on the labelled subsets and seeds both
        have, image by image (at one label budget; over the images whose reference has foreground when
        `foreground_only`)."""
        against = against or self.baseline_of(entry)
        budget = self._budget(labels)
        model, base = self._subsets(dataset, entry, budget), self._subsets(dataset, against, budget)
        if entry == against:
            return None
        model_runs: dict[int | None, dict[int, np.ndarray]] = {}
        base_runs: dict[int | None, dict[int, np.ndarray]] = {}
        for labels_seed, by_seed in model.items():
            for s in sorted(set(by_seed) & set(base.get(labels_seed, {}))):
                joined = self._rows(by_seed[s], foreground_only).merge(
                    base[labels_seed][s], on="sample_id", suffixes=("", "_against"))
                model_runs.setdefault(labels_seed, {})[s] = joined[metric].to_numpy(np.float64)
                base_runs.setdefault(labels_seed, {})[s] = joined[f"{metric}_against"].to_numpy(np.float64)
        if not model_runs:
            return None
        return paired_over_runs(model_runs, base_runs, self.bootstrap_seed(dataset), higher_is_better)

    def bootstrap_seed(self, dataset: str) -> int:
        """The same resamples for every entry of a dataset, so its rows are resampled alike."""
        return derive_seed("study-bootstrap", self.name, dataset)


def load_study(directory: str | Path) -> StudyResults:
    """Read a study directory; cells that have not finished are listed in `missing`."""
    directory = Path(directory)
    data = read_study_json(directory)
    collected: dict[FrameKey, dict[int, list[pd.DataFrame]]] = {}
    entries: list[str] = []
    budgets: list[int | None] = list(dict.fromkeys(cell.labels for cell in data["cells"]))
    training_images: dict[str, int] = {}
    missing: list[str] = []
    metrics: list[str] | None = None
    finished_runs: dict[FrameKey, dict[int, list[RunResults]]] = {}
    augments: dict[str, tuple[str, str]] = {}
    datasets = dict(data["datasets"])
    for cell in data["cells"]:
        runs = [(cell.dataset, cell.model, Path(cell.request.out)),
                *((_variant_dataset(cell.dataset, v), f"{cell.model}{VARIANT_MARK}{v.name}", variant_dir(directory, cell, v))
                  for v in cell.variants)]
        for dataset, unaugmented, run_dir in runs:
            entry = entry_label(unaugmented, cell.augment)
            if cell.augment is not None:
                augments[entry] = (unaugmented, cell.augment)
            datasets.setdefault(dataset, datasets[cell.dataset])
            if entry not in entries:
                entries.append(entry)
            if not finished(run_dir, cell.request.models):
                missing.append(f"{cell.id}" + (f" ({entry})" if VARIANT_MARK in entry else ""))
                continue
            results = load_run(run_dir)
            metrics = metrics or results.metric_names
            frame = results.per_image[["sample_id", *results.metric_names]].assign(
                **{REFERENCE_EMPTY: empty_references(results.per_image).to_numpy()})
            frame_key = (dataset, entry, cell.labels, cell.labels_seed)
            collected.setdefault(frame_key, {}).setdefault(cell.seed, []).append(frame)
            finished_runs.setdefault(frame_key, {}).setdefault(cell.seed, []).append(results)
            if results.record.train_samples:
                training_images[cell.dataset] = results.record.train_samples
    if metrics is None:
        raise SegbenchError(f"study {directory} has no finished cell yet; run it with `segbench study run`")
    frames = {key: {seed: pd.concat(parts, ignore_index=True) for seed, parts in by_seed.items()}
              for key, by_seed in collected.items()}
    return StudyResults(directory, data["name"], data["baseline"], datasets, entries, metrics, frames, missing,
                        budgets, training_images, dict(data["models"]), augments, finished_runs)


def _variant_dataset(dataset: str, variant: Variant) -> str:
    """Where a variant's results are reported: under its cell's dataset, or for a variant evaluated on other
    data under "<dataset>@<variant>" of its own (its images are not the dataset's)."""
    return f"{dataset}{VARIANT_MARK}{variant.name}" if variant.dataset or variant.root else dataset
