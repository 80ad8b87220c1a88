"""Study files (TOML, read with the standard library's tomllib): what a study compares, checked into types.

Every problem is one SegbenchError naming the file, the key (and its line where it can be found) and
what is valid. The schema is documented in docs/studies.md ("Studies").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segbench.data.augmentation import AUGMENT_CHOICES
from segbench.errors import SegbenchError

# Options of `segbench run` a study may set for all its cells, with their types.
RUN_OPTIONS: dict[str, tuple[type, ...]] = {
    "preset": (str,), "epochs": (int,), "steps": (int,), "batch_size": (int,), "lr": (int, float),
    "eval_samples": (int,), "eval_batch_size": (int,), "ensemble": (int,), "image_size": (int,),
    "device": (str,), "precision": (str,), "checkpoint_every": (int, float), "mask_threshold": (int,),
    "compile": (bool,), "labels_seed": (int,), "select": (str,), "select_every": (int,), "augment": (str,),
    "fusion": (str,),
}
TOP_KEYS = ("name", "seeds", "labels", "labels_seeds", "baseline", "datasets", "models", "folds", "evaluations", "executor", "track",
            *RUN_OPTIONS)
DATASET_KEYS = ("dataset", "task", "root", "image_size", "mask_threshold")
MODEL_KEYS = ("model", "set")
EVALUATION_KEYS = ("models", "set", "ensemble", "fusion", "threshold", "eval_samples", "dataset", "root", "split")
FOLD_KEYS = ("k", "seed")


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the study under its label: a registered dataset, a task, and where its data are."""

    label: str
    dataset: str
    task: str
    root: str | None = None
    image_size: int | None = None
    mask_threshold: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One model of the study under its label: a registered model and `--set` overrides (as text)."""

    label: str
    model: str
    sets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """An evaluation variant: a trained cell evaluated another way (sampler settings, ensemble size and
    fusion, threshold, subset) or on other data (`dataset` under `root`, its test split or "all" its images, as
    `segbench evaluate --dataset`), without training again. `models`: the model labels it applies to (None: all)."""

    name: str
    models: tuple[str, ...] | None
    sets: dict[str, str] = field(default_factory=dict)
    ensemble: int | None = None
    threshold: float | None = None
    eval_samples: int | None = None
    dataset: str | None = None
    root: str | None = None
    split: str = "test"
    fusion: str | None = None  # None: the cell's


@dataclass(frozen=True)
class Study:
    """A study file, checked: seeds, datasets, models, run options for every cell, optional folds
    (k and the seed of the assignment), evaluation variants, the baseline label and the executor."""

    name: str
    path: Path
    text: str
    seeds: tuple[int, ...]
    datasets: tuple[DatasetEntry, ...]
    models: tuple[ModelEntry, ...]
    options: dict[str, Any]
    baseline: str
    folds: tuple[int, int] | None = None
    variants: tuple[Variant, ...] = ()
    executor: dict[str, Any] = field(default_factory=dict)
    labels: tuple[int | None, ...] = (None,)  # label budgets (None: all), an axis of the grid
    labels_seeds: tuple[int, ...] = ()  # labelled subsets at each budget but all, an axis of the grid (empty: none)
    augments: tuple[str, ...] = ()  # augmentation policies, an axis of the grid (empty: none; `augment` in options)

    @property
    def has_labels_axis(self) -> bool:
        return self.labels != (None,)


class _Reader:
    """Checks values of one study file, raising errors that name the file, key and line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, key: str, problem: str) -> SegbenchError:
        line = self._line(key)
        where = f" (line {line})" if line else ""
        return SegbenchError(f"study file {self.path}: {key}{where}: {problem}")

    def _line(self, key: str) -> int | None:
        """The line that sets `key`, found part by part (each part at or after the line of the one before)."""
        lines = self.text.splitlines()
        start = 0
        for part in key.split("."):
            pattern = re.compile(rf'(^|[\s{{,\[."]){re.escape(part)}"?\s*(=|\]|\.)')
            found = next((i for i in range(start, len(lines)) if pattern.search(lines[i])), None)
            if found is None:
                return None
            start = found
        return start + 1

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {type(value).__name__}")
        return value

    def known(self, values: Mapping[str, Any], key: str, valid: tuple[str, ...]) -> None:
        for name in values:
            if name not in valid:
                path = f"{key}.{name}" if key else name
                raise self.fail(path, f"unknown key; valid: {', '.join(valid)}")

    def typed(self, value: Any, key: str, kinds: tuple[type, ...]) -> Any:
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join({int: "an integer", float: "a number", str: "text", bool: "true or false"}[k]
                                for k in kinds)
            raise self.fail(key, f"must be {names}, got {value!r}")
        return value

    def sets(self, value: Any, key: str) -> dict[str, str]:
        """A `set` table as `--set` text: numbers and booleans as written, lists comma-separated."""
        out = {}
        for name, item in self.table(value, key).items():
            if isinstance(item, bool):
                out[name] = "true" if item else "false"
            elif isinstance(item, (int, float, str)):
                out[name] = str(item)
            elif isinstance(item, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item):
                out[name] = ",".join(str(v) for v in item)
            else:
                raise self.fail(f"{key}.{name}", f"must be a number, text, true/false or a list of numbers, got {item!r}")
        return out


