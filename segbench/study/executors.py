"""The built-in study executors, registered through the public plugin API: `local` (one cell after
another, or N workers at once, each pinned to its own GPU, the CPU threads split between them) and
`submitit` (SLURM job arrays with a concurrency cap; a preempted or timed-out job is requeued and its
cell resumes exactly)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segbench import ExecutorSpec, SegbenchError, hookimpl

if TYPE_CHECKING:  # registering the executors loads no run machinery (pandas, torch)
    from segbench.study.jobs import CellJob


def _options(options: Mapping[str, Any], valid: dict[str, tuple[type, ...]], executor: str) -> dict[str, Any]:
    """The executor's options, each checked against its types; an unknown or mistyped one is one clear line."""
    for key, value in options.items():
        if key not in valid:
            raise SegbenchError(f"executor {executor!r} has no option {key!r}; valid: {', '.join(valid) or 'none'}")
        if not isinstance(value, valid[key]) or isinstance(value, bool) and bool not in valid[key]:
            kinds = " or ".join(kind.__name__ for kind in valid[key])
            raise SegbenchError(f"executor {executor!r}: option {key} must be {kinds}, got {value!r}")
    return dict(options)


class LocalExecutor:
    """Cells on this machine: in this process one after another (`workers = 1`), or `workers` processes
    at once, each with its own GPU (CUDA_VISIBLE_DEVICES) when there are that many, and with the CPU's
    cores split evenly between them (OMP_NUM_THREADS)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.workers = _options(options, {"workers": (int,)}, "local").get("workers", 1)
        if self.workers < 1:
            raise SegbenchError(f"executor 'local': workers must be at least 1, got {self.workers}")

    def run(self, jobs: Sequence[CellJob]) -> list[str | None]:
        if self.workers == 1:
            return [_outcome(lambda job=job: job()) for job in jobs]
        slots = list(range(self.workers))
        lock = threading.Lock()  # guards the free slots, and lets one worker's line at a time onto stderr

        def in_worker(job: CellJob) -> str | None:
            with lock:
                slot = slots.pop(0)
            try:
                return self._subprocess(job, slot, lock)
            finally:
                with lock:
                    slots.append(slot)

        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(in_worker, jobs))

    def _subprocess(self, job: CellJob, slot: int, lock: threading.Lock) -> str | None:
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // self.workers))}
        gpus = _cuda_devices()
        if gpus >= self.workers:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
        command = [sys.executable, "-m", "segbench", *(a for p in job.plugins for a in ("--plugin", p)),
                   "study", "run-cell", job.study_dir, job.cell_id]
        with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as worker:
            last = _forward(worker.stderr, f"worker {slot + 1}: ", lock)
        return None if worker.returncode == 0 else last or f"exit code {worker.returncode}"


def _forward(lines: Iterable[str], prefix: str, lock: threading.Lock) -> str:
    """Copy a worker's stderr (its progress lines and messages) to this process's stderr as they come, each
    line under `prefix`, so that a log shows every worker's progress; returns its last non-blank line."""
    last = ""
    for line in lines:
        if line.strip():
            last = line.strip()
            with lock:
                print(prefix + line.rstrip("\n"), file=sys.stderr, flush=True)
    return last


def _submitit_executor(folder: Path, options: dict[str, Any]):
    """submitit's executor for `cluster`: its local (processes with a time limit and requeue) and debug
    (this process) executors directly, so they take timeout_min and signal_delay_s as given; otherwise
    AutoExecutor (SLURM where it finds one), with SLURM's options."""
    import submitit

    cluster = options.pop("cluster", None)
    max_timeouts = options.pop("max_num_timeout", 3)
    parallelism = options.pop("array_parallelism", None)
    if cluster in ("local", "debug"):
        options = {k: v for k, v in options.items() if not k.startswith("slurm_")}
        made = (submitit.LocalExecutor(folder, max_num_timeout=max_timeouts) if cluster == "local"
                else submitit.DebugExecutor(folder))
        made.update_parameters(**options)
        return made
    made = submitit.AutoExecutor(folder=folder, cluster=cluster, slurm_max_num_timeout=max_timeouts)
    if "timeout_min" in options:
        options["timeout_min"] = int(options["timeout_min"])
    options.pop("signal_delay_s", None)
    made.update_parameters(**options, **({"slurm_array_parallelism": parallelism} if parallelism else {}))
    return made


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _outcome(call) -> str | None:
    try:
        call()
    except SegbenchError as exc:
        return str(exc)
    return None


SUBMITIT_OPTIONS: dict[str, tuple[type, ...]] = {
    "cluster": (str,), "folder": (str,), "timeout_min": (int, float), "signal_delay_s": (int,),
    "array_parallelism": (int,), "max_num_timeout": (int,), "slurm_partition": (str,), "gpus_per_node": (int,),
    "cpus_per_task": (int,), "mem_gb": (int, float), "slurm_account": (str,), "slurm_qos": (str,),
    "slurm_constraint": (str,),
}


class SubmititExecutor:
    """Cells as one job array through submitit (SLURM, or submitit's `local`/`debug` clusters): at most
    `array_parallelism` at once; a job that is preempted or reaches its time limit is requeued (up to
    `max_num_timeout` times) and its cell resumes from its checkpoints."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = _options(options, SUBMITIT_OPTIONS, "submitit")

    def run(self, jobs: Sequence[CellJob]) -> list[str | None]:
        if not jobs:
            return []
        options = dict(self.options)
        folder = Path(options.pop("folder", Path(jobs[0].study_dir) / "submitit"))
        executor = _submitit_executor(folder, options)
        submitted = executor.map_array(_Requeued(), jobs)
        outcomes: list[str | None] = []
        for job in submitted:
            try:
                job.result()
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - a failed cell is reported, the others go on
                lines = [line for line in str(exc).splitlines() if line.strip()]
                outcomes.append(lines[-1] if lines else type(exc).__name__)
        return outcomes


class _Requeued:
    """Runs a CellJob; on preemption or timeout submitit requeues the same call (its `checkpoint`), and
    the cell resumes exactly where its checkpoints and committed batches left it."""

    def __call__(self, job: CellJob) -> None:
        job()

    def checkpoint(self, job: CellJob):
        import submitit

        return submitit.helpers.DelayedSubmission(self, job)


@hookimpl
def register_executors(register) -> None:
    register(ExecutorSpec("local", LocalExecutor, "this machine: cells one after another, or `workers` at once "
                                                  "(one GPU each, CPU threads split)"))
    register(ExecutorSpec("submitit", SubmititExecutor, "SLURM job arrays through submitit, requeued on "
                                                        "preemption or timeout (or its local/debug clusters)",
                          requires="submitit"))
