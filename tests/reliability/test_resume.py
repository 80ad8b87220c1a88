"""Issue point 1: kill -9 at any moment, then `--resume` gives bit-identical results, computing nothing twice.

A subprocess runs two models and SIGKILLs itself at a chosen point (during training, during
evaluation, while writing results or checkpoints); the same command with --resume then finishes
in-process. Its per_image.csv, summary.csv and predictions/*.npz must equal, byte for byte, those
of an uninterrupted run, and the resumed run must make exactly the training steps and prediction
batches that were not committed before the kill.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import repo_root
from tests.reliability.conftest import cli, differing_files, killed_run
from tests.reliability.killer import counting_flops
from tests.toy_plugin import ToyCNN

# Two models x 3 epochs x 6 steps = 36 training steps; 10 samples x 2 members / 3 = 7 batches per model.
RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn,faulty-cnn", "--quiet",
       "--image-size", "32", "--epochs", "3", "--ensemble", "2", "--eval-batch-size", "3",
       "--set", "toy-cnn.ema_decay=0.9", "--set", "faulty-cnn.ema_decay=0.9")
EVERY_STEP = ("--checkpoint-every", "0")
COMPARED = ["per_image.csv", "summary.csv", "predictions/toy-cnn.npz", "predictions/faulty-cnn.npz",
            "predictions/_reference.npz"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    code, _, stderr = cli(*RUN, *EVERY_STEP, "--out", str(out))
    assert code == 0, stderr
    return out


@pytest.fixture
def counted(monkeypatch):
    """Counts of the training steps and prediction batches the toy models make (both models; the pass of one
    mask that counts FLOPs is not a batch: CPU batches are multiples of 32 masks; nor is the pass that counts a
    training step's FLOPs a step)."""
    calls = {"train": 0, "predict": 0}

    def counting(kind, method):
        def wrapper(model, images, *args, **kwargs):
            calls[kind] += not counting_flops() and (kind == "train" or len(images) > 1)
            return method(model, images, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(ToyCNN, "training_loss", counting("train", ToyCNN.training_loss))
    monkeypatch.setattr(ToyCNN, "predict", counting("predict", ToyCNN.predict))
    return calls


def _check_resumed(reference, out, counted, train_calls, predict_calls):
    code, _, stderr = cli(*RUN, *EVERY_STEP, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert differing_files(reference, out, COMPARED) == []
    losses = {m: v["losses"] for m, v in json.loads((out / "models.json").read_text()).items()}
    assert losses == {m: v["losses"] for m, v in json.loads((reference / "models.json").read_text()).items()}
    assert (counted["train"], counted["predict"]) == (train_calls, predict_calls)
    assert not list(out.rglob("*.tmp")) and not (out / "partial").exists()


KILLS = [
    # (where, n, training steps and prediction batches the resumed run must still make)
    pytest.param("train", 4, 33, 14, id="train-model1-epoch1-step4", marks=pytest.mark.slow),
    pytest.param("train", 26, 11, 7, id="train-model2-epoch2-step2"),
    pytest.param("last.pt", 5, 32, 14, id="writing-checkpoint", marks=pytest.mark.slow),
    pytest.param("predict", 3, 18, 12, id="evaluating-model1-batch3"),
    pytest.param("predict", 12, 0, 3, id="evaluating-model2-batch5", marks=pytest.mark.slow),
    pytest.param("per_image.csv", 1, 18, 7, id="writing-per-image-model1", marks=pytest.mark.slow),
    pytest.param("summary.csv", 2, 0, 0, id="writing-summary-model2"),
    pytest.param("models.json", 1, 18, 7, id="writing-status-model1", marks=pytest.mark.slow),
    pytest.param("report.md", 1, 0, 0, id="writing-report", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("where", "n", "train_calls", "predict_calls"), KILLS)
def test_kill_then_resume_is_bit_identical(reference, tmp_path, counted, where, n, train_calls, predict_calls):
    out = tmp_path / "run"
    killed = killed_run(where, n, *RUN, *EVERY_STEP, "--out", str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _check_resumed(reference, out, counted, train_calls, predict_calls)


def test_kill_between_epoch_checkpoints_redoes_the_epoch(reference, tmp_path, counted):
    """Default --checkpoint-every (300 s): only epoch ends are saved, so the partial epoch is redone."""
    out = tmp_path / "run"
    killed = killed_run("train", 10, *RUN, "--out", str(out))  # model 1, epoch 2, step 4
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _check_resumed(reference, out, counted, 36 - 6, 14)


def test_external_sigkill_at_an_arbitrary_moment(reference, tmp_path):
    """A real `kill -9` from outside, at whatever moment the run reached after its first checkpoint."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "tests.reliability.killer", "train", "0", *RUN, *EVERY_STEP, "--out", str(out)]
    process = subprocess.Popen(args, cwd=repo_root(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints/toy-cnn/last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL
    code, _, stderr = cli(*RUN, *EVERY_STEP, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert differing_files(reference, out, COMPARED) == []
