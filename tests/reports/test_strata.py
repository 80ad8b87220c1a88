"""Strata, subgroups, paired effects and uncertainty quality on run directories scored as `segbench run`
scores them, each against a direct computation from the saved arrays; old run directories still report."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from segbench.errors import SegbenchError
from segbench.metrics.paired import paired_test
from segbench.metrics.statistics import bootstrap_ci
from segbench.protocol import bootstrap_seed
from segbench.reports.comparison import compare
from segbench.reports.strata import strata, subgroups
from segbench.reports.uncertainty import uncertainty_quality
from segbench.results import load_run
from tests.reports.conftest import GROUPS, scored_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return scored_run(tmp_path_factory.mktemp("strata") / "run", {"good": 0.25, "noisy": 0.42},
                      uncertainty=("good",))


def arrays(run_dir, model):
    with np.load(run_dir / f"predictions/{model}.npz") as p, np.load(run_dir / "predictions/_reference.npz") as r:
        return p["probabilities"].astype(np.float32), p["uncertainty"].astype(np.float32), r["masks"].astype(bool)


def test_per_image_csv_marks_empty_references_and_carries_metadata(run):
    frame = pd.read_csv(run / "per_image.csv", dtype={"group": str})
    assert list(frame.columns[:8]) == ["model", "sample_id", "tp", "fp", "fn", "tn", "reference_empty", "group"]
    _, _, masks = arrays(run, "good")
    expected = ~masks.reshape(len(masks), -1).any(1)
    assert (frame[frame["model"] == "good"]["reference_empty"].to_numpy() == expected).all()
    assert set(frame["group"]) == set(GROUPS)


def test_detection_and_the_non_empty_stratum_match_a_direct_count(run):
    results = load_run(run)
    found = strata(results)
    for model, detection in zip(["good", "noisy"], found.detection):
        probabilities, _, masks = arrays(run, model)
        predicted = (probabilities >= 0.5).reshape(len(masks), -1)
        present = masks.reshape(len(masks), -1).any(1)
        assert (detection.present, detection.empty) == (present.sum(), (~present).sum()) == (20, 10)
        assert detection.detected == (predicted.any(1) & present).sum()
        assert detection.false_positive == (predicted.any(1) & ~present).sum()
        assert detection.predicted_area == pytest.approx(predicted[~present].sum(1).mean())
        assert detection.specificity == 1 - detection.false_positive / 10
        rows = results.per_image[(results.per_image["model"] == model)]
        dice = rows["dice"].to_numpy()[present]
        cell = found.non_empty.summary.set_index(["model", "metric"]).loc[(model, "dice")]
        assert cell["mean"] == pytest.approx(dice.mean())
        assert (cell["ci_low"], cell["ci_high"]) == bootstrap_ci(dice, bootstrap_seed(0))
        assert np.isnan(cell["pooled"])


def test_paired_effects_against_a_direct_computation():
    rng = np.random.default_rng(4)
    baseline = np.round(rng.random(60), 1)
    other = np.where(rng.random(60) < 0.4, baseline, np.round(rng.random(60), 1))  # many ties
    d = other - baseline
    t = paired_test(baseline, other, seed=3)
    assert (t.wins, t.ties, t.losses) == ((d > 0).sum(), (d == 0).sum(), (d < 0).sum())
    assert t.n_tested == np.count_nonzero(d) == t.wins + t.losses and t.n == 60
    assert t.mean_difference == pytest.approx(d.mean())
    assert (t.mean_ci_low, t.mean_ci_high) == bootstrap_ci(d, 3)
    assert t.p_value == pytest.approx(stats.wilcoxon(d[d != 0]).pvalue)  # the test uses the unequal pairs only
    lower = paired_test(baseline, other, seed=3, higher_is_better=False)
    assert (lower.wins, lower.losses) == (t.losses, t.wins)


def test_comparison_reports_the_non_empty_stratum_as_its_own_family(run):
    results = load_run(run)
    comparison = compare(results)
    (overall,), (non_empty,) = comparison.rows, comparison.non_empty
    assert overall.test.n == 30 and non_empty.test.n == 20
    frame = results.per_image
    present = ~frame[frame["model"] == "good"]["reference_empty"].to_numpy()
    good, noisy = (frame[frame["model"] == m]["dice"].to_numpy() for m in ("good", "noisy"))
    assert non_empty.test.mean_difference == pytest.approx((noisy - good)[present].mean())
    assert non_empty.p_holm == non_empty.test.p_value  # one comparison: Holm leaves it
    (sentence,) = comparison.sentences()
    assert sentence.startswith("noisy against good: over all 30 images, per-image dice is lower by")
    assert "over the 20 with foreground in the reference" in sentence


def test_subgroups_split_by_the_metadata_and_unknown_columns_are_named(run):
    results = load_run(run)
    parts = subgroups(results, "group")
    assert [(value, n) for value, n, _, _ in parts] == [("alpha", 12), ("beta", 12), ("gamma", 6)]
    frame = results.per_image
    alpha = frame[(frame["model"] == "good") & (frame["group"] == "alpha")]["hd95"].to_numpy()
    summary = parts[0][3].summary.set_index(["model", "metric"])
    assert summary.loc[("good", "hd95"), "mean"] == pytest.approx(alpha.mean())
    assert parts[0][2] == frame[(frame["model"] == "good") & (frame["group"] == "alpha")]["reference_empty"].sum()
    with pytest.raises(SegbenchError, match=r"^--by grp: per_image.csv has no metadata column 'grp'; valid: group$"):
        subgroups(results, "grp")


def test_uncertainty_quality_matches_sklearn(run):
    results = load_run(run)
    rows = {q.model: q for q in uncertainty_quality(results)}
    probabilities, uncertainty, masks = arrays(run, "good")
    errors = (probabilities >= 0.5) != masks
    per_image = [skm.roc_auc_score(e.ravel(), u.ravel()) for u, e in zip(uncertainty, errors) if 0 < e.sum() < e.size]
    good = rows["good"]
    assert good.images == len(per_image) and good.auroc_mean == pytest.approx(np.mean(per_image))
    assert good.auroc_pooled == pytest.approx(skm.roc_auc_score(errors.ravel(), uncertainty.ravel()))
    assert good.brier == pytest.approx(np.mean((probabilities.astype(np.float64) - masks) ** 2))
    assert rows["noisy"].images == 0 and np.isnan(rows["noisy"].auroc_pooled)  # it stores no uncertainty


def test_report_sections_and_the_csv_rows(run, run_cli, tmp_path):
    code, md, stderr = run_cli("report", str(run), "--by", "group", "--no-figures")
    assert code == 0, stderr
    for heading in ("## Images with and without foreground in the reference",
                    "### Images with foreground in the reference (20 images): per-image mean [95% bootstrap CI]",
                    "### Image-level detection and empty references", "## Results by group",
                    "### group = alpha (12 images, ", "## Uncertainty and calibration"):
        assert heading in md, heading
    assert "Of the 30 evaluated images, 10 (33.3%) have an empty reference" in md and "0.3333" in md
    assert "Not pooled: ASSD (px), HD95 (px), NSD (1 px)" in md  # named as the tables name them
    assert "ASSD (px), HD95 (px): both masks empty: 0 px" in md and "hd95" not in md
    assert "| noisy | with foreground | 20 |" in md
    code, csv, stderr = run_cli("report", str(run), "--format", "csv", "--by", "group")
    assert code == 0, stderr
    rows = pd.read_csv(pd.io.common.StringIO(csv))
    assert set(rows["images"]) == {"all", "with foreground", "group=alpha", "group=beta", "group=gamma",
                                   "empty reference"}
    assert set(rows[rows["images"] == "empty reference"]["metric"]) == {"false_positive_image_rate", "mean_predicted_area"}
    code, _, stderr = run_cli("report", str(run), "--by", "size")
    assert code == 2 and stderr.strip().endswith("--by size: per_image.csv has no metadata column 'size'; valid: group")


def test_a_run_without_the_new_columns_reports_the_same(run, run_cli, tmp_path):
    """Runs made before per_image.csv marked empty references: the flag comes from the counts."""
    old = tmp_path / "old"
    shutil.copytree(run, old)
    frame = pd.read_csv(old / "per_image.csv", dtype=str, keep_default_na=False)
    frame.drop(columns=["reference_empty", "group"]).to_csv(old / "per_image.csv", index=False)
    texts = []
    for directory in (run, old):
        code, text, stderr = run_cli("report", str(directory), "--no-figures", "--no-timings")
        assert code == 0, stderr
        texts.append(text.replace(str(directory), "RUN"))
    assert texts[0] == texts[1]
    code, _, stderr = run_cli("report", str(old), "--by", "group")
    assert code == 2 and "valid: none: the runs' dataset gives no metadata" in stderr
