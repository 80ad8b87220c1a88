"""Ensemble fusion (`segbench.fusion`) against independent computations: a hand-made vote with a tie, entropy
values, STAPLE on a case with a known answer and against a numpy EM written from Warfield et al. 2004,
`predict_split` fusing exactly the members it predicted (mean: today's bytes), and `--fusion paper` fusing each
model by its spec's rule."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.errors import SegbenchError
from segbench.fusion import BELOW_HALF, RULES, binary_entropy, fuse, staple_posterior
from segbench.plan.request import check_fusion
from segbench.plan.run_plan import FUSIONS, EvaluationPlan
from segbench.plugins import load_plugins
from segbench.results.store import prediction_file
from segbench.specs import ModelSpec


def test_every_named_fusion_has_a_rule():
    assert list(RULES) == list(FUSIONS)


def test_binary_entropy_in_nats():
    p = torch.tensor([0.0, 0.25, 0.5, 2 / 3, 1.0], dtype=torch.float64)
    by_hand = [0.0, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2),
               -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)), 0.0]
    assert binary_entropy(p).tolist() == pytest.approx(by_hand, abs=1e-15)


def test_vote_is_the_majority_with_a_tie_as_background():
    # 4 members x 6 pixels; a member votes foreground where p >= 0.5 (0.5 itself counts)
    members = torch.tensor([[0.9, 0.1, 0.6, 0.5, 0.0, 0.7],
                            [0.8, 0.2, 0.4, 0.5, 0.1, 0.2],
                            [0.7, 0.3, 0.3, 0.6, 0.2, 0.1],
                            [0.6, 0.6, 0.9, 0.4, 0.3, 0.0]]).view(1, 4, 1, 1, 6)
    probabilities, uncertainty = fuse("vote", members, 0.5)
    votes = [4, 1, 2, 3, 0, 1]
    assert probabilities.flatten().tolist() == [1.0, 0.25, BELOW_HALF, 0.75, 0.0, 0.25]
    assert BELOW_HALF == np.nextafter(np.float32(0.5), np.float32(0))
    assert (probabilities.flatten() >= 0.5).tolist() == [2 * v > 4 for v in votes]  # the tie (2:2) is background
    entropy = [-(v / 4 * math.log(v / 4) if v else 0) - ((1 - v / 4) * math.log(1 - v / 4) if v < 4 else 0)
               for v in votes]
    assert uncertainty.flatten().tolist() == pytest.approx(entropy, abs=1e-6)


def test_vote_of_three_members_has_no_tie():
    members = torch.tensor([[0.9, 0.1], [0.6, 0.7], [0.2, 0.3]]).view(1, 3, 1, 1, 2)
    probabilities, _ = fuse("vote", members, 0.5)
    assert probabilities.flatten().tolist() == pytest.approx([2 / 3, 1 / 3])


def _staple_em(masks: np.ndarray, iterations: int) -> np.ndarray:
    """Warfield et al. 2004's binary STAPLE, written from the paper: D (K raters, pixels); prior f = the mean of
    D; start from W = the raters' mean; M-step sensitivity p_j = sum W D_j / sum W, specificity q_j =
    sum (1 - W)(1 - D_j) / sum (1 - W); E-step W = f a / (f a + (1 - f) b), a = prod_j p_j^D (1 - p_j)^(1 - D),
    b = prod_j q_j^(1 - D) (1 - q_j)^D."""
    d = masks.reshape(len(masks), -1).astype(np.float64)
    prior, w = d.mean(), d.mean(0)
    for _ in range(iterations):
        p = (d * w).sum(1) / w.sum()
        q = ((1 - d) * (1 - w)).sum(1) / (1 - w).sum()
        a = prior * np.prod(np.where(d == 1, p[:, None], 1 - p[:, None]), 0)
        b = (1 - prior) * np.prod(np.where(d == 0, q[:, None], 1 - q[:, None]), 0)
        w = a / (a + b)
    return w.reshape(masks.shape[1:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_staple_matches_the_em_of_the_paper(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random((8, 8)) < 0.4
    flips = rng.random((5, 8, 8)) < np.array([0.05, 0.1, 0.2, 0.3, 0.45])[:, None, None]  # raters of falling quality
    masks = truth ^ flips
    # ITK stops where its estimates settle: with as many EM steps as it took, the paper's EM agrees to rounding
    itk = sitk.STAPLEImageFilter()
    itk.SetForegroundValue(1)
    itk.Execute([sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks])
    steps = itk.GetElapsedIterations() + 1  # ITK counts the M-steps after its first
    np.testing.assert_allclose(staple_posterior(masks), _staple_em(masks, steps), rtol=0, atol=1e-12)
    np.testing.assert_allclose(staple_posterior(masks), _staple_em(masks, 3000), rtol=0, atol=1e-3)


def test_staple_of_two_agreeing_raters_and_a_random_one_is_the_agreeing_pair():
    rng = np.random.default_rng(3)
    truth = rng.random((16, 16)) < 0.3
    members = torch.from_numpy(np.stack([truth * 0.8, truth * 0.6 + 0.1, rng.random((16, 16))])).float()
    probabilities, uncertainty = fuse("staple", members.view(1, 3, 1, 16, 16), 0.5)
    assert torch.equal(probabilities[0, 0], torch.from_numpy(truth).float())
    assert uncertainty.abs().max() == 0


def test_staple_of_unanimous_members_is_their_mask():
    empty, full = np.zeros((3, 4, 4), bool), np.ones((3, 4, 4), bool)
    assert staple_posterior(empty).max() == 0 and staple_posterior(full).min() == 1


class _Store:
    """A BatchStore that keeps each member's probabilities: what the fusion must be computed from."""

    def __init__(self) -> None:
        self.members: dict[tuple[str, int], np.ndarray] = {}

    def get(self, key):
        return None

    def commit(self, keys, probabilities, uncertainty) -> None:
        self.members.update({key: probabilities[i].numpy().copy() for i, key in enumerate(keys)})


