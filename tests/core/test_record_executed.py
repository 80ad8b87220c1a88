"""A run's record says what ran (registry-driven): for every built-in model, the optimiser steps, batch size
and learning rate each stage's optimiser actually ran (spied on the training loop) equal what config.json
and models.json record for that stage; the CLI's training options reach every trained stage, a
`--set MODEL.STAGE.KEY` wins over them for its stage, and a stage fitted once records no training settings;
every stage records its training FLOPs, which the cost table gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segbench.engine import training
from segbench.plan.build import trained_stages
from segbench.plugins import load_plugins
from segbench.reports.settings import MODEL_COLUMNS
from segbench.training_settings import ema_decay_for
from tests.reliability.conftest import cli

_REGISTRY = load_plugins()
BUILTIN = [("smp:FPN:resnet18" if spec.prefix else name)
           for name, spec in sorted(_REGISTRY.specs["models"].items()) if not spec.plugin.startswith("tests.")]
# The default suite runs the built-in models in several stages and the main job's U-Net; the slow one all.
DEFAULT_SUITE = ["unet", *(name for name in BUILTIN if trained_stages(_REGISTRY.model(name)))]
SUITES = [pytest.param(DEFAULT_SUITE, id="staged"), pytest.param(BUILTIN, id="all", marks=pytest.mark.slow)]
STEPS, BATCH, LR = 3, 4, 0.002
STAGE_STEPS = 2  # the first trained stage of each model in several stages, through --set MODEL.STAGE.steps
EMA = 0.999  # and its EMA decay, which the engine caps to the stage's 2 steps (ema_decay_for)


@pytest.fixture(scope="module", params=SUITES)
def executed(request, tmp_path_factory) -> tuple[list[str], Path, list[dict]]:
    """One run of the suite's models with --steps/--batch-size/--lr, and per optimiser (one per trained
    stage, in order) the batches it stepped on and its learning rate."""
    names = request.param
    ran: list[dict] = []
    original = training._Trainer.step

    def spy(self, batch):
        if not ran or ran[-1]["trainer"] is not self:
            group = self.optimizer.param_groups[0]
            ran.append({"trainer": self, "lr": group["initial_lr"], "batches": [],
                        "ema": self.ema.decay if self.ema is not None else 0.0})
        ran[-1]["batches"].append(len(batch))
        return original(self, batch)

    sets = [f"--set={name}.{stage}.{key}" for name in names if trained_stages(_REGISTRY.model(name))
            for stage in trained_stages(_REGISTRY.model(name))[:1] for key in (f"steps={STAGE_STEPS}", f"ema_decay={EMA}")]
    out = tmp_path_factory.mktemp("executed") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training._Trainer, "step", spy)
        patch.setenv("SEGBENCH_CACHE", str(out.parent / "cache"))  # every stage trains: none is reused from another run
        code, _, stderr = cli("run", "--task", "infection", "--dataset", "toy-mixed", "--models", ",".join(names),
                              "--preset", "tiny", "--image-size", "32", "--eval-samples", "2", "--quiet",
                              "--steps", str(STEPS), "--batch-size", str(BATCH), "--lr", str(LR), *sets,
                              "--out", str(out))
    assert code == 0, stderr
    return names, out, ran


def test_every_trained_stage_records_what_its_optimiser_ran(executed) -> None:
    names, out, ran = executed
    config = {m["name"]: m for m in json.loads((out / "config.json").read_text())["plan"]["models"]}
    models = json.loads((out / "models.json").read_text())
    expected = []
    for name in names:
        spec, recorded = _REGISTRY.model(name), config[name]
        stages = trained_stages(spec)
        if stages is None:
            assert "stages" not in recorded
            expected.append((name, "train", recorded["training"], STEPS))
            continue
        assert "training" not in recorded  # no setting that no stage ran
        assert list(recorded["stages"]) == list(stages)
        expected += [(name, stage, recorded["stages"][stage], STAGE_STEPS if i == 0 else STEPS)
                     for i, stage in enumerate(stages)]
        for stage in spec.stages:
            if stage.fit:
                record = next(r for r in models[name]["stages"] if r["name"] == stage.name)
                assert stage.name not in recorded["stages"] and record["steps"] == 0 and record["batch_size"] is None
                assert f"{stage.name}: fitted once, no optimiser" in _report_line(out, f"- **{name}**:")
    assert len(ran) == len(expected)
    for (name, stage, settings, steps), optimiser in zip(expected, ran):
        record = next((r for r in models[name].get("stages") or [] if r["name"] == stage), models[name])
        assert len(optimiser["batches"]) == steps == settings["steps"] == record["steps"], (name, stage)
        assert max(optimiser["batches"]) == BATCH == settings["batch_size"], (name, stage)
        assert record.get("batch_size", BATCH) == BATCH, (name, stage)
        assert optimiser["lr"] == LR == settings["lr"], (name, stage)
        capped = ema_decay_for(settings["ema_decay"], steps)
        assert optimiser["ema"] == capped and record.get("ema_decay_used", capped) in (capped, None), (name, stage)
        if stage != "train" and capped != settings["ema_decay"]:
            assert record["ema_decay_used"] == capped
            assert f"{name}/{stage}: {capped:.4g}" in _report_line(out, "- **EMA decay**:"), (name, stage)
        said = f"steps={steps}, batch_size={BATCH}, lr={LR}"
        cost = f"{steps} x {BATCH}"
        if trained_stages(_REGISTRY.model(name)) is not None:
            said, cost = f"{stage}: {said}", f"{stage}: {cost}"
        assert said in _report_line(out, f"- **{name}**:") and cost in _report_line(out, f"| {name} | tiny |"), stage


def test_every_stage_records_its_training_flops_and_the_cost_table_gives_them(executed) -> None:
    """A trained stage: steps x the FLOPs of one step (counted: positive); a stage fitted once: 0, no step."""
    names, out, _ = executed
    models = json.loads((out / "models.json").read_text())
    column = MODEL_COLUMNS.index("Training TFLOP")
    for name in names:
        stages = models[name]["stages"]
        for stage in stages:
            if stage["batch_size"] is None:
                assert stage["step_flops"] is None and stage["training_flops"] == 0, (name, stage["name"])
            else:
                assert stage["step_flops"] > 0, (name, stage["name"])
                assert stage["training_flops"] == stage["steps"] * stage["step_flops"], (name, stage["name"])
        cell = _report_line(out, f"| {name} | tiny |").split(" | ")[column]
        assert cell.split(" (")[0] == f"{sum(stage['training_flops'] for stage in stages) / 1e12:.3g}", (name, cell)
        assert all(f"{stage['name']}: –" in cell for stage in stages if stage["batch_size"] is None), (name, cell)


def _report_line(out: Path, start: str) -> str:
    """The line of report.md that starts with `start` (a model's settings line or its cost-table row)."""
    return next(line for line in (out / "report.md").read_text().splitlines() if line.startswith(start))
