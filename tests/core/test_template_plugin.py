"""The template third-party plugin works as shipped, through the --plugin route: its model, and its mask
metric from a run to a re-scored report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segbench.metrics.masks import MaskPair
from tests.conftest import repo_root


@pytest.fixture
def template(monkeypatch):
    monkeypatch.syspath_prepend(str(repo_root() / "plugins" / "segbench-template"))
    from segbench.plugins import load_plugins

    return load_plugins(["segbench_template"])


def test_template_plugin(template):
    from segbench.testing import check_metric, check_model

    assert template.model("template-fcn").plugin == "segbench_template"
    check_model(template.model("template-fcn"))
    check_metric(template.metric("components"))


def test_template_metric_counts_components(template):
    prediction, reference = np.zeros((12, 12), bool), np.zeros((12, 12), bool)
    prediction[1:3, 1:3] = prediction[6:8, 6:8] = prediction[9, 0] = True  # three, one touching the border
    reference[2:9, 2:9] = True
    reference[10, 11] = reference[11, 10] = True  # diagonal neighbours: one 8-connected component
    fn = template.metric("components").fn
    assert fn(MaskPair(prediction, reference, np.zeros((12, 12), np.float32))) == 1.0
    assert fn(MaskPair(prediction, np.zeros_like(reference), np.zeros((12, 12), np.float32))) == 3.0


def test_a_mask_metric_plugin_end_to_end(template, run_cli, tmp_path):
    """Registered while a run is made, the metric is scored per image and reported; installed later, it
    re-scores a run that lacks it from its saved predictions."""
    out = tmp_path / "run"
    code, _, stderr = run_cli("--plugin", "segbench_template", "run", "--task", "lung", "--dataset", "toy",
                              "--models", "toy-cnn", "--epochs", "1", "--image-size", "32", "--quiet", "--out", str(out))
    assert code == 0, stderr
    frame = pd.read_csv(out / "per_image.csv")
    assert "components" in frame and (frame["components"] >= 0).all()
    assert "| components |" in (out / "report.md").read_text()
    assert "components: an empty mask has no components" in (out / "report.md").read_text()
    summary = pd.read_csv(out / "summary.csv").set_index("metric")
    assert summary.loc["components", "mean"] == pytest.approx(frame["components"].mean())
    assert np.isnan(summary.loc["components", "pooled"])
    (out / "per_image.csv").write_text(frame.drop(columns="components").to_csv(index=False))
    summary.drop(index="components").reset_index().to_csv(out / "summary.csv", index=False)
    code, report, stderr = run_cli("--plugin", "segbench_template", "report", str(out), "--metrics", "dice,components,hd95",
                                   "--no-figures")
    assert code == 0, stderr
    row = next(line for line in report.splitlines() if line.startswith("| components |"))
    assert float(row.split("|")[2].split()[0].strip("*")) == pytest.approx(frame["components"].mean())