class _Sampler(torch.nn.Module):
    """A mask per seed: uniform noise drawn from the sample's generator."""

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.rand(images.shape[1:], generator=torch.Generator().manual_seed(int(s)))
                            for s in seeds])


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_predict_split_fuses_each_sample_from_its_own_members(fusion):
    k, n = 4, 5
    data = SplitData([f"s{i}" for i in range(n)], np.zeros((n, 8, 8), np.uint8), np.zeros((n, 8, 8), np.uint8))
    store = _Store()
    fused = predict_split(_Sampler(), data, EvaluationPlan(None, 3, k, 0.5, fusion=fusion), run_seed=1,
                          runtime=Runtime(torch.device("cpu"), "fp32"), committed=store)
    members = torch.from_numpy(np.stack([[store.members[(f"s{i}", j)] for j in range(k)] for i in range(n)]))
    if fusion == "mean":  # today's bytes
        expected = members.mean(1), members.std(1, correction=0)
    elif fusion == "vote":
        votes = (members >= 0.5).sum(1).double()
        expected = (votes / k).float().masked_fill(votes == k / 2, BELOW_HALF), binary_entropy(votes / k).float()
    else:
        posterior = torch.from_numpy(np.stack([staple_posterior((m[:, 0] >= 0.5).numpy()) for m in members])).float()
        expected = posterior.unsqueeze(1), binary_entropy(posterior).unsqueeze(1)
    assert torch.equal(fused.probabilities, expected[0])
    torch.testing.assert_close(fused.uncertainty, expected[1], rtol=0, atol=0 if fusion == "mean" else 1e-6)


PAPER_RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "medsegdiff,diff-add", "--preset", "tiny",
             "--image-size", "32", "--steps", "2", "--ensemble", "2", "--eval-samples", "4", "--eval-batch-size", "4",
             "--quiet")


