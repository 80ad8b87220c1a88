"""The stage store cannot tear. toy-staged's `pretrain` stage (every training image, no masks) is stored
once and reused: its copy into a run directory and into the store go through a temporary file renamed once
complete, so a SIGKILL during either leaves no torn checkpoint, and resuming or reusing then gives the
bytes of an uninterrupted run. Runs that want the same stage at once make it once: a lock per stored stage
(an flock, which dies with its process) makes the others wait, then reuse it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segbench.io.checkpoints import load_checkpoint
from segbench.io.lock import folder_lock
from segbench.results import read_models
from tests.conftest import repo_root
from tests.reliability.conftest import cli, differing_files, killed_run

RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-staged", "--image-size", "32",
       "--labels", "6", "--eval-batch-size", "3", "--seed", "2", "--quiet")
COMPARED = ["per_image.csv", "summary.csv", "predictions/_reference.npz", "predictions/toy-staged.npz"]
WAITING = "waiting to reuse it"  # the line a run prints when another process is making its stage


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, str]:
    """An uninterrupted run (with a store of its own) and the digest its stored `pretrain` stage has."""
    folder = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGBENCH_CACHE", str(folder / "cache"))
        code, _, stderr = cli(*RUN, "--out", str(folder / "run"))
    assert code == 0, stderr
    (digest,) = os.listdir(folder / "cache/stages")
    return folder / "run", digest


def pretrain(out: Path):
    return read_models(out)["toy-staged"].stages[0]


def started(where: str, n: int, *args: str) -> subprocess.Popen:
    """The CLI in a subprocess, killed at (`where`, `n`) as `killed_run` does (n = 0: never); stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.killer", where, str(n), *args],
                            cwd=repo_root(), env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(process: subprocess.Popen, text: str) -> None:
    """Read `process`'s stderr until a line holds `text`; its end first fails the test."""
    for line in process.stderr:
        if text in line:
            return
    pytest.fail(f"the process ended (exit {process.wait()}) without printing {text!r}")


def finished(process: subprocess.Popen) -> tuple[int, str]:
    rest = process.stderr.read()
    return process.wait(120), rest


def holder_is(lock: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until `process` has taken the lock (its pid is written to the lock file once held)."""
    deadline = time.monotonic() + timeout
    while f"pid {process.pid} on" not in lock.read_text():
        assert time.monotonic() < deadline and process.poll() is None, "the process never took the lock"
        time.sleep(0.02)


def test_a_kill_while_a_stored_stage_is_copied_into_the_run_leaves_no_torn_checkpoint(reference, tmp_path,
                                                                                        monkeypatch):
    reference_run, digest = reference
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    assert cli(*RUN, "--out", str(tmp_path / "first"))[0] == 0  # trains `pretrain` and stores it
    out = tmp_path / "run"
    # the first last.pt this run writes: the stored `pretrain` copied in, killed before its rename
    killed = killed_run("last.pt", 1, *RUN, "--out", str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    folder = out / "checkpoints/toy-staged/pretrain"
    assert not (folder / "last.pt").exists() and len(list(folder.glob(".last.pt.*.tmp"))) == 1
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert pretrain(out).reused_from == str(tmp_path / "cache/stages" / digest)
    assert not list(out.rglob("*.tmp"))
    assert differing_files(reference_run, out, COMPARED) == []


def test_a_run_killed_while_storing_a_stage_leaves_the_store_whole_for_the_run_that_waits(reference, tmp_path,
                                                                                          monkeypatch):
    """Run A takes the stage's lock (the test held it first, so A is seen waiting), trains `pretrain` and is
    killed between writing the stored checkpoint and renaming it; run B, started while A holds the lock,
    finds nothing stored, trains it and stores it whole; A resumed reuses B's."""
    reference_run, digest = reference
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    stored = tmp_path / "cache/stages" / digest
    stored.mkdir(parents=True)
    with folder_lock(stored, lambda holder: pytest.fail(f"the lock is held by {holder}")):
        a = started("stage.pt", 1, *RUN, "--out", str(tmp_path / "a"))
        wait_for(a, WAITING)
    holder_is(stored / ".lock", a)
    b = started("train", 0, *RUN, "--out", str(tmp_path / "b"))
    code, stderr = finished(a)
    assert code == -signal.SIGKILL, stderr[-2000:]
    code, stderr = finished(b)
    assert code == 0, stderr[-2000:]
    assert not pretrain(tmp_path / "b").reused_from  # A stored nothing: B trained it
    assert sorted(p.name for p in stored.iterdir()) == [".lock", "origin.json", "stage.pt"]  # A's temporary gone
    load_checkpoint(stored / "stage.pt")
    assert (stored / "stage.pt").read_bytes() == (tmp_path / "b/checkpoints/toy-staged/pretrain/last.pt").read_bytes()
    code, _, stderr = cli(*RUN, "--out", str(tmp_path / "a"), "--resume")
    assert code == 0, stderr
    assert pretrain(tmp_path / "a").reused_from == str(stored)
    assert differing_files(reference_run, tmp_path / "a", COMPARED) == []
    assert differing_files(reference_run, tmp_path / "b", COMPARED) == []


def test_runs_that_want_the_same_stage_at_once_train_it_once(reference, tmp_path, monkeypatch):
    """Two runs both waiting for the stage's lock (held by the test): once it is free, one trains and
    stores `pretrain` while the other waits, then reuses it; both give the reference's bytes."""
    reference_run, digest = reference
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    stored = tmp_path / "cache/stages" / digest
    stored.mkdir(parents=True)
    with folder_lock(stored, lambda holder: pytest.fail(f"the lock is held by {holder}")):
        runs = [started("train", 0, *RUN, "--out", str(tmp_path / name)) for name in ("a", "b")]
        for run in runs:
            wait_for(run, WAITING)
    for run in runs:
        code, stderr = finished(run)
        assert code == 0, stderr[-2000:]
    reused = [pretrain(tmp_path / name).reused_from for name in ("a", "b")]
    assert sorted(reused) == ["", str(stored)]
    assert all(differing_files(reference_run, tmp_path / name, COMPARED) == [] for name in ("a", "b"))
