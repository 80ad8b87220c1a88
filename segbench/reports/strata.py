"""Results by stratum and subgroup: images with and without foreground in the reference, image-level
detection, and the breakdown by a metadata column (`segbench report --by`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from segbench.errors import SegbenchError
from segbench.metrics.statistics import bootstrap_ci
from segbench.protocol import bootstrap_seed
from segbench.reports.table import fmt, missing
from segbench.results import RunResults
from segbench.results.store import SUMMARY_COLUMNS, empty_references

DETECTION_NOTE = ("Image level: an image counts as detected when any pixel is predicted foreground; sensitivity is "
                  "the share of images with foreground in the reference that are detected, specificity the share "
                  "of images with an empty reference that are not. False-positive images: images with an empty "
                  "reference but predicted foreground; their mean predicted area is over all empty-reference images.")


@dataclass(frozen=True)
class Detection:
    """One model's image-level view: images with foreground in the reference (`present`) and without
    (`empty`), how many of each have predicted foreground, and the mean predicted area (px) on the empty ones."""

    model: str
    present: int
    empty: int
    detected: int
    false_positive: int
    predicted_area: float

    @property
    def sensitivity(self) -> float:
        return self.detected / self.present if self.present else float("nan")

    @property
    def specificity(self) -> float:
        return 1 - self.false_positive / self.empty if self.empty else float("nan")

    @property
    def false_positive_rate(self) -> float:
        return self.false_positive / self.empty if self.empty else float("nan")


@dataclass(frozen=True)
class Strata:
    """The strata of a run: per model its detection, and the results over the images with foreground in the
    reference (None when every reference has foreground, as the overall tables then are that stratum)."""

    detection: list[Detection]
    non_empty: RunResults | None

    @property
    def has_empty(self) -> bool:
        return any(d.empty for d in self.detection)


def restricted(results: RunResults, keep: pd.Series) -> RunResults:
    """The results over the per-image rows where `keep` holds: each model's per-image mean with its bootstrap
    CI recomputed (the run's bootstrap seed, so every model is resampled alike); no pooled values."""
    frame = results.per_image[keep.to_numpy(bool)]
    rows = []
    for model in results.scored_models:
        mine = frame[frame["model"] == model]
        seed = bootstrap_seed(results.record_of(model).plan.seed)
        for metric in results.metric_names:
            values = mine[metric].to_numpy(np.float64)
            low, high = bootstrap_ci(values, seed)
            rows.append((model, metric, float(values.mean()) if values.size else float("nan"), low, high, float("nan")))
    return replace(results, per_image=frame, summary=pd.DataFrame(rows, columns=SUMMARY_COLUMNS))


def strata(results: RunResults) -> Strata:
    frame = results.per_image
    empty = empty_references(frame)
    predicted = (frame["tp"] + frame["fp"]) > 0
    detection = []
    for model in results.scored_models:
        mine = (frame["model"] == model).to_numpy()
        e, p = empty.to_numpy()[mine], predicted.to_numpy()[mine]
        area = frame["fp"].to_numpy(np.float64)[mine][e]
        detection.append(Detection(model, int((~e).sum()), int(e.sum()), int((p & ~e).sum()), int((p & e).sum()),
                                   float(area.mean()) if area.size else float("nan")))
    mixed = empty.any() and not empty.all()
    return Strata(detection, restricted(results, ~empty) if mixed else None)


def images_label(results: RunResults) -> str:
    """How many images each model's rows cover: "96 images", or "96 or 50 images per model"."""
    counts = results.per_image.groupby("model", sort=False).size()
    counts = sorted({int(counts.get(m, 0)) for m in results.scored_models}, reverse=True) or [0]
    return f"{counts[0]} images" if len(counts) == 1 else f"{' or '.join(map(str, counts))} images per model"


def floor_note(results: RunResults, found: Strata) -> str:
    """What the empty references mean for the headline numbers, in one or two sentences."""
    first = found.detection[0] if found.detection else None
    if first is None or not found.has_empty:
        return "Every evaluated reference has foreground: the tables above are that stratum, and no image tests false positives."
    n = first.present + first.empty
    text = f"Of the {n} evaluated images, {first.empty} ({first.empty / n:.1%}) have an empty reference."
    if "dice" in results.metric_names:
        text += (f" Under the empty-mask policy a model that predicts nothing scores Dice 1 on each of them and 0 on "
                 f"the rest, an overall per-image mean Dice of {first.empty / n:.4f}: read the overall means against that.")
    return text


def subgroups(results: RunResults, column: str) -> list[tuple[str, int, int, RunResults]]:
    """(value, images, images with an empty reference, the results over them) per value of the metadata
    `column` (counted on the first model's images), in sorted order; an unknown column is a clear error."""
    if column not in results.metadata_columns:
        valid = ", ".join(results.metadata_columns) or "none: the runs' dataset gives no metadata"
        raise SegbenchError(f"--by {column}: per_image.csv has no metadata column {column!r}; valid: {valid}")
    frame = results.per_image
    first = frame[frame["model"] == results.scored_models[0]] if results.scored_models else frame
    out = []
    for value in sorted(frame[column].astype(str).unique()):
        mine = first[column].astype(str) == value
        out.append((value, int(mine.sum()), int(empty_references(first)[mine].sum()),
                    restricted(results, frame[column].astype(str) == value)))
    return out


DETECTION_COLUMNS = ("Model", "Images (empty reference)", "False-positive images", "Mean predicted area, empty (px)",
                     "Detection sensitivity", "Detection specificity")


def detection_rows(found: Strata) -> list[list[str]]:
    """The detection table as text, DETECTION_COLUMNS."""
    def share(value: float, count: int, total: int) -> str:
        return f"{fmt(value)} ({count} of {total})" if total else "–"

    return [[d.model, f"{d.present + d.empty} ({d.empty})", share(d.false_positive_rate, d.false_positive, d.empty),
             "–" if missing(d.predicted_area) else f"{d.predicted_area:.1f}",
             share(d.sensitivity, d.detected, d.present), share(d.specificity, d.empty - d.false_positive, d.empty)]
            for d in found.detection]
