"""The qualitative figure: images picked by Dice quantile among non-empty references, masks over the
X-ray coloured by agreement, per-panel Dice."""

from __future__ import annotations

import numpy as np

from segbench.reports.figures import qualitative
from segbench.results import load_run


def test_images_are_picked_at_the_dice_quantiles():
    dice = {f"s{i}": d for i, d in enumerate([0.9, 0.1, 0.5, 0.7, 0.3])}
    assert qualitative.choose_samples(dice) == [("s1", "worst"), ("s4", "lower quartile"), ("s2", "median"),
                                                ("s0", "best")]
    assert qualitative.choose_samples({"a": 0.5}) == [("a", "worst")]  # each image once


def test_the_overlay_colours_each_pixel_by_agreement():
    image = np.full((2, 2), 255, np.uint8)
    predicted = np.array([[True, True], [False, False]])
    reference = np.array([[True, False], [True, False]])
    rgb = qualitative._overlay(image, predicted, reference)
    alpha = qualitative.ALPHA
    for (row, col), name in (((0, 0), "true positive"), ((0, 1), "false positive"), ((1, 0), "false negative")):
        np.testing.assert_allclose(rgb[row, col], (1 - alpha) + alpha * np.array(qualitative.COLOURS[name]))
    np.testing.assert_allclose(rgb[1, 1], 1.0)  # true negative: the X-ray as it is


def test_the_figure_shows_quantile_rows_with_each_panels_dice(toy_run):
    results = load_run(toy_run)
    figure, caption = qualitative.plot(results)
    non_empty = results.per_image[(results.per_image["tp"] + results.per_image["fn"]) > 0]
    rows = min(4, non_empty["sample_id"].nunique())
    axes = figure.get_axes()
    columns = 1 + 2 * len(results.scored_models)  # X-ray, then each model's overlay and its uncertainty
    assert len(axes) == rows * columns
    dice = results.per_image.set_index(["model", "sample_id"])["dice"]
    model = results.scored_models[0]
    labels = [axes[r * columns].get_ylabel().split("\n")[1] for r in range(rows)]
    assert labels == [i for i, _ in qualitative.choose_samples(
        non_empty[non_empty["model"].isin(results.scored_models)].groupby("sample_id")["dice"].mean().to_dict())]
    assert axes[columns + 1].get_title() == f"Dice {dice[(model, labels[1])]:.3f}"
    assert "green true positive, red false positive, blue false negative" in caption and "standard deviation" in caption
