"""Reading and writing a run directory (layout in ARCHITECTURE.md); every write is atomic."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.io import atomic_save, atomic_write_text, write_npz
from segbench.protocol import COUNT_COLUMNS, REFERENCE_EMPTY, reference_is_empty
from segbench.results.record import CONFIG_FILE, MODELS_FILE, ModelRecord, RunRecord, read_models, read_record
from segbench.specs import Stage

SUMMARY_COLUMNS = ["model", "metric", "mean", "ci_low", "ci_high", "pooled"]
STATUS_COLUMN = "status"  # summary.csv's last column: "done", or "failed: <why>" on rows without numbers
FLOAT_FORMAT = "%.10g"
REFERENCE_FILE = "predictions/_reference.npz"
LABELLED_FILE = "labelled.csv"  # with --labels N: the training (and validation) images that kept their masks


def _read_table(path: Path, text: tuple[str, ...] = ()) -> pd.DataFrame:
    """A run CSV: names and the `text` columns stay text (a sample id "0007" is not the number 7), empty
    numbers are NaN."""
    return pd.read_csv(path, keep_default_na=False,
                       dtype=dict.fromkeys(("model", "sample_id", "metric", STATUS_COLUMN, *text), str),
                       na_values=dict.fromkeys(SUMMARY_COLUMNS[2:], [""]))


def _csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buffer.getvalue()


def safe_name(model: str) -> str:
    """A model's name as a file name ("smp:FPN:resnet34" -> "smp_FPN_resnet34")."""
    return model.replace(":", "_").replace("/", "_")


def prediction_file(model: str) -> str:
    """A model's predictions under the run directory."""
    return f"predictions/{safe_name(model)}.npz"


def checkpoint_dir(model: str) -> str:
    """The folder of a model's checkpoints (last.pt) under the run directory."""
    return f"checkpoints/{safe_name(model)}"


def stage_checkpoint_dir(model: str, stages: Sequence[Stage], stage: Stage) -> str:
    """The folder of one training stage's checkpoints: the model's own for a model in one stage, a
    subfolder per stage for a model in several."""
    return checkpoint_dir(model) if len(stages) == 1 else f"{checkpoint_dir(model)}/{stage.name}"




def final_checkpoint(model: str, stages: Sequence[Stage]) -> str:
    """The checkpoint that holds a trained model's final weights (with its last stage's EMA)."""
    return f"{stage_checkpoint_dir(model, stages, stages[-1])}/last.pt"


def synthetic_file(model: str) -> str:
    """Images a generative model synthesised after training (a report shows them beside real ones)."""
    return f"synthetic/{safe_name(model)}.npz"


def partial_dir(model: str) -> str:
    """Where a model's committed prediction batches wait until its results are written."""
    return f"partial/{safe_name(model)}"


@dataclass
class RunResults:
    """A run read back: its record (config.json), per-image rows, summary rows and per-model records
    (models.json). Merged runs keep each model's own run directory and record in `model_dirs` and
    `model_records`; `run_dir(model)` and `record_of(model)` fall back to the first run's.
    `timings_omitted`: wall-clock numbers were left out (`report --no-timings`).
    """

    path: Path
    record: RunRecord
    per_image: pd.DataFrame
    summary: pd.DataFrame
    models: dict[str, ModelRecord]
    model_dirs: dict[str, Path] = field(default_factory=dict)
    model_records: dict[str, RunRecord] = field(default_factory=dict)
    timings_omitted: bool = False

    @property
    def model_names(self) -> list[str]:
        """Models in the order the run listed them."""
        return [m for m in self.record.plan.model_names if m in self.models] or list(self.models)

    @property
    def scored_models(self) -> list[str]:
        """Models with results (failed ones have none), in run order."""
        scored = set(self.summary["model"])
        return [m for m in self.model_names if m in scored]

    @property
    def metric_names(self) -> list[str]:
        return list(dict.fromkeys(self.summary["metric"])) if len(self.summary) else []

    @property
    def metadata_columns(self) -> list[str]:
        """The dataset's metadata columns of per_image.csv (e.g. "group"), in file order."""
        return metadata_columns(self.per_image.columns, self.metric_names)

    def run_dir(self, model: str) -> Path:
        """The directory holding `model`'s predictions."""
        return self.model_dirs.get(model, self.path)

    def record_of(self, model: str) -> RunRecord:
        """The record of the run that produced `model`."""
        return self.model_records.get(model, self.record)