def _fused_outputs(run: Path, model: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """A model's saved probabilities and uncertainty, and its per-image rows."""
    with np.load(run / prediction_file(model), allow_pickle=False) as npz:
        probabilities, uncertainty = npz["probabilities"], npz["uncertainty"]
    rows = pd.read_csv(run / "per_image.csv")
    return probabilities, uncertainty, rows[rows["model"] == model].reset_index(drop=True)


def _same(a: tuple[np.ndarray, np.ndarray, pd.DataFrame], b: tuple[np.ndarray, np.ndarray, pd.DataFrame]) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2].equals(b[2])


def test_paper_fusion_fuses_each_model_by_its_papers_rule(tmp_path, run_cli):
    """Under --fusion paper, medsegdiff's members are fused exactly as --fusion staple fuses them and diff-add's as
    --fusion mean does (the same trained models, re-fused by `segbench evaluate`), and not the other way round."""
    paper = tmp_path / "paper"
    code, _, stderr = run_cli(*PAPER_RUN, "--fusion", "paper", "--out", str(paper))
    assert code == 0, stderr
    for rule in ("staple", "mean"):
        code, _, stderr = run_cli("evaluate", str(paper), "--fusion", rule, "--out", str(tmp_path / rule), "--quiet")
        assert code == 0, stderr
    outputs = {(run, model): _fused_outputs(tmp_path / run, model)
               for run in ("paper", "staple", "mean") for model in ("medsegdiff", "diff-add")}
    assert _same(outputs["paper", "medsegdiff"], outputs["staple", "medsegdiff"])
    assert _same(outputs["paper", "diff-add"], outputs["mean", "diff-add"])
    assert not _same(outputs["paper", "medsegdiff"], outputs["mean", "medsegdiff"])
    assert not _same(outputs["paper", "diff-add"], outputs["staple", "diff-add"])
    assert json.loads((paper / "config.json").read_text())["plan"]["evaluation"]["fusion"] == "paper"
    assert {m: r.get("fusion") for m, r in json.loads((paper / "models.json").read_text()).items()} == \
        {"medsegdiff": "staple", "diff-add": "mean"}
    assert ("**Ensemble size**: 2, fused by each model's paper's rule: medsegdiff STAPLE, Warfield et al. 2004 "
            "(uncertainty: entropy of its posterior); diff-add mean (uncertainty: std)") in (paper / "report.md").read_text()
    assert "fusion" not in json.loads((tmp_path / "mean" / "models.json").read_text())["diff-add"]


def test_check_fusion_names_paper_and_needs_an_ensemble(monkeypatch):
    registry = load_plugins()
    medsegdiff, diff_add = registry.model("medsegdiff"), registry.model("diff-add")
    with pytest.raises(SegbenchError, match=r"unknown --fusion rule 'median'.*valid: mean, paper, staple, vote"):
        check_fusion("median", 2, [diff_add])
    with pytest.raises(SegbenchError, match=r"--fusion paper fuses an ensemble.*--ensemble K with K >= 2"):
        check_fusion("paper", 1, [diff_add])
    check_fusion("paper", 2, [medsegdiff, diff_add])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # SimpleITK missing
    check_fusion("paper", 2, [diff_add])  # diff-add's paper averages: no STAPLE, no SimpleITK needed
    with pytest.raises(SegbenchError, match=r"--fusion paper \(fusing medsegdiff by staple\) needs SimpleITK: "
                                            r"pip install 'segbench\[staple\]'"):
        check_fusion("paper", 2, [medsegdiff, diff_add])


def test_the_built_in_models_name_their_papers_fusion(run_cli):
    registry = load_plugins()
    assert registry.model("medsegdiff").fusion == "staple"
    assert {registry.model(m).fusion for m in ("diff-concat-wolleb", "diff-add", "unet", "medsegdiff:direct")} == {"mean"}
    code, stdout, _ = run_cli("info", "medsegdiff", "--preset", "tiny", "--image-size", "32")
    assert code == 0 and "paper's ensemble fusion: staple" in stdout


def test_a_model_spec_with_an_unknown_fusion_is_refused():
    with pytest.raises(SegbenchError, match=r"model 'x' has fusion 'median'; valid: mean, vote, staple"):
        ModelSpec("x", lambda params: None, "cnn", {}, "a model", fusion="median")