def read_study(path: str | Path) -> Study:
    """Read and check a study file; every problem is one clear SegbenchError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SegbenchError(f"study file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SegbenchError(f"study file {path} is not valid TOML: {exc}") from None
    reader = _Reader(path, text)
    reader.known(data, "", TOP_KEYS)
    seeds = data.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise reader.fail("seeds", f"must be a non-empty list of integers, e.g. seeds = [0, 1, 2]; got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise reader.fail("seeds", f"lists a seed twice: {seeds}")
    datasets = _datasets(reader, data.get("datasets"))
    models = _models(reader, data.get("models"))
    augments = _augments(reader, data.get("augment"))
    options = {k: reader.typed(v, k, RUN_OPTIONS[k]) for k, v in data.items()
               if k in RUN_OPTIONS and not (k == "augment" and augments)}
    if "track" in data:  # experiment trackers of every cell, as `--track`
        track = data["track"]
        if not isinstance(track, list) or not all(isinstance(name, str) for name in track):
            raise reader.fail("track", f'must be a list of tracker names, e.g. track = ["tensorboard"]; got {track!r}')
        options["track"] = track
    baseline = reader.typed(data.get("baseline", models[0].label), "baseline", (str,))
    if baseline not in {m.label for m in models}:
        raise reader.fail("baseline", f"is not one of the study's models; valid: {', '.join(m.label for m in models)}")
    name = reader.typed(data.get("name", path.stem), "name", (str,))
    executor = dict(reader.table(data.get("executor", {}), "executor"))
    labels = _labels(reader, data.get("labels"))
    return Study(name, path, text, tuple(seeds), datasets, models, options, baseline, _folds(reader, data.get("folds")),
                 _variants(reader, data.get("evaluations", {}), models), executor, labels,
                 _labels_seeds(reader, data, labels), augments)


def _labels(reader: _Reader, value: Any) -> tuple[int | None, ...]:
    """`labels = [16, 64, "all"]`: label budgets, each a number of labelled training images or "all"."""
    if value is None:
        return (None,)
    valid = isinstance(value, list) and value and all(
        v == "all" or isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    if not valid:
        raise reader.fail("labels", f'must be a non-empty list of numbers of labelled images (>= 1) or "all", '
                                    f'e.g. labels = [16, 64, "all"]; got {value!r}')
    budgets = tuple(None if v == "all" else v for v in value)
    if len(set(budgets)) != len(budgets):
        raise reader.fail("labels", f"lists a budget twice: {value}")
    return budgets


def _labels_seeds(reader: _Reader, data: Mapping[str, Any], labels: tuple[int | None, ...]) -> tuple[int, ...]:
    """`labels_seeds = [0, 1, 2]`: a labelled subset per labels seed at each label budget (not one labels_seed
    for all cells, and only beside a budget: at "all" labels every subset is the whole training split)."""
    value = data.get("labels_seeds")
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise reader.fail("labels_seeds", f"must be a non-empty list of integers, e.g. labels_seeds = [0, 1, 2]; "
                                          f"got {value!r}")
    if len(set(value)) != len(value):
        raise reader.fail("labels_seeds", f"lists a labels seed twice: {value}")
    if "labels_seed" in data:
        raise reader.fail("labels_seeds", "and labels_seed both choose the labelled images: set one labels seed for "
                                          "every cell (labels_seed = 1) or vary it (labels_seeds = [0, 1, 2]), not both")
    if all(budget is None for budget in labels):
        raise reader.fail("labels_seeds", 'varies which training images keep their masks, so it needs a label budget, '
                                          'e.g. labels = [16, "all"]')
    return tuple(value)


def _augments(reader: _Reader, value: Any) -> tuple[str, ...]:
    """`augment = ["none", "standard"]`: every cell once per policy, an axis (even of one policy). A policy name
    alone is a run option of every cell and no axis (empty), as is no `augment`."""
    if value is None:
        return ()
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(v, str) for v in names):
        raise reader.fail("augment", f'must be a policy or a non-empty list of policies, e.g. augment = '
                                     f'["none", "standard"]; got {value!r}')
    if unknown := [v for v in names if v not in AUGMENT_CHOICES]:
        raise reader.fail("augment", f"names an unknown policy {unknown[0]!r}; valid: {', '.join(AUGMENT_CHOICES)}")
    if len(set(names)) != len(names):
        raise reader.fail("augment", f"lists a policy twice: {value}")
    return tuple(value) if isinstance(value, list) else ()


def _datasets(reader: _Reader, value: Any) -> tuple[DatasetEntry, ...]:
    if not value:
        raise reader.fail("datasets", 'needs at least one dataset, e.g. [datasets.infection] task = "infection"')
    entries = []
    for label, table in reader.table(value, "datasets").items():
        key = f"datasets.{label}"
        table = reader.table(table, key)
        reader.known(table, key, DATASET_KEYS)
        if "task" not in table:
            raise reader.fail(key, 'needs a task, e.g. task = "infection"')
        entries.append(DatasetEntry(
            label, reader.typed(table.get("dataset", "cxr-phantom"), f"{key}.dataset", (str,)),
            reader.typed(table["task"], f"{key}.task", (str,)),
            None if "root" not in table else str(Path(reader.typed(table["root"], f"{key}.root", (str,))).expanduser()),
            None if "image_size" not in table else reader.typed(table["image_size"], f"{key}.image_size", (int,)),
            None if "mask_threshold" not in table else reader.typed(table["mask_threshold"], f"{key}.mask_threshold", (int,)),
        ))
    return tuple(entries)


def _models(reader: _Reader, value: Any) -> tuple[ModelEntry, ...]:
    if not value:
        raise reader.fail("models", 'needs at least one model, e.g. [models] unet = {} or '
                                    'diff-add-ddim50 = { model = "diff-add", set = { sampling_steps = 50 } }')
    entries = []
    for label, table in reader.table(value, "models").items():
        key = f"models.{label}"
        table = reader.table(table, key)
        reader.known(table, key, MODEL_KEYS)
        model = reader.typed(table.get("model", label), f"{key}.model", (str,))
        entries.append(ModelEntry(label, model, reader.sets(table.get("set", {}), f"{key}.set")))
    return tuple(entries)


def _folds(reader: _Reader, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    table = reader.table(value, "folds")
    reader.known(table, "folds", FOLD_KEYS)
    k = reader.typed(table.get("k"), "folds.k", (int,))
    if k < 2:
        raise reader.fail("folds.k", f"must be at least 2, got {k}")
    return k, reader.typed(table.get("seed", 0), "folds.seed", (int,))


def _variants(reader: _Reader, value: Any, models: tuple[ModelEntry, ...]) -> tuple[Variant, ...]:
    labels = {m.label for m in models}
    variants = []
    for name, table in reader.table(value, "evaluations").items():
        key = f"evaluations.{name}"
        table = reader.table(table, key)
        reader.known(table, key, EVALUATION_KEYS)
        chosen = table.get("models")
        if chosen is not None:
            if not isinstance(chosen, list) or not all(isinstance(m, str) for m in chosen):
                raise reader.fail(f"{key}.models", f"must be a list of model labels, got {chosen!r}")
            unknown = [m for m in chosen if m not in labels]
            if unknown:
                raise reader.fail(f"{key}.models", f"names {unknown[0]!r}, not a model of the study; valid: "
                                                   f"{', '.join(sorted(labels))}")
        threshold = table.get("threshold")
        if threshold is not None:
            reader.typed(threshold, f"{key}.threshold", (int, float))
            if not 0 < threshold <= 1:
                raise reader.fail(f"{key}.threshold", f"must be in (0, 1], got {threshold}")
        variants.append(Variant(
            name, None if chosen is None else tuple(chosen), reader.sets(table.get("set", {}), f"{key}.set"),
            None if "ensemble" not in table else reader.typed(table["ensemble"], f"{key}.ensemble", (int,)),
            None if threshold is None else float(threshold),
            None if "eval_samples" not in table else reader.typed(table["eval_samples"], f"{key}.eval_samples", (int,)),
            None if "dataset" not in table else reader.typed(table["dataset"], f"{key}.dataset", (str,)),
            None if "root" not in table else str(Path(reader.typed(table["root"], f"{key}.root", (str,))).expanduser()),
            reader.typed(table.get("split", "test"), f"{key}.split", (str,)),
            None if "fusion" not in table else reader.typed(table["fusion"], f"{key}.fusion", (str,)),
        ))
    return tuple(variants)
