"""A study's results over the images whose reference has foreground (its learning curve, or without a labels
axis its table over seeds and its comparison with the baseline): the per-seed means and paired differences
are those of the rows with foreground only, checked against a direct computation, and the report adds those
tables only where some references are empty."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from segbench.reports.study import learning_curve_sections, study_sections
from segbench.reports.table import fmt
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


def test_without_a_labels_axis_the_report_adds_the_seeds_table_and_comparison_over_foreground_images():
    results = replace(study(), budgets=[None], frames={(d, e, None, s): f for (d, e, _, s), f in study().frames.items()})
    sections = {s.title: s for s in study_sections(results, {})}
    over = sections["d: per-image dice, over seeds, images whose reference has foreground"]
    row = next(r for r in over.rows if r[0] == "model")
    assert row[3:] == [fmt(np.mean([0.8, 0.6, 0.7])), fmt(np.mean([0.9, 0.5, 0.6]))]  # seeds 0 and 1
    against = sections["d: against base (per-image dice, paired by seed and image, images whose reference has "
                       "foreground)"]
    paired = results.paired("d", "model", "dice", True, foreground_only=True)
    assert against.rows[0][1].startswith(fmt(paired.difference.mean))
    assert np.isclose(paired.difference.mean, np.mean([np.mean([0.6, 0.2, 0.7]), np.mean([0.8, 0.2, 0.4])]))
    # with a labels axis the learning curve holds that table; no empty reference: no such table
    titles = [s.title for s in study_sections(study(), {})]
    assert not any("over seeds, images whose" in t for t in titles)
    no_empty = replace(results, frames={k: {s: f.assign(reference_empty=False) for s, f in v.items()}
                                        for k, v in results.frames.items()})
    assert not any("images whose" in s.title for s in study_sections(no_empty, {}))
