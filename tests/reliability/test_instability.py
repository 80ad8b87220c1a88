"""Issue point 3: a NaN/Inf loss or gradient, or an exploding loss, stops that model only, clearly."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from segbench.data.prepare import SplitData
from segbench.io.checkpoints import load_checkpoint
from segbench.engine.device import Runtime
from segbench.engine.training import Checkpointing, TrainingDiverged, train
from segbench.training_settings import TrainingSettings

CPU = Runtime(torch.device("cpu"), "fp32")
from tests.reliability.conftest import cli
from tests.reliability.faulty_plugin import FaultyCNN

MESSAGES = {
    "nan_loss": "loss is nan at epoch {e}, step {s}",
    "inf_loss": "loss is inf at epoch {e}, step {s}",
    "nan_grad": "gradient norm is nan at epoch {e}, step {s}",
    "explode": "loss exploded at epoch {e}, step {s}: ",
}


def _data(n=12, size=16):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, size, size, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, size, size, generator=g) > 0.7).to(torch.uint8).numpy()
    return SplitData([f"s{i}" for i in range(n)], images, masks)


@pytest.mark.parametrize("fault", list(MESSAGES))
def test_divergence_names_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, fault):
    # 12 samples / batch 3 = 4 steps per epoch; step 23 is epoch 6, step 3 (after 20 steps of history).
    model = FaultyCNN(4, 0.0, fault, at_step=23)
    with pytest.raises(TrainingDiverged) as error:
        train(model, _data(), TrainingSettings(epochs=8, batch_size=3), seed=0, runtime=CPU,
              checkpointing=Checkpointing(tmp_path, every_seconds=0))
    assert MESSAGES[fault].format(e=6, s=3) in str(error.value)
    saved = load_checkpoint(tmp_path / "last.pt")
    assert (saved["epoch"], saved["step"]) == (5, 2)  # the last step that was applied
    assert all(torch.isfinite(t).all() for t in saved["model"].values())
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step never reached the weights


def test_explosion_message_gives_factor_median_and_the_remedy():
    with pytest.raises(TrainingDiverged, match=r"more than 1000 times its running median .*explode_factor"):
        train(FaultyCNN(4, 0.0, "explode", at_step=23), _data(), TrainingSettings(epochs=8, batch_size=3), seed=0,
              runtime=CPU)


def test_explode_check_is_configurable_and_can_be_turned_off():
    for factor in (0.0, 1e9):  # off, and a factor the 1e6-fold jump stays under
        config = TrainingSettings(epochs=8, batch_size=3, explode_factor=factor)
        state = train(FaultyCNN(4, 0.0, "explode", at_step=23), _data(), config, seed=0, runtime=CPU)
        assert state.epoch == 8


RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "faulty-cnn,toy-cnn", "--quiet",
       "--image-size", "32", "--epochs", "5", "--checkpoint-every", "0")


@pytest.mark.parametrize("fault", list(MESSAGES))
def test_failed_model_is_marked_everywhere_and_the_run_goes_on(tmp_path, fault):
    out = tmp_path / "run"
    # 24 samples / batch 4 = 6 steps per epoch: step 25 is epoch 5, step 1.
    code, stdout, stderr = cli(*RUN, "--out", str(out), "--set", f"faulty-cnn.fault={fault}",
                               "--set", "faulty-cnn.at_step=25")
    assert code == 0, stderr
    expected = MESSAGES[fault].format(e=5, s=1)
    assert "model faulty-cnn failed: training diverged: " + expected in " ".join(stderr.split())
    assert "checkpoints/faulty-cnn/last.pt is kept" in " ".join(stderr.split())
    models = json.loads((out / "models.json").read_text())
    assert models["faulty-cnn"]["status"] == "failed" and expected in models["faulty-cnn"]["error"]
    assert models["toy-cnn"]["status"] == "done"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    failed = summary[summary["model"] == "faulty-cnn"]
    assert len(failed) > 0 and failed["status"].str.startswith("failed: training diverged: " + expected).all()
    assert (failed["mean"] == "").all()
    assert (summary[summary["model"] == "toy-cnn"]["status"] == "done").all()
    assert set(pd.read_csv(out / "per_image.csv")["model"]) == {"toy-cnn"}
    assert "failed: training diverged: " + expected in (out / "report.md").read_text()
    saved = load_checkpoint(out / "checkpoints/faulty-cnn/last.pt")
    assert (saved["epoch"], saved["step"]) == (4, 0)  # end of epoch 4: the last good state


def test_explode_factor_is_set_per_model_from_the_cli(tmp_path):
    out = tmp_path / "run"
    code, _, stderr = cli(*RUN, "--out", str(out), "--set", "faulty-cnn.fault=explode", "--set", "faulty-cnn.at_step=25",
                          "--set", "faulty-cnn.explode_factor=1e9")
    assert code == 0, stderr
    assert json.loads((out / "models.json").read_text())["faulty-cnn"]["status"] == "done"
