"""Every built-in metric against scikit-learn, per image, on random and edge-case masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from segbench import MetricSpec
from segbench.metrics import bootstrap_ci, confusion_counts, safe_ratio
from segbench.metrics.builtin import BUILTIN_METRICS
from segbench.metrics.statistics import per_image, summarise

SIZE = 8


def _sklearn(name: str, pred: np.ndarray, ref: np.ndarray) -> float:
    """The metric computed independently by scikit-learn, with the empty-mask policy for 0/0."""
    perfect = float(np.array_equal(pred, ref))
    labels = [0, 1]
    if name == "dice":
        return skm.f1_score(ref, pred, zero_division=perfect)
    if name == "jaccard":
        return skm.jaccard_score(ref, pred, zero_division=perfect)
    if name == "accuracy":
        return skm.accuracy_score(ref, pred)
    if name == "sensitivity":
        return skm.recall_score(ref, pred, zero_division=perfect)
    if name == "specificity":
        return skm.recall_score(1 - ref, 1 - pred, zero_division=perfect)
    if name == "precision":
        return skm.precision_score(ref, pred, zero_division=perfect)
    if name == "balanced_accuracy":
        return (_sklearn("sensitivity", pred, ref) + _sklearn("specificity", pred, ref)) / 2
    if name == "mcc":
        tn, fp, fn, tp = skm.confusion_matrix(ref, pred, labels=labels).ravel()
        if 0 in (tp + fp, tp + fn, tn + fp, tn + fn):  # sklearn returns 0 here; the policy decides
            return perfect
        return skm.matthews_corrcoef(ref, pred)
    raise KeyError(name)


def _cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    empty, full = np.zeros((SIZE, SIZE), np.uint8), np.ones((SIZE, SIZE), np.uint8)
    one = empty.copy()
    one[3, 4] = 1
    other = empty.copy()
    other[0, 0] = 1
    cases = [(empty, empty), (full, full), (empty, full), (full, empty), (one, empty), (empty, one),
             (one, one), (one, other), (full, one), (one, full)]
    for p in (0.05, 0.3, 0.5, 0.9):
        for _ in range(5):
            cases.append(((rng.random((SIZE, SIZE)) < p).astype(np.uint8), (rng.random((SIZE, SIZE)) < 0.4).astype(np.uint8)))
    return cases


@pytest.fixture  # per test (cheap), so that a mutation tester sees which tests compute which metric
def computed():
    cases = _cases()
    preds = torch.tensor(np.stack([p for p, _ in cases]), dtype=torch.float32)
    refs = torch.tensor(np.stack([r for _, r in cases]), dtype=torch.float32)
    counts = confusion_counts(preds, refs)
    specs = {fn.__name__: MetricSpec(fn.__name__, fn, "") for fn in BUILTIN_METRICS}
    return cases, counts, per_image(counts, specs), specs


@pytest.mark.parametrize("name", [fn.__name__ for fn in BUILTIN_METRICS])
def test_metric_matches_sklearn(computed, name):
    cases, _, values, _ = computed
    expected = [_sklearn(name, p.ravel(), r.ravel()) for p, r in cases]
    np.testing.assert_allclose(values[name], expected, rtol=0, atol=1e-12)  # float64: float32 is 1e-8 off


def test_confusion_counts_sum_to_pixels(computed):
    _, counts, _, _ = computed
    assert torch.equal(sum(counts), torch.full_like(counts.tp, SIZE * SIZE))


def test_threshold_is_inclusive_at_half():
    probs = torch.tensor([[0.5, 0.4999, 1.0, 0.0]])
    ref = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    tp, fp, fn, tn = confusion_counts(probs, ref)
    assert (tp.item(), fp.item(), fn.item(), tn.item()) == (1, 1, 1, 1)


def test_empty_mask_policy_both_empty_is_perfect(computed):
    _, _, values, _ = computed
    assert values["dice"][0] == 1.0 and values["jaccard"][0] == 1.0  # both empty
    assert values["dice"][2] == 0.0 and values["dice"][4] == 0.0  # one empty


def test_safe_ratio_resolves_only_zero_over_zero_by_the_policy():
    """1 where fp + fn == 0 (prediction equals reference), else 0, whatever num and the other counts are."""
    num, den = torch.tensor([0.0, 0.0, 0.0, 3.0]), torch.tensor([0.0, 0.0, 0.0, 4.0])
    fp, fn = torch.tensor([0, 1, 2, 1]), torch.tensor([0, 1, 0, 1])
    assert safe_ratio(num, den, fp, fn).tolist() == [1.0, 0.0, 0.0, 0.75]


def test_pooled_equals_metric_of_summed_counts(computed):
    cases, counts, _, specs = computed
    pred = np.concatenate([p.ravel() for p, _ in cases])
    ref = np.concatenate([r.ravel() for _, r in cases])
    summary = summarise(per_image(counts, specs), counts, specs, seed=0)
    assert summary["dice"]["pooled"] == pytest.approx(skm.f1_score(ref, pred))
    assert summary["mcc"]["pooled"] == pytest.approx(skm.matthews_corrcoef(ref, pred))


def test_bootstrap_ci_is_seeded_and_brackets_mean():
    values = np.random.default_rng(1).random(200)
    first, again = bootstrap_ci(values, seed=7), bootstrap_ci(values, seed=7)
    assert first == again
    assert first != bootstrap_ci(values, seed=8)
    assert first[0] < values.mean() < first[1]
    # The CI of the mean shrinks like 1/sqrt(n): for U(0,1), half-width ~ 1.96 * 0.2887 / sqrt(200) = 0.040.
    assert (first[1] - first[0]) / 2 == pytest.approx(0.040, rel=0.2)
