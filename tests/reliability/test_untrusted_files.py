"""Issue point 7: checkpoints, caches, prediction files and evaluation batches cannot run code.

Each file below carries a pickle that, if unpickled, would create a marker file. segbench must
refuse it (checkpoints: a clear error naming the file and the fix) or ignore and rebuild it
(caches, committed batches), and the marker must never appear.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from segbench.data.cache import CACHE_FORMAT, cache_dir
from tests.reliability.conftest import cli

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet", "--image-size", "16",
       "--epochs", "1")


class Payload:
    """Unpickling this creates (opens for writing) the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("untrusted") / "run"
    code, _, stderr = cli(*RUN, "--out", str(out))
    assert code == 0, stderr
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def test_checkpoint_that_needs_unpickling_is_refused(finished, tmp_path):
    out, marker = _copy(finished, tmp_path), tmp_path / "pwned"
    checkpoint = out / "checkpoints/toy-cnn/last.pt"
    torch.save({"epoch": 0, "model": Payload(marker)}, checkpoint)
    (out / "models.json").write_text("{}")  # the model is not done: --resume loads its checkpoint
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 2 and not marker.exists()
    assert stderr.startswith(f"error: checkpoint {checkpoint} holds objects other than tensors")
    assert "refused" in stderr and "delete it to train that model from scratch" in stderr


def test_unreadable_checkpoint_is_a_clear_error(finished, tmp_path):
    out = _copy(finished, tmp_path)
    checkpoint = out / "checkpoints/toy-cnn/last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    (out / "models.json").write_text("{}")
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 2 and stderr.startswith(f"error: checkpoint {checkpoint} cannot be read")


def test_cache_with_a_pickle_is_rebuilt_not_unpickled(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"
    assert cli(*RUN, "--out", str(tmp_path / "a"))[0] == 0
    for path in cache_dir().glob("*.npz"):
        np.savez(path, format=np.array(CACHE_FORMAT), ids=np.array([Payload(marker)], dtype=object),
                 images=np.zeros((1, 16, 16), np.uint8), masks=np.zeros((1, 16, 16), np.uint8))
    code, _, stderr = cli(*RUN, "--out", str(tmp_path / "b"))
    assert code == 0, stderr
    assert not marker.exists()
    assert "cannot be read" in capsys.readouterr().err + stderr
    assert (tmp_path / "a/per_image.csv").read_bytes() == (tmp_path / "b/per_image.csv").read_bytes()


def test_prediction_file_with_a_pickle_is_refused_by_report(finished, tmp_path):
    out, marker = _copy(finished, tmp_path), tmp_path / "pwned"
    np.savez(out / "predictions/toy-cnn.npz", sample_id=np.array([Payload(marker)], dtype=object),
             probabilities=np.zeros((1, 16, 16), np.float16), uncertainty=np.zeros((0,), np.float16))
    code, _, stderr = cli("report", str(out), "--threshold", "0.4")
    assert code == 2 and not marker.exists()
    assert f"predictions {out / 'predictions/toy-cnn.npz'} cannot be read" in " ".join(stderr.split())


def test_committed_batch_with_a_pickle_is_recomputed_not_unpickled(finished, tmp_path):
    out, marker = _copy(finished, tmp_path), tmp_path / "pwned"
    (out / "partial/toy-cnn").mkdir(parents=True)
    np.savez(out / "partial/toy-cnn/batch-00000000.npz", sample_id=np.array([Payload(marker)], dtype=object),
             member=np.zeros(1, np.int64), probabilities=np.zeros((1, 1, 16, 16), np.float32),
             uncertainty=np.zeros((0,), np.float32))
    (out / "models.json").write_text("{}")
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert not marker.exists()
    assert (out / "per_image.csv").read_bytes() == (finished / "per_image.csv").read_bytes()
