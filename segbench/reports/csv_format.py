"""CSV report: the summary rows of every model (model, metric, mean, ci_low, ci_high, pooled, images), for
all images, for the images with foreground in the reference, for each value of `--by`, and image-level
detection (false_positive_image_rate and mean_predicted_area over empty references, detection_sensitivity
and detection_specificity over all images)."""

from __future__ import annotations

import io

import pandas as pd

from segbench.reports.strata import strata, subgroups
from segbench.results import RunResults
from segbench.results.store import FLOAT_FORMAT, SUMMARY_COLUMNS


def render(results: RunResults, options: dict | None = None) -> str:
    options = options or {}
    found = strata(results)
    parts = [results.summary[SUMMARY_COLUMNS].assign(images="all")]
    if found.non_empty is not None:
        parts.append(found.non_empty.summary.assign(images="with foreground"))
    if options.get("by"):
        parts += [part.summary.assign(images=f"{options['by']}={value}") for value, _, _, part in
                  subgroups(results, options["by"])]
    if found.has_empty:
        detection = [(d.model, metric, value, scope) for d in found.detection for metric, value, scope in (
            ("false_positive_image_rate", d.false_positive_rate, "empty reference"),
            ("mean_predicted_area", d.predicted_area, "empty reference"),
            ("detection_sensitivity", d.sensitivity, "all"), ("detection_specificity", d.specificity, "all"))]
        parts.append(pd.DataFrame(detection, columns=["model", "metric", "mean", "images"]))
    buffer = io.StringIO()
    table = pd.concat(parts, ignore_index=True)[[*SUMMARY_COLUMNS, "images"]]
    table.to_csv(buffer, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return buffer.getvalue()
