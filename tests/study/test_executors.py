"""Executors: cells run in worker processes, or through submitit (its local and debug clusters on the
CPU), give the same bytes as one after another in this process; a job that submitit requeues on timeout
resumes its cell exactly; a third party can register its own executor."""

from __future__ import annotations

from pathlib import Path

import pytest

from segbench import ExecutorSpec, hookimpl
from tests.reliability.conftest import cli, differing_files
from tests.study.conftest import TOY, write

RESULT_FILES = ["per_image.csv", "summary.csv", "predictions/toy-cnn.npz"]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in-process")
    code, _, stderr = cli("study", "run", str(write(folder, TOY)), "--out", str(folder / "study"))
    assert code == 0, stderr
    return folder / "study"


def _same_cells(reference: Path, other: Path) -> None:
    names = sorted(p.name for p in (reference / "cells").iterdir())
    assert names == sorted(p.name for p in (other / "cells").iterdir())
    for name in names:
        assert differing_files(reference / "cells" / name, other / "cells" / name, RESULT_FILES) == [], name


def test_two_local_workers_give_the_same_cells_as_one_process_with_their_threads(tmp_path):
    """Two workers split the cores (one thread each on two). CPU kernels may round differently with
    another thread count, so the reference runs the cells one after another with a worker's threads."""
    import os

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        code, _, stderr = cli("study", "run", str(write(tmp_path, TOY, "a.toml")), "--out", str(tmp_path / "one"))
    finally:
        torch.set_num_threads(threads)
    assert code == 0, stderr
    code, _, stderr = cli("study", "run", str(write(tmp_path, TOY, "b.toml")), "--out", str(tmp_path / "two"),
                          "--workers", "2")
    assert code == 0, stderr
    _same_cells(tmp_path / "one", tmp_path / "two")
    # each worker's progress lines reach this process's stderr (a log) as they come, under the worker's name
    started = {line.split(": cell ")[1]: line.split(":")[0] for line in stderr.splitlines() if ": cell " in line}
    assert sorted(started) == sorted(p.name for p in (tmp_path / "two" / "cells").iterdir())
    assert sorted(started.values()) == ["worker 1", "worker 2"]
    for worker in started.values():
        assert any(line.startswith(f"{worker}: toy-cnn train (1 of 1): 72/72 (100%)") for line in stderr.splitlines())


def test_submitit_debug_cluster_gives_the_same_cells(in_process, tmp_path):
    pytest.importorskip("submitit")
    text = TOY + '\n[executor]\nname = "submitit"\ncluster = "debug"\n'
    code, _, stderr = cli("study", "run", str(write(tmp_path, text)), "--out", str(tmp_path / "study"))
    assert code == 0, stderr
    _same_cells(in_process, tmp_path / "study")


@pytest.mark.slow
def test_submitit_requeues_a_timed_out_job_and_the_cell_resumes_exactly(tmp_path):
    """submitit's local cluster signals the job 8 s before its 24 s limit; the job is requeued and the
    cell resumes from its checkpoints (written every step) until it finishes. (A job signalled while it
    still loads its pickle, which imports torch, is not requeued: submitit has no call to checkpoint yet,
    so the limit leaves that import time on a loaded machine.)"""
    pytest.importorskip("submitit")
    base = TOY.replace("seeds = [0, 1]", "seeds = [0]").replace('preset = "tiny"', 'preset = "tiny"\nepochs = 150\n'
                                                                'checkpoint_every = 0')
    code, _, stderr = cli("study", "run", str(write(tmp_path, base, "a.toml")), "--out", str(tmp_path / "once"))
    assert code == 0, stderr
    text = base + ('\n[executor]\nname = "submitit"\ncluster = "local"\ntimeout_min = 0.4\n'
                   'signal_delay_s = 8\nmax_num_timeout = 20\n')
    code, _, stderr = cli("study", "run", str(write(tmp_path, text, "b.toml")), "--out", str(tmp_path / "requeued"))
    assert code == 0, stderr
    logs = "".join(p.read_text() for p in (tmp_path / "requeued" / "submitit").rglob("*.err"))
    assert "Requeued" in logs or "requeued" in logs.lower()
    _same_cells(tmp_path / "once", tmp_path / "requeued")


class _Recorder:
    """A third-party executor: runs the jobs in this process and records their cells."""

    seen: list[str] = []

    def __init__(self, options) -> None:
        self.options = options

    def run(self, jobs):
        for job in jobs:
            self.seen.append(job.cell_id)
            job()
        return [None] * len(jobs)


@hookimpl
def register_executors(register) -> None:
    register(ExecutorSpec("recorder", _Recorder, "records the cells it runs (a test plugin)"))


def test_a_third_party_executor_is_a_plugin(tmp_path):
    _Recorder.seen.clear()
    code, _, stderr = cli("--plugin", "tests.study.test_executors", "study", "run", str(write(tmp_path, TOY)),
                          "--out", str(tmp_path / "study"), "--executor", "recorder")
    assert code == 0, stderr
    assert len(_Recorder.seen) == 2 and all(c.startswith("squares-toy-cnn-seed") for c in _Recorder.seen)
