"""Re-scoring saved predictions: the same numbers as the run at its threshold, new ones without re-running."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from segbench.metrics import confusion_counts
from segbench.results import load_run
from segbench.results.rescore import rescore, select_scores
from segbench.results.store import COUNT_COLUMNS, float16_keeping_threshold
from segbench.plugins import load_plugins
from tests.reports.conftest import builtin_metrics


def test_rescoring_at_the_run_threshold_reproduces_the_run(toy_run):
    run = load_run(toy_run)
    again = rescore(run, {name: load_plugins().metric(name) for name in run.metric_names}, threshold=None)
    assert again.per_image[COUNT_COLUMNS].equals(run.per_image[COUNT_COLUMNS])
    assert list(again.per_image["sample_id"]) == list(run.per_image["sample_id"])
    for metric in run.metric_names:
        np.testing.assert_allclose(again.per_image[metric], run.per_image[metric], rtol=1e-9)  # CSV keeps 10 digits
    columns = ["mean", "ci_low", "ci_high", "pooled"]
    pd.testing.assert_frame_equal(again.summary[["model", "metric"]], run.summary[["model", "metric"]])
    np.testing.assert_allclose(again.summary[columns].to_numpy(float), run.summary[columns].to_numpy(float), rtol=1e-9)


def test_rescoring_at_another_threshold_thresholds_the_saved_probabilities(toy_run):
    run = load_run(toy_run)
    again = rescore(run, builtin_metrics(), threshold=0.3)
    with np.load(toy_run / "predictions/toy-cnn.npz") as p, np.load(toy_run / "predictions/_reference.npz") as r:
        counts = confusion_counts(torch.from_numpy(p["probabilities"].astype(np.float32)),
                                  torch.from_numpy(r["masks"]), 0.3)
    assert (again.per_image["tp"].to_numpy() == counts.tp.numpy()).all()
    assert (again.per_image["fp"].to_numpy() == counts.fp.numpy()).all()
    assert again.record.plan.evaluation.threshold == 0.3 and again.record_of("toy-cnn").plan.evaluation.threshold == 0.3
    assert not again.per_image[COUNT_COLUMNS].equals(run.per_image[COUNT_COLUMNS])


def test_metrics_the_run_has_need_no_rescoring(toy_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(toy_run, old)
    (old / "predictions/_reference.npz").unlink()  # as a run made before the reference was saved
    chosen = select_scores(load_run(old), ["mcc", "dice"], None, lambda name: pytest.fail("no lookup expected"))
    assert chosen.metric_names == ["mcc", "dice"]
    assert {"mcc", "dice"} <= set(chosen.per_image.columns) and "jaccard" not in chosen.per_image.columns
    with pytest.raises(Exception, match="_reference.npz"):
        select_scores(load_run(old), None, 0.4, load_plugins().metric)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.123, 1.0])
def test_float16_storage_keeps_every_pixel_on_its_side_of_the_threshold(threshold):
    p = np.clip(threshold + np.random.default_rng(0).uniform(-1e-3, 1e-3, 200_000), 0, 1).astype(np.float32)
    stored = float16_keeping_threshold(p, threshold)
    assert stored.dtype == np.float16 and np.abs(stored.astype(np.float32) - p).max() < 5e-4
    t = np.float32(threshold)
    assert ((stored.astype(np.float32) >= t) == (p >= t)).all()
    plain = p.astype(np.float16).astype(np.float32)
    assert ((plain >= t) != (p >= t)).any() or threshold == 1.0  # plain rounding would not


def test_out_of_range_threshold_is_a_clear_error(toy_run):
    with pytest.raises(Exception, match=r"--threshold must be in \(0, 1\], got 1.5"):
        rescore(load_run(toy_run), builtin_metrics(), 1.5)