class RunStore:
    """Writes one run directory; per-model results are merged in as each model finishes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def has_record(self) -> bool:
        return self.file(CONFIG_FILE).exists()

    def _write_json(self, name: str, data: dict) -> None:
        atomic_write_text(self.file(name), json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def write_record(self, record: RunRecord) -> None:
        self._write_json(CONFIG_FILE, record.to_json())

    def read_record(self) -> RunRecord:
        return read_record(self.path)

    def write_models(self, models: dict[str, ModelRecord]) -> None:
        self._write_json(MODELS_FILE, {name: entry.to_json() for name, entry in models.items()})

    def read_models(self) -> dict[str, ModelRecord]:
        return read_models(self.path)

    def _replace_rows(self, name: str, model: str, rows: pd.DataFrame) -> None:
        """Replace `model`'s rows in a CSV, keeping the other models' rows and order."""
        path = self.file(name)
        old = _read_table(path) if path.exists() else pd.DataFrame(columns=rows.columns)
        merged = pd.concat([old[old["model"] != model], rows], ignore_index=True) if len(old) else rows
        atomic_write_text(path, _csv_text(merged))

    def write_model_results(self, model: str, per_image: pd.DataFrame, summary: pd.DataFrame) -> None:
        self._replace_rows("per_image.csv", model, per_image)
        self._replace_rows("summary.csv", model, summary.assign(**{STATUS_COLUMN: "done"}))

    def mark_failed(self, model: str, reason: str, metrics: list[str]) -> None:
        """Record a failed model in summary.csv: one row per metric, no numbers, status "failed: <reason>"."""
        rows = pd.DataFrame({"model": model, "metric": metrics, **{c: float("nan") for c in SUMMARY_COLUMNS[2:]},
                             STATUS_COLUMN: f"failed: {reason}"})
        self._replace_rows("summary.csv", model, rows)
        path = self.file("per_image.csv")
        if path.exists():
            old = _read_table(path)
            atomic_write_text(path, _csv_text(old[old["model"] != model]))

    def write_labelled(self, ids: Mapping[str, Sequence[str]]) -> None:
        """labelled.csv: per split, the ids of the images whose masks the run's label budget kept."""
        rows = [(split, sample_id) for split, names in ids.items() for sample_id in names]
        atomic_write_text(self.file(LABELLED_FILE), _csv_text(pd.DataFrame(rows, columns=["split", "sample_id"])))

    def write_predictions(
        self, model: str, ids: list[str], probabilities: np.ndarray, uncertainty: np.ndarray | None,
        threshold: float = 0.5,
    ) -> None:
        """predictions/<model>.npz: sample_id (N,), probabilities float16 (N, H, W), uncertainty or empty.

        The float16 probabilities give the same masks at `threshold` (the run's) as the float32 ones did.
        """
        arrays = {
            "sample_id": np.array(ids, dtype=str),
            "probabilities": float16_keeping_threshold(probabilities, threshold),
            "uncertainty": (uncertainty if uncertainty is not None else np.empty((0,))).astype(np.float16),
        }
        atomic_save(self.file(prediction_file(model)), lambda f: write_npz(f, arrays, compress=True))

    def write_synthetic(self, model: str, images: np.ndarray) -> None:
        """synthetic/<model>.npz: images uint8 (N, H, W) the trained model synthesised."""
        arrays = {"images": np.asarray(images, np.uint8)}
        atomic_save(self.file(synthetic_file(model)), lambda f: write_npz(f, arrays, compress=True))

    def write_reference(self, ids: list[str], images: np.ndarray, masks: np.ndarray) -> None:
        """predictions/_reference.npz: sample_id (N,), images and masks uint8 (N, H, W) as evaluated.

        What re-scoring (`report --threshold/--metrics`) and the qualitative figure read.
        """
        arrays = {"sample_id": np.array(ids, dtype=str), "images": np.asarray(images, np.uint8),
                  "masks": np.asarray(masks, np.uint8)}
        atomic_save(self.file(REFERENCE_FILE), lambda f: write_npz(f, arrays, compress=True))


