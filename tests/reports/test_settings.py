"""What a report says about training: the label budget and labels seed in its header, each stage's settings of
a model trained in stages (a stage fitted without an optimiser said as such, in the order the cost table
gives the stages, with its training FLOPs), and each stage's losses in the losses figure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from segbench.plan.run_plan import ModelPlan
from segbench.training_settings import TrainingSettings
from segbench.reports.figures import losses
from segbench.reports.settings import MODEL_COLUMNS, header_items, hyperparameter_items, model_rows
from segbench.results import ModelRecord, RunResults
from segbench.results.record import StageRecord
from tests.reports.conftest import literal_results

DDPM = TrainingSettings(epochs=None, steps=1200, batch_size=16, lr=0.0002)
MLP = TrainingSettings(epochs=3, batch_size=8, lr=0.001)


def _stage(name: str, steps: int, batch: int | None, stage_losses: list[float], view: str = "images",
           step_flops: int | None = None) -> StageRecord:
    return StageRecord(name, view, "train", 480, 16 if view == "labelled" else 0, steps, len(stage_losses), batch,
                       stage_losses, 1.0, 1000 if batch else 0, step_flops=step_flops,
                       training_flops=steps * step_flops if step_flops else 0)


def staged_results() -> RunResults:
    """literal_results with its models replaced by one trained in three stages, as config.json (the plan) and
    models.json record them: two stages with an optimiser, then one fitted once (no settings in the plan)."""
    results = literal_results()
    plan = results.record.plan
    model = ModelPlan("features", "unconditional", "diffusion", {"base_channels": 32}, None,
                      stages={"ddpm": DDPM, "mlp": MLP})
    results.record = replace(results.record, plan=replace(plan, models=(model,)))
    results.models = {"features": ModelRecord(status="done", parameters=2_000_000, parameters_trained=2_000_000, stages=[
        _stage("ddpm", 1200, 16, [0.3, 0.1, 0.05], step_flops=2_000_000_000),
        _stage("mlp", 6, 8, [0.7, 0.5, 0.4], "labelled", step_flops=500_000_000),
        _stage("calibration", 0, None, [], "healthy")])}
    return results


@pytest.mark.parametrize(("labels", "seed", "budget", "seed_text"), [
    (None, 0, "all (480 images)", "0 (unused: every training image is labelled)"),
    (16, 3, "16 of 480 images", "3"),
])
def test_the_header_gives_the_label_budget_and_the_labels_seed(labels, seed, budget, seed_text):
    results = literal_results()
    plan = results.record.plan
    results.record = replace(results.record, plan=replace(plan, data=replace(plan.data, labels=labels, labels_seed=seed)))
    items = dict(header_items(results))
    assert (items["Label budget"], items["Labels seed"]) == (budget, seed_text)


def test_a_staged_model_gives_each_stage_its_settings_in_the_order_of_its_cost():
    results = staged_results()
    ((name, text),) = hyperparameter_items(results)
    assert name == "features" and text == (
        "base_channels=32; "
        "ddpm: steps=1200, batch_size=16, lr=0.0002, weight_decay=0.0001, warmup_fraction=0.05, grad_clip=1.0, "
        "ema_decay=0.0, explode_factor=1000.0; "
        "mlp: epochs=3, batch_size=8, lr=0.001, weight_decay=0.0001, warmup_fraction=0.05, grad_clip=1.0, "
        "ema_decay=0.0, explode_factor=1000.0; "
        "calibration: fitted once, no optimiser")
    (row,) = model_rows(results)
    cost = row[MODEL_COLUMNS.index("Training: steps x batch, s")]
    assert cost == "ddpm: 1200 x 16, 1.0 s; mlp: 6 x 8, 1.0 s; calibration: fit on 480 images"
    # steps x one step's FLOPs, in TFLOP: 2.4 + 0.003, and none for the stage fitted without an optimiser
    assert row[MODEL_COLUMNS.index("Training TFLOP")] == "2.4 (ddpm: 2.4; mlp: 0.003; calibration: –)"
    (old,) = model_rows(literal_results())[:1]  # a run from before training FLOPs were counted
    assert old[MODEL_COLUMNS.index("Training TFLOP")] == "–"


def test_a_model_in_one_stage_gives_its_training_settings():
    ((name, text), *_) = hyperparameter_items(literal_results())
    assert name == "unet" and text.startswith("decoder_channels=[256, 128, 64, 32, 16]; training: epochs=20, batch_size=16")


def test_the_losses_figure_draws_each_stage_of_a_staged_model_alone():
    results = staged_results()
    figure, caption = losses.plot(results)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["features/ddpm", "features/mlp"]  # calibration has no losses
    assert [list(ax.lines[0].get_ydata()) for ax in panels] == [[0.3, 0.1, 0.05], [0.7, 0.5, 0.4]]
    assert "MODEL/STAGE" in caption


def test_the_losses_figure_wraps_many_panels_into_rows():
    results = staged_results()
    results.models = {f"m{i}": ModelRecord(status="done", losses=[1.0, 0.5]) for i in range(6)}
    figure, caption = losses.plot(results)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [f"m{i}" for i in range(6)]
    assert len({ax.get_position().y0 for ax in panels}) == 2 and "MODEL/STAGE" not in caption
