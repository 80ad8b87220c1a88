"""The comparison table every format renders: metrics as rows and models as columns, or the transpose."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    """cells[metric][model]; best[metric] / best_pooled[metric]: models with the best value (ties all bold)."""

    metrics: list[str]
    models: list[str]
    cells: dict[str, dict[str, Cell]]
    best: dict[str, set[str]]
    best_pooled: dict[str, set[str]]
    labels: dict[str, str]  # metric -> how the table names it

    @property
    def unpooled(self) -> list[str]:
        """Metrics without a pooled value (mask metrics: pooling sums confusion counts over images)."""
        return [m for m in self.metrics if all(missing(c.pooled) for c in self.cells[m].values())]


@dataclass(frozen=True)
class Entry:
    """One printed number: its value, its CI (None for pooled values) and whether it is the best of its metric."""

    value: float
    ci: tuple[float, float] | None
    best: bool


def missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: float | None) -> str:
    """A number to 4 decimals, as the seed paper prints them; "–" when missing."""
    return "–" if missing(value) else f"{value:.{DIGITS}f}"


BOLD_RULE = ("In bold: a per-image mean that is the best of its metric and separated from the runner-up "
             "(the runner-up's mean lies outside the best one's 95% CI); pooled values, which have no CI, are "
             "bold where that model is also the best pooled.")


def _best(cells: dict[str, Cell], higher: bool) -> set[str]:
    """The model whose per-image mean is the best, when the runner-up's mean lies outside its 95% CI (a gap
    the resampling does not explain); none when fewer than two compete or the best two are that close."""
    sign = 1 if higher else -1
    ranked = sorted((m for m, c in cells.items() if not missing(c.mean)), key=lambda m: -sign * cells[m].mean)
    if len(ranked) < 2:
        return set()
    best, runner_up = cells[ranked[0]], cells[ranked[1]].mean
    separated = not missing(best.ci_low) and not best.ci_low <= runner_up <= best.ci_high
    return {ranked[0]} if separated and round(best.mean, DIGITS) != round(runner_up, DIGITS) else set()


def _best_pooled(cells: dict[str, Cell], higher: bool, best: set[str]) -> set[str]:
    """The per-image best (when separated), if its pooled value is the best pooled too."""
    sign = 1 if higher else -1
    pooled = [sign * c.pooled for c in cells.values() if not missing(c.pooled)]
    return {m for m in best if not missing(cells[m].pooled) and sign * cells[m].pooled == max(pooled)}


def build_table(results: RunResults, options: Mapping[str, Any] | None = None) -> Table:
    """Collect the summary rows; the report options' `higher_is_better` per metric (default: higher is
    better) picks the bold values, their `labels` name the metrics (default: the name)."""
    options = options or {}
    models = results.scored_models
    metrics = results.metric_names
    cells: dict[str, dict[str, Cell]] = {m: {} for m in metrics}
    for row in results.summary.itertuples(index=False):
        cells[row.metric][row.model] = Cell(row.mean, row.ci_low, row.ci_high, row.pooled)
    higher = {m: options.get("higher_is_better", {}).get(m, True) for m in metrics}
    labels = {m: options.get("labels", {}).get(m, m) for m in metrics}
    best = {m: _best(cells[m], higher[m]) for m in metrics}
    best_pooled = {m: _best_pooled(cells[m], higher[m], best[m]) for m in metrics}
    return Table(metrics, models, cells, best, best_pooled, labels)


Rows = list[tuple[str, list["Entry | None"]]]


def grid(table: Table, pooled: bool = False, transpose: bool = False) -> tuple[list[str], Rows]:
    """(column labels, rows of (label, entries)) for the mean [CI] or the pooled values (metrics that have one).

    Metrics are rows and models columns, as in the seed paper's tables; `transpose` swaps them.
    """

    def entry(metric: str, model: str) -> Entry | None:
        cell = table.cells[metric].get(model)
        if cell is None:
            return None
        if pooled:
            return Entry(cell.pooled, None, model in table.best_pooled[metric])
        return Entry(cell.mean, (cell.ci_low, cell.ci_high), model in table.best[metric])

    metrics = [m for m in table.metrics if not (pooled and m in table.unpooled)]
    names = [table.labels[m] for m in metrics]
    if transpose:
        return (["Model", *names], [(model, [entry(metric, model) for metric in metrics]) for model in table.models])
    return (["Metric", *table.models], [(table.labels[metric], [entry(metric, model) for model in table.models])
                                        for metric in metrics])


def unpooled_note(table: Table) -> str:
    """The sentence under the pooled table naming the metrics it leaves out, or ""."""
    if not table.unpooled:
        return ""
    names = ", ".join(table.labels.get(m, m) for m in table.unpooled)
    return (f"Not pooled: {names} (computed from the masks of each image; pooling sums confusion counts over "
            "images): see their per-image means.")