def float16_keeping_threshold(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Probabilities as float16, each on the same side of `threshold` (compared in float32) as before.

    Rounding to the nearest float16 can carry a value across the threshold (0.49995 -> 0.5); such values
    move to the nearest float16 on their own side, so re-scoring at the run's threshold is exact.
    """
    p32 = np.asarray(probabilities, dtype=np.float32)
    t32 = np.float32(threshold)
    half = p32.astype(np.float16)
    above = np.float16(t32)  # the smallest float16 >= threshold, and the largest one below it
    if np.float32(above) < t32:
        above = np.nextafter(above, np.float16(np.inf))
    below = np.nextafter(above, np.float16(-np.inf))
    as32 = half.astype(np.float32)
    half[(p32 < t32) & (as32 >= t32)] = below
    half[(p32 >= t32) & (as32 < t32)] = above
    return half


def load_run(path: str | Path) -> RunResults:
    """Read a finished (or partly finished) run directory; a missing one is a clear error."""
    path = Path(path)
    record = read_record(path)
    models = read_models(path)

    file = path / "summary.csv"
    summary = _read_table(file) if file.exists() else pd.DataFrame(columns=SUMMARY_COLUMNS)
    per_image = _read_per_image(path / "per_image.csv", list(dict.fromkeys(summary["metric"])))
    if STATUS_COLUMN in summary:  # failed models' rows carry no numbers; models.json tells why
        failed = summary[STATUS_COLUMN].str.startswith("failed")
        summary = summary[~failed].drop(columns=STATUS_COLUMN).reset_index(drop=True)
    for column in ("mean", "ci_low", "ci_high", "pooled"):
        summary[column] = pd.to_numeric(summary[column], errors="coerce")
    return RunResults(path, record, per_image, summary, models, dict.fromkeys(models, path),
                      dict.fromkeys(models, record))


def metadata_columns(columns, metrics: list[str]) -> list[str]:
    """Which of per_image.csv's `columns` are the dataset's metadata: all but the fixed ones and the metrics."""
    fixed = {"model", "sample_id", *COUNT_COLUMNS, REFERENCE_EMPTY, *metrics}
    return [c for c in columns if c not in fixed]


def empty_references(per_image: pd.DataFrame) -> pd.Series:
    """Per row, whether the image's reference is empty, from its counts: the fact per_image.csv's
    reference_empty column states, so runs made before that column existed report the same."""
    return reference_is_empty(per_image["tp"], per_image["fn"]).astype(bool)


def _read_per_image(file: Path, metrics: list[str]) -> pd.DataFrame:
    """per_image.csv with the dataset's metadata columns read as text."""
    if not file.exists():
        return pd.DataFrame(columns=["model", "sample_id", *COUNT_COLUMNS])
    header = pd.read_csv(file, nrows=0).columns
    return _read_table(file, tuple(metadata_columns(header, metrics)))


def merge_runs(paths: list[str | Path]) -> RunResults:
    """Several runs of the same task and dataset as one (model names must not repeat)."""
    runs = [load_run(p) for p in paths]
    first = runs[0]
    for other in runs[1:]:
        for key in ("task", "dataset"):
            mine, theirs = getattr(first.record.plan.data, key), getattr(other.record.plan.data, key)
            if mine != theirs:
                raise SegbenchError(
                    f"cannot merge runs with different {key}: {first.path} has {mine!r}, {other.path} has {theirs!r}"
                )
        clash = set(other.models) & set(first.models)
        if clash:
            raise SegbenchError(f"model {sorted(clash)[0]!r} appears in both {first.path} and {other.path}")
        plan = first.record.plan
        models = (*(m for m in plan.models if m.name in first.models),
                  *(m for m in other.record.plan.models if m.name in other.models))
        first = RunResults(
            first.path,
            replace(first.record, plan=replace(plan, models=models)),
            pd.concat([first.per_image, other.per_image], ignore_index=True),
            pd.concat([first.summary, other.summary], ignore_index=True),
            {**first.models, **other.models},
            {**first.model_dirs, **other.model_dirs},
            {**first.model_records, **other.model_records},
        )
    return first
