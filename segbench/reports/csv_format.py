"""CSV report: the summary rows of every model (model, metric, mean, ci_low, ci_high, pooled)."""

from __future__ import annotations

import io

from segbench.results import RunResults
from segbench.results.store import FLOAT_FORMAT, SUMMARY_COLUMNS


def render(results: RunResults, options: dict | None = None) -> str:
    buffer = io.StringIO()
    results.summary[SUMMARY_COLUMNS].to_csv(buffer, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buffer.getvalue()
