"""A model trained in stages resumes exactly from a kill inside any stage: toy-staged (10 steps of
`pretrain` on every image, 6 of `head` on the labelled ones, then `calibrate`), killed with SIGKILL in its
first stage, then in its second, and once more in evaluation, finishes with the bytes of an uninterrupted
run. Each run has a cache of its own, so no stage is reused from the store."""

from __future__ import annotations

import signal

from tests.reliability.conftest import cli, differing_files, killed_run

RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-staged", "--image-size", "32",
       "--labels", "6", "--eval-batch-size", "3", "--seed", "2", "--quiet")
COMPARED = ["per_image.csv", "summary.csv", "predictions/_reference.npz", "predictions/toy-staged.npz"]


def test_a_staged_model_killed_in_each_stage_and_in_evaluation_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "reference-cache"))
    reference = tmp_path / "reference"
    code, _, stderr = cli(*RUN, "--out", str(reference))
    assert code == 0, stderr

    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    # the 3rd step of `pretrain` (steps 1 and 2 checkpointed)
    killed = killed_run("train@toy-staged", 3, *RUN, "--out", str(out), "--checkpoint-every", "0")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / "checkpoints/toy-staged/pretrain/last.pt").is_file()
    assert not (out / "checkpoints/toy-staged/head").exists()
    # resumed: pretrain's steps 3-10 (8 calls), then the 2nd step of `head`
    killed = killed_run("train@toy-staged", 10, *RUN, "--out", str(out), "--checkpoint-every", "0", "--resume")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / "checkpoints/toy-staged/head/last.pt").is_file()
    # resumed: head finishes, calibrate runs, then the 3rd prediction batch
    killed = killed_run("predict@toy-staged", 3, *RUN, "--out", str(out), "--resume")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert differing_files(reference, out, COMPARED) == []
