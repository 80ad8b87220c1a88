"""torch.distributed on the CPU with gloo: evaluation sharded by sample id is byte-identical to one
process, training sees the same global batches (losses within 1e-5 of one process), two "nodes" on
localhost equal one node, kills, SIGTERM and resumes finish with the uninterrupted results, and each
misconfiguration is one clear line. One process of a run here gets one CPU thread, as a torchrun worker
does (CPU kernels may round differently with another thread count)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segbench.engine.distributed import Distributed, start
from segbench.engine.training import epoch_batches, global_batches
from segbench.errors import SegbenchError
from segbench.results import read_models
from segbench.results.store import prediction_file
from tests.conftest import repo_root
from tests.distributed.conftest import (
    PLUGINS,
    environment,
    free_port,
    same_files,
    single,
    torchrun,
    torchrun_command,
)

TOY = ("--task", "lung", "--dataset", "toy", "--image-size", "32", "--quiet")
FAMILIES = "unet,diff-add,sde-add,ncsn-add"


def _files(models: str) -> list[str]:
    return ["per_image.csv", "summary.csv", "predictions/_reference.npz", *map(prediction_file, models.split(","))]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_share_each_global_batch_without_padding_or_duplicates(world):
    for epoch in range(3):
        whole = global_batches(24, 8, 5, epoch)
        parts = [epoch_batches(24, 8, 5, epoch, Distributed(rank, world)) for rank in range(world)]
        for step, batch in enumerate(whole):
            joined = torch.cat([part[step] for part in parts])
            assert torch.equal(joined, batch)  # the same samples, in the same order, once each
            assert max(len(p[step]) for p in parts) - min(len(p[step]) for p in parts) <= 1


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Every model family (tiny), trained and evaluated in one process with an ensemble of 2."""
    out = tmp_path_factory.mktemp("trained") / "run"
    done = single("run", *TOY, "--models", FAMILIES, "--preset", "tiny", "--ensemble", "2", "--eval-batch-size", "3",
                  "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_two_processes_evaluate_byte_identically_to_one(trained, tmp_path):
    done = torchrun("evaluate", str(trained), "--out", str(tmp_path / "sharded"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(trained, tmp_path / "sharded", _files(FAMILIES)) == []


@pytest.mark.slow
def test_an_evaluation_killed_under_two_processes_resumes_with_one(trained, tmp_path):
    out = tmp_path / "evaluation"
    killed = subprocess.run(torchrun_command("predict", "4", "evaluate", str(trained), "--out", str(out), "--quiet",
                                             module="tests.reliability.killer", plugins=()),
                            cwd=repo_root(), env=environment(), capture_output=True, text=True, timeout=300)
    assert killed.returncode != 0 and (out / "partial").is_dir()
    done = single("evaluate", str(trained), "--out", str(out), "--resume", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(trained, out, _files(FAMILIES)) == []


def _steps(log: Path) -> list[float]:
    return [float(line.split()[2]) for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_two_process_training_sees_the_same_batches_and_losses(tmp_path):
    """toy-cnn draws nothing at random in training and has no BatchNorm: 72 steps of 2 processes give the
    one-process losses within 1e-5 (all-reduce sums in another order)."""
    logs = {}
    for name, launch in (("one", single), ("two", torchrun)):  # rank 0 calls the hook: one line per step
        logs[name] = tmp_path / f"{name}.log"
        done = launch("run", *TOY, "--models", "toy-cnn", "--out", str(tmp_path / name),
                      env=environment(SEGBENCH_STEP_LOG=str(logs[name])))
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = _steps(logs["one"]), _steps(logs["two"])
    assert len(one) == len(two) == 72
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-5


@pytest.mark.slow
def test_two_nodes_on_localhost_equal_one_node_of_two_processes(tmp_path):
    one_node = torchrun("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny", "--out", str(tmp_path / "a"))
    assert one_node.returncode == 0, one_node.stderr[-3000:]
    port = free_port()
    nodes = [subprocess.Popen(torchrun_command("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny",
                                               "--out", str(tmp_path / "b"), nproc=1, nnodes=2, node_rank=rank,
                                               port=port),
                              cwd=repo_root(), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for rank in (0, 1)]
    for node in nodes:
        _, stderr = node.communicate(timeout=300)
        assert node.returncode == 0, stderr[-3000:]
    assert same_files(tmp_path / "a", tmp_path / "b", _files("toy-cnn,diff-add")) == []


def _launch(out: Path, *extra: str) -> subprocess.Popen:
    command = torchrun_command("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny", "--out", str(out),
                               "--checkpoint-every", "0", *extra)
    return subprocess.Popen(command, cwd=repo_root(), env=environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), "the run ended before the point the test waits for"


@pytest.fixture(scope="module")
def two_process_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two") / "run"
    done = torchrun("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["launcher", "one-rank"])
def test_kill_9_under_two_processes_then_resume_gives_the_same_bytes(two_process_reference, tmp_path, victim):
    out = tmp_path / "run"
    process = _launch(out)
    _wait_for(out / "checkpoints" / "toy-cnn" / "last.pt", process)
    if victim == "launcher":
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and its workers
    else:
        workers = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        os.kill(int(workers[-1]), signal.SIGKILL)
    process.communicate(timeout=120)
    assert process.returncode != 0
    time.sleep(1)
    done = torchrun("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny", "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(two_process_reference, out, _files("toy-cnn,diff-add")) == []


@pytest.mark.slow
def test_sigterm_stops_every_rank_at_a_step_with_a_checkpoint(two_process_reference, tmp_path):
    out = tmp_path / "run"
    process = _launch(out)
    _wait_for(out / "checkpoints" / "toy-cnn" / "last.pt", process)
    process.send_signal(signal.SIGTERM)  # torchrun passes it to every worker
    _, stderr = process.communicate(timeout=120)
    assert "stopped: SIGTERM" in stderr and "--resume" in stderr
    done = torchrun("run", *TOY, "--models", "toy-cnn,diff-add", "--preset", "tiny", "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(two_process_reference, out, _files("toy-cnn,diff-add")) == []


def test_sigterm_in_one_process_stops_at_a_step_and_resume_finishes_identically(tmp_path):
    out, reference = tmp_path / "run", tmp_path / "reference"
    done = single("run", *TOY, "--models", "toy-cnn", "--out", str(reference))
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen([sys.executable, "-m", "segbench", *PLUGINS, "run", *TOY, "--models", "toy-cnn",
                                "--out", str(out), "--checkpoint-every", "0"], cwd=repo_root(), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "checkpoints" / "toy-cnn" / "last.pt", process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert re.search(r"stopped: SIGTERM (at epoch \d+, step|after epoch \d+;|while predicting)", stderr), stderr
    done = single("run", *TOY, "--models", "toy-cnn", "--out", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    assert same_files(reference, out, _files("toy-cnn")) == []


def _segbench_traceback(stderr: str) -> bool:
    """Whether a traceback shows segbench's own code (torchrun prints its own summary of failed workers)."""
    return any('segbench/' in line and line.strip().startswith("File") for line in stderr.splitlines())


def test_a_batch_that_does_not_split_between_the_processes_is_one_line(tmp_path):
    done = torchrun("run", *TOY, "--models", "toy-cnn", "--batch-size", "5", "--out", str(tmp_path / "r"))
    assert done.returncode != 0
    assert "error: toy-cnn: its training batch of 5 does not split between 2 processes" in done.stderr
    assert not _segbench_traceback(done.stderr)


@pytest.mark.slow
def test_nccl_on_a_machine_without_cuda_is_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = torchrun("run", *TOY, "--models", "toy-cnn", "--dist-backend", "nccl", "--out", str(tmp_path / "r"))
    assert done.returncode != 0 and "--dist-backend nccl needs CUDA devices" in done.stderr
    assert not _segbench_traceback(done.stderr)


def test_a_rank_that_cannot_see_its_gpu_is_one_line(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SegbenchError, match=r"rank 3 \(local rank 1\) cannot see a GPU: this node has 1; start at "
                                            r"most 1 processes per node"):
        start(torch.device("cuda"))
    with pytest.raises(SegbenchError, match="unknown --dist-backend 'mpi'; valid: auto, nccl, gloo"):
        start(torch.device("cpu"), "mpi")


def test_a_model_in_stages_trains_under_two_processes_and_reuses_its_stored_stage(tmp_path):
    """toy-staged under torchrun: every stage trains on its view (the labelled stage on the same 6 images
    as one process), its budget-free stage is stored, and a second two-process run reuses it with the
    same bytes; both evaluate byte-identically to one process evaluating the trained model."""
    staged = ("--task", "infection", "--dataset", "toy-mixed", "--image-size", "32", "--quiet", "--models",
              "toy-staged", "--labels", "6", "--eval-batch-size", "4")
    env = environment(SEGBENCH_CACHE=str(tmp_path / "cache"))
    for name in ("first", "again"):
        done = torchrun("run", *staged, "--out", str(tmp_path / name), env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    first = read_models(tmp_path / "first")["toy-staged"].stages
    again = read_models(tmp_path / "again")["toy-staged"].stages
    assert [(s.name, s.images, s.masks) for s in first] == [("pretrain", 24, 0), ("head", 6, 6), ("calibrate", 1, 0)]
    assert not first[0].reused_from and again[0].reused_from
    files = ["per_image.csv", "summary.csv", "predictions/toy-staged.npz"]
    assert same_files(tmp_path / "first", tmp_path / "again", files) == []
    done = single("evaluate", str(tmp_path / "first"), "--out", str(tmp_path / "evaluated"), "--quiet", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(tmp_path / "first", tmp_path / "evaluated", files) == []


def _other_builtin_models() -> list[str]:
    from tests.reliability.test_resume_models import BUILTIN

    return [m for m in BUILTIN if m not in FAMILIES.split(",")]


@pytest.mark.slow
@pytest.mark.parametrize("model", _other_builtin_models())
def test_every_other_builtin_model_evaluates_byte_identically_under_two_processes(tmp_path, model):
    """Registry-driven: each built-in model outside FAMILIES (tiny, ensemble of 2), trained in one process,
    evaluated by two; on toy-mixed, whose healthy images anomaly-ddpm trains on."""
    mixed = ("--task", "infection", "--dataset", "toy-mixed", "--image-size", "32", "--quiet")
    trained = tmp_path / "run"
    done = single("run", *mixed, "--models", model, "--preset", "tiny", "--ensemble", "2", "--eval-batch-size", "3",
                  "--out", str(trained))
    assert done.returncode == 0, done.stderr[-3000:]
    done = torchrun("evaluate", str(trained), "--out", str(tmp_path / "sharded"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(trained, tmp_path / "sharded", _files(model)) == []
