"""Every refusal a request can meet comes before `--out` is touched and before any model trains: one line that
names the model and, where one exists, the `--set` that fixes it."""

from __future__ import annotations

import pytest

from segbench.engine import training

RUN = ("run", "--dataset", "toy-mixed", "--preset", "tiny", "--image-size", "32", "--quiet")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # a model of anomalies on a task whose healthy images show the target: after the data, before unet trains
        (("--task", "lung", "--dataset", "cxr-phantom", "--models", "unet,anomaly-ddpm"),
         ["model anomaly-ddpm:", "healthy images", "infection, not lung"]),
        # a budget at or above the training set is `all` by another name
        (("--task", "infection", "--models", "unet", "--labels", "999999"),
         ["--labels 999999", "the train split has", "use --labels all"]),
        (("--task", "infection", "--models", "unet,diff-add", "--image-size", "48", "--preset", "small"),
         ["model 'diff-add'", "attention_resolutions contains 16", "--set diff-add.attention_resolutions=12"]),
        (("--task", "infection", "--models", "ddpm-features", "--set", "ddpm-features.ensemble_size=0"),
         ["model 'ddpm-features'", "ensemble_size=0", "--set ddpm-features.ensemble_size=VALUE"]),
        (("--task", "infection", "--models", "ddpm-features", "--set", "ddpm-features.ddpm.steps=abc"),
         ["--set ddpm-features.ddpm.steps='abc'", "expected a value like 24"]),
        (("--task", "infection", "--models", "anomaly-ddpm", "--set", "anomaly-ddpm.calibration.steps=3"),
         ["anomaly-ddpm.calibration.steps", "fitted once, without an optimiser", "stages that train: ddpm"]),
        (("--task", "infection", "--models", "ddpm-features", "--set", "ddpm-features.nope.steps=3"),
         ["has no stage 'nope'", "ddpm, mlp"]),
    ],
)
def test_refused_before_out_is_written(run_cli, tmp_path, monkeypatch, args, expected):
    def no_training(self, batch):
        raise AssertionError("a model trained before the refusal")

    monkeypatch.setattr(training._Trainer, "step", no_training)
    out = tmp_path / "run"
    code, _, stderr = run_cli(*RUN, *args, "--out", str(out))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert not out.exists()
