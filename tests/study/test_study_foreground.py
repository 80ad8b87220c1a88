"""A study's learning curve over the images whose reference has foreground: the per-seed means and paired
differences are those of the rows with foreground only, checked against a direct computation, and the
report adds that table only where some references are empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segbench.reports.study import learning_curve_sections
from segbench.study.results import StudyResults

EMPTY = np.array([True, False, False, True, False])


def frame(dice: list[float], empty: np.ndarray = EMPTY) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"test/{i}" for i in range(len(dice))], "dice": dice,
                         "reference_empty": empty})


def study(empty: np.ndarray = EMPTY) -> StudyResults:
    frames = {("d", "base", 4, None): {0: frame([1, 0.2, 0.4, 1, 0.0], empty), 1: frame([1, 0.1, 0.3, 0, 0.2], empty)},
              ("d", "model", 4, None): {0: frame([0, 0.8, 0.6, 0, 0.7], empty), 1: frame([0, 0.9, 0.5, 1, 0.6], empty)}}
    return StudyResults(Path("."), "s", "base", {"d": "infection"}, ["base", "model"], ["dice"], frames,
                        budgets=[4], training_images={"d": 10})


def test_foreground_only_summaries_and_differences_use_the_rows_with_foreground():
    results = study()
    summary = results.summary("d", "model", "dice", 4, foreground_only=True)
    assert summary.seed_means == (np.mean([0.8, 0.6, 0.7]), np.mean([0.9, 0.5, 0.6]))
    paired = results.paired("d", "model", "dice", True, 4, foreground_only=True)
    assert np.allclose(paired.difference.seed_means, (np.mean([0.6, 0.2, 0.7]), np.mean([0.8, 0.2, 0.4])))
    everything = results.summary("d", "model", "dice", 4)
    assert everything.seed_means == (np.mean([0, 0.8, 0.6, 0, 0.7]), np.mean([0, 0.9, 0.5, 1, 0.6]))


def test_the_report_adds_the_foreground_learning_curve_only_where_some_references_are_empty():
    titles = [s.title for s in learning_curve_sections(study(), "dice", True)]
    assert titles == ["d: learning curve, per-image dice by labelled training images",
                      "d: learning curve, per-image dice by labelled training images, images whose reference has "
                      "foreground"]
    no_empty = study(np.zeros(5, dtype=bool))
    assert len(learning_curve_sections(no_empty, "dice", True)) == 1
