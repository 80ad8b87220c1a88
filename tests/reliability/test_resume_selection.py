"""`--select best` resumes exactly: toy-cnn (12 steps, scored on the validation masks after steps 4, 8 and 12)
killed with SIGKILL after step 6 (between two scorings, its selection so far in last.pt), then resumed,
keeps the checkpoint of an uninterrupted run byte for byte, and gives its results."""

from __future__ import annotations

import signal

from segbench.results import read_models
from tests.reliability.conftest import cli, differing_files, killed_run

RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-cnn", "--image-size", "32",
       "--labels", "3", "--select", "best", "--select-every", "4", "--eval-batch-size", "3", "--quiet")
COMPARED = ["per_image.csv", "summary.csv", "labelled.csv", "predictions/toy-cnn.npz", "checkpoints/toy-cnn/best.pt"]


def test_a_selecting_run_killed_between_scorings_keeps_the_same_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    reference = tmp_path / "reference"
    code, _, stderr = cli(*RUN, "--out", str(reference))
    assert code == 0, stderr
    out = tmp_path / "run"
    killed = killed_run("train@toy-cnn", 7, *RUN, "--out", str(out), "--checkpoint-every", "0")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "checkpoints/toy-cnn/best.pt").exists()  # written when the stage ends
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert differing_files(reference, out, COMPARED) == []
    assert read_models(out)["toy-cnn"].stages[0].selection == read_models(reference)["toy-cnn"].stages[0].selection
