"""A model that synthesises images (`synthesize(seeds)`): the run keeps 16 of them, drawn from seeds of the
run, and the report shows them beside real test images, saying why there is no FID/KID without Inception
weights on disk (nothing is downloaded)."""

from __future__ import annotations

import numpy as np

from segbench.results import read_models
from tests.reliability.conftest import cli

RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-staged,toy-cnn", "--image-size", "32",
       "--quiet")


def test_synthetic_images_are_kept_and_shown_beside_real_ones(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGBENCH_INCEPTION_WEIGHTS", raising=False)
    out = tmp_path / "run"
    code, _, stderr = cli(*RUN, "--out", str(out))
    assert code == 0, stderr
    with np.load(out / "synthetic/toy-staged.npz") as stored:
        images = stored["images"]
    assert images.shape == (16, 32, 32) and images.dtype == np.uint8 and len(np.unique(images.reshape(16, -1), axis=0)) == 16
    assert not (out / "synthetic/toy-cnn.npz").exists()  # it has no synthesize
    record = read_models(out)["toy-staged"].synthetic
    assert record["images"] == 16 and "SEGBENCH_INCEPTION_WEIGHTS" in record["fidelity"]
    code, _, stderr = cli("report", str(out), "--format", "md", "--out", str(tmp_path / "report.md"))
    assert code == 0, stderr
    text = (tmp_path / "report.md").read_text()
    assert "![synthetic](report-figures/synthetic.png)" in text and "segbench downloads nothing" in text
    again = tmp_path / "again"
    assert cli(*RUN, "--out", str(again))[0] == 0
    assert (again / "synthetic/toy-staged.npz").read_bytes() == (out / "synthetic/toy-staged.npz").read_bytes()
