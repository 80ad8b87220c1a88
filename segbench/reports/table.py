"""The comparison table every format renders: metrics as rows, models as columns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from segbench.results import RunResults

DIGITS = 4


@dataclass(frozen=True)
class Cell:
    mean: float
    ci_low: float
    ci_high: float
    pooled: float


@dataclass(frozen=True)
class Table:
    """cells[metric][model]; best[metric] = models with the best mean (ties all bold)."""

    metrics: list[str]
    models: list[str]
    cells: dict[str, dict[str, Cell]]
    best: dict[str, set[str]]
    failed: dict[str, str]


def fmt(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{DIGITS}f}"


def build_table(results: RunResults, higher_is_better: dict[str, bool] | None = None) -> Table:
    """Collect summary rows; the best per row is by the mean rounded as printed."""
    summary: pd.DataFrame = results.summary
    models = [m for m in results.model_names if (summary["model"] == m).any()]
    failed = {m: info.get("error", "failed") for m, info in results.models.items() if info.get("status") != "done"}
    metrics = results.metric_names
    cells: dict[str, dict[str, Cell]] = {m: {} for m in metrics}
    for row in summary.itertuples(index=False):
        cells[row.metric][row.model] = Cell(row.mean, row.ci_low, row.ci_high, row.pooled)
    best = {}
    for metric in metrics:
        sign = 1 if (higher_is_better or {}).get(metric, True) else -1
        scored = {m: round(sign * c.mean, DIGITS) for m, c in cells[metric].items() if not math.isnan(c.mean)}
        top = max(scored.values(), default=None)
        best[metric] = {m for m, v in scored.items() if v == top} if len(scored) > 1 else set()
    return Table(metrics, models, cells, best, failed)


def header_items(results: RunResults) -> list[tuple[str, str]]:
    """The settings a reader needs to interpret the numbers, as (label, value)."""
    c = results.config
    dataset = c.get("dataset", "")
    if dataset == "cxr-phantom":
        dataset += " (synthetic chest X-ray phantoms, not patient data)"
    items = [
        ("Task", c.get("task", "")),
        ("Dataset", dataset),
        ("Preset", f"{c.get('preset', '')} (requested: {c.get('preset_requested', '')})"),
        ("Seed", str(c.get("seed", ""))),
        ("Training images", str(c.get("train_samples", ""))),
        ("Evaluation images", str(c.get("eval_samples_used", ""))),
        ("Image size", f"{c.get('image_size', '')}x{c.get('image_size', '')}"),
        ("Ensemble size", str(c.get("ensemble", ""))),
        ("Threshold", str(c.get("threshold", ""))),
        ("Empty-mask policy", c.get("empty_mask_policy", "")),
        ("Device", c.get("device", "")),
        ("Versions", ", ".join(f"{k} {v}" for k, v in c.get("versions", {}).items())),
    ]
    return items


def model_rows(results: RunResults) -> list[tuple[str, str, str, str, str]]:
    """Per model: (name, parameters, training seconds, masks/s, status)."""
    rows = []
    for name in results.model_names:
        info = results.models.get(name, {})
        params = info.get("parameters")
        rows.append((
            name,
            f"{params / 1e6:.2f} M" if params else "–",
            f"{info['train_seconds']:.1f}" if info.get("train_seconds") is not None else "–",
            f"{info['masks_per_second']:.2f}" if info.get("masks_per_second") else "–",
            info.get("status", "–") if info.get("status") == "done" else f"failed: {info.get('error', '')}",
        ))
    return rows
