"""Checkpoint selection by validation Dice (`--select best`): the training trajectory is the one `--select
last` trains (no RNG draw, weight or mode changes), the kept weights are those of the best-scored step (the
scores recomputed apart, through evaluation's own path: the pooled Dice), a resumed run keeps the same ones, and the run
records what it selected on which validation masks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segbench.data.labels import labelled_subset
from segbench.data.prepare import SplitData
from segbench.data.views import TrainingView
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.engine.selection import Selection, validation_dice
from segbench.engine.stopping import Stopped
from segbench.engine.training import Checkpointing, train
from segbench.io.checkpoints import load_checkpoint
from segbench.plan.run_plan import EvaluationPlan
from segbench.plugins import load_plugins
from segbench.protocol import score
from segbench.results import read_models
from segbench.results.trained import load_trained
from segbench.training_settings import TrainingSettings
from tests.toy_plugin import ToyCNN

CPU = Runtime(torch.device("cpu"), "fp32")
EVERY = 5  # 12 steps: scored after steps 5, 10 and 12


def _split(n: int, seed: int, prefix: str) -> SplitData:
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 16, 16, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, 16, 16, generator=g) > 0.6).to(torch.uint8).numpy()
    masks[::3] = 0  # some empty references: the empty-mask policy counts
    return SplitData([f"{prefix}/{i}" for i in range(n)], images, masks)


TRAIN, VAL = _split(8, 0, "train"), _split(6, 1, "val")
VAL_VIEW = TrainingView(VAL.ids, VAL.images, VAL.masks)


class Drawing(ToyCNN):
    """Training draws from the global generator (dropout) and has BatchNorm; its predict draws from the
    global generator too (which a plugin should not): selection must change neither the draws nor the modes."""

    def __init__(self) -> None:
        super().__init__(4, 0.0)
        self.norm, self.drop = nn.BatchNorm2d(1), nn.Dropout(0.3)

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.net(self.drop(self.norm(images))), masks)

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        torch.rand(3)
        return torch.sigmoid(self.net(self.drop(self.norm(images))))


def _dice(model: nn.Module) -> float:
    return validation_dice(model, VAL_VIEW, 0.5, 4, run_seed=0, runtime=CPU, model_name="drawing")


def _train(folder, selection: Selection | None, ema: float, resume: bool = False, **options):
    torch.manual_seed(0)
    model = Drawing()
    state = train(model, TRAIN, TrainingSettings(epochs=4, batch_size=3, lr=0.05, ema_decay=ema), seed=5,
                  runtime=CPU, checkpointing=Checkpointing(folder, resume, every_seconds=0), selection=selection,
                  **options)
    return model, state


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_selection_leaves_the_trajectory_alone_and_keeps_the_best_scored_weights(tmp_path, ema):
    last, last_state = _train(tmp_path / "last", None, ema)
    scored: list[dict[str, torch.Tensor]] = []

    def recorded(model: nn.Module) -> float:
        scored.append({k: v.clone() for k, v in model.state_dict().items()})
        return _dice(model)

    best, state = _train(tmp_path / "best", Selection(EVERY, recorded), ema)
    # the trajectory: losses, the last checkpoint's weights, optimiser, EMA and random state
    assert state.losses == last_state.losses
    saved_last, saved_best = load_checkpoint(tmp_path / "last/last.pt"), load_checkpoint(tmp_path / "best/last.pt")
    for key in ("model", "optimizer", "scheduler", "ema", "rng", "recent_losses"):
        assert _equal(saved_last[key], saved_best[key]), key
    assert "selection" not in saved_last and not (tmp_path / "last/best.pt").exists()
    # the weights scored after the last step are those --select last keeps (the EMA's where there is one)
    assert _equal(scored[-1], last.state_dict())
    # every score recomputed through evaluation's own path (predict_split, then the protocol's scoring)
    selected = state.selected
    assert [step for step, _ in selected.scores] == [5, 10, 12]
    recomputed, metrics = [], {"dice": load_plugins().metric("dice")}
    for weights in scored:
        model = Drawing()
        model.load_state_dict(weights)
        probabilities = predict_split(model, VAL, EvaluationPlan(None, 4, 1, 0.5), run_seed=0, runtime=CPU).probabilities
        recomputed.append(score("drawing", VAL.ids, probabilities, VAL.tensors()[1], 0.5, metrics, 0).by_metric["dice"]["pooled"])
    assert [s for _, s in selected.scores] == pytest.approx(recomputed, abs=1e-12)
    first_best = int(np.argmax(recomputed))
    assert selected.step == [5, 10, 12][first_best]
    assert _equal(best.state_dict(), scored[first_best])
    kept = load_checkpoint(tmp_path / "best/best.pt")
    assert kept["step"] == selected.step and _equal(kept["model"], scored[first_best]) and kept["ema"] == {}


def test_a_stopped_and_resumed_selection_keeps_the_same_checkpoint_bytes(tmp_path):
    full, state = _train(tmp_path / "full", Selection(EVERY, _dice), 0.5)
    done: list[int] = []
    with pytest.raises(Stopped):  # stopped after step 7, inside an epoch: between the scorings of steps 5 and 10
        _train(tmp_path / "cut", Selection(EVERY, _dice), 0.5, on_step=lambda step: done.append(step.done),
               should_stop=lambda: done[-1] == 7)
    assert load_checkpoint(tmp_path / "cut/last.pt")["selection"]["scores"] == [[5, state.selected.scores[0][1]]]
    resumed, again = _train(tmp_path / "cut", Selection(EVERY, _dice), 0.5, resume=True)
    assert again.selected.scores == state.selected.scores and again.selected.step == state.selected.step
    assert (tmp_path / "cut/best.pt").read_bytes() == (tmp_path / "full/best.pt").read_bytes()
    assert _equal(resumed.state_dict(), full.state_dict())
    # a finished stage resumed again restores the same kept weights
    finished, _ = _train(tmp_path / "cut", Selection(EVERY, _dice), 0.5, resume=True)
    assert _equal(finished.state_dict(), full.state_dict())


RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-cnn,toy-staged", "--image-size", "32",
       "--labels", "3", "--eval-batch-size", "8", "--quiet")


def test_a_run_records_its_selection_on_at_most_n_validation_masks_apart_from_the_labelled_ones(run_cli, tmp_path,
                                                                                                monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "best"
    code, _, stderr = run_cli(*RUN, "--select", "best", "--select-every", "4", "--out", str(out))
    assert code == 0, stderr
    assert json.loads((out / "config.json").read_text())["plan"]["select"] == "best"
    models = read_models(out)
    cnn, staged = models["toy-cnn"], models["toy-staged"]
    (stage,) = cnn.stages
    assert (stage.selection.every, stage.selection.scorings, stage.selection.validation_masks) == (4, 3, 3)
    assert stage.selection.step in (4, 8, 12) and 0 <= stage.selection.dice <= 1
    assert cnn.labelled_images == 3 and cnn.validation_masks == 3  # beside the labelled images, not among them
    selected = {s.name: s.selection for s in staged.stages}
    assert selected["pretrain"] is None and selected["calibrate"] is None
    assert selected["head"].validation_masks == 3 and selected["head"].network_evaluations == 1
    # the validation masks: drawn as the labels are (labelled.csv lists them), from the val split, at most N
    ids = pd.read_csv(out / "labelled.csv", dtype=str)
    val = ids[ids["split"] == "val"]["sample_id"].tolist()
    assert len(val) == 3 and set(val).isdisjoint(ids[ids["split"] == "train"]["sample_id"])
    assert all(i.startswith("val/") for i in val)
    report = (out / "report.md").read_text()
    assert "**Checkpoint selection**: best validation Dice" in report
    assert f"toy-cnn: step {stage.selection.step} of 12, validation Dice {stage.selection.dice:.4f} on 3 masks" in report
    # the kept weights are what `segbench evaluate` and `segbench predict` load
    network, _, _ = load_trained(out, "toy-cnn", load_plugins(["tests.toy_plugin"]))
    kept = load_checkpoint(out / "checkpoints/toy-cnn/best.pt")
    assert kept["step"] == stage.selection.step and _equal(network.state_dict(), kept["model"])


def test_the_validation_masks_are_the_label_draw_of_the_val_split():
    from segbench.data.views import labelled_view

    view = labelled_view(VAL, 2, 0)
    assert view.ids == [VAL.ids[i] for i in labelled_subset(VAL, 2, 0)] and len(view) == 2
    assert labelled_view(VAL, 20, 0).ids == VAL.ids and labelled_view(VAL, None, 0).ids == VAL.ids


def test_select_last_is_the_default_and_records_it(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "last"
    code, _, stderr = run_cli(*RUN, "--out", str(out))
    assert code == 0, stderr
    assert json.loads((out / "config.json").read_text())["plan"]["select"] == "last"
    assert not list(out.rglob("best.pt"))
    assert all(s.selection is None for m in read_models(out).values() for s in m.stages)
    assert "**Checkpoint selection**: last (each stage's final weights)" in (out / "report.md").read_text()
    assert pd.read_csv(out / "labelled.csv", dtype=str)["split"].tolist() == ["train"] * 3


@pytest.mark.parametrize(("args", "message"), [
    (("--select", "bset"), "unknown --select rule 'bset'"),
    (("--select-every", "3"), "--select-every sets how often --select best"),
    (("--select", "best", "--select-every", "0"), "--select-every must be at least 1"),
    (("--select", "best", "--folds", "missing.json", "--fold", "0"), "--select best scores checkpoints on the validation"),
])
def test_selection_options_are_checked(run_cli, args, message):
    code, _, stderr = run_cli("run", "--task", "infection", "--dataset", "toy", "--models", "toy-cnn", *args)
    assert code != 0 and message in stderr


class _Fixed(nn.Module):
    """Predicts the probabilities it was given, whatever the image."""

    def __init__(self, probabilities: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("probabilities", probabilities)

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        index = (images.flatten(1)[:, 0] * 255).round().long()  # the image's id, written into its first pixel
        return self.probabilities[index]


def test_validation_dice_is_pooled_over_every_pixel_and_a_collapsed_model_scores_zero() -> None:
    images = VAL.images.copy()
    images[:, 0, 0] = np.arange(len(images))
    view = TrainingView(VAL.ids, images, VAL.masks)
    guess = torch.from_numpy(np.random.default_rng(3).random((len(images), 1, 16, 16))).float()
    pred, ref = guess.numpy()[:, 0] >= 0.5, VAL.masks > 0
    tp, fp, fn = (pred & ref).sum(), (pred & ~ref).sum(), (~pred & ref).sum()
    score = validation_dice(_Fixed(guess), view, 0.5, 4, run_seed=0, runtime=CPU, model_name="fixed")
    assert score == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    # predicting nothing: per-image mean Dice would give the empty references' share (1/3); pooled gives 0
    assert validation_dice(_Fixed(torch.zeros_like(guess)), view, 0.5, 4, run_seed=0, runtime=CPU,
                           model_name="fixed") == 0.0
