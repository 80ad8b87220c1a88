"""MLflow: one MLflow run per segbench run (its settings as params; report.md, summary.csv, config.json,
models.json and the report's figures as artifacts) and a child run per model (its resolved
hyperparameters and training settings as params, its scalars as metrics), through `MlflowClient`.

The store is MLFLOW_TRACKING_URI when set (a server, a database), else a SQLite file in <run>/mlflow/
with artifacts beside it; MLFLOW_EXPERIMENT_NAME names the experiment (default "segbench"). The MLflow
run ids are kept in <run>/mlflow/runs.json, so a resumed run logs into the same MLflow runs, and steps
the interrupted run already logged are not logged twice.

Training does not wait for the store: per-step metrics are queued and sent in batches (every 1,000 values
or 15 s) by one sender thread, the only one that touches the store once the run started; each epoch's end
waits for them (where segbench checkpoints too), as do the evaluation's and the run's ends, and a failed
send turns the tracker off there. So a run killed inside an epoch may miss in MLflow the steps of the last
seconds before its last mid-epoch checkpoint; epochs, evaluations and runs are complete. Unless set,
MLFLOW_HTTP_REQUEST_MAX_RETRIES is 2 and MLFLOW_HTTP_REQUEST_TIMEOUT 10 s: an unreachable server costs
seconds, not MLflow's default of minutes of retries, before the run goes on without it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from segbench.io import atomic_write_text
from segbench.results import RunRecord, read_models
from segbench_trackers.tracker import (EPOCH_LOSS, TRAIN_LOSS, TRAIN_LR, Tracker, as_text, model_settings,
                                       report_figures, summary_scalars)

FOLDER = "mlflow"
IDS_FILE = "runs.json"
BATCH = 1000  # MLflow's most metrics per log_batch call
SEND_SECONDS = 15.0
ARTIFACTS = ("report.md", "summary.csv", "config.json", "models.json")
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def run_settings(record: RunRecord) -> dict[str, str]:
    """The parent MLflow run's params: what the run compares on, as text."""
    plan = record.plan
    values = {"task": plan.data.task, "dataset": plan.data.dataset, "image_size": plan.data.image_size,
              "seed": plan.seed, "preset": plan.preset, "device": plan.device, "precision": plan.precision,
              "ensemble": plan.evaluation.ensemble, "eval_samples": plan.evaluation.samples,
              "threshold": plan.evaluation.threshold, "models": ",".join(plan.model_names)}
    return as_text(values)


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, run_dir: Path, record: RunRecord) -> None:
        from mlflow.entities import Metric, Param  # ImportError without the mlflow package
        from mlflow.tracking import MlflowClient

        super().__init__(run_dir, record)
        self._metric, self._param = Metric, Param
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        for logger in ("mlflow", "alembic"):  # the SQLite store's one-time table creation is not news
            logging.getLogger(logger).setLevel(logging.WARNING)
        self.folder = run_dir / FOLDER
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or None  # None: the run directory's own store
        self.client = MlflowClient(tracking_uri=self.uri or f"sqlite:///{(self.folder / 'mlflow.db').resolve()}")
        saved = self._saved_ids()
        if saved is not None:
            self.experiment, self.parent, self.children = saved["experiment"], saved["run"], saved["models"]
            self.client.update_run(self.parent, status="RUNNING")
        else:
            self.experiment = self._experiment_id(os.environ.get("MLFLOW_EXPERIMENT_NAME") or "segbench")
            self.parent = self.client.create_run(self.experiment, run_name=run_dir.name,
                                                 tags={"segbench.run_dir": str(run_dir.resolve())}).info.run_id
            self.client.log_batch(self.parent, params=self._params(run_settings(record)))
            self.children = {}
            self._save_ids()
        self.resumed = set(self.children)  # models whose MLflow runs may hold steps logged before a kill
        self.logged: dict[tuple[str, str], int] = {}  # (model, metric) -> the last step already in MLflow
        self.pending: list[tuple[str, Any]] = []  # (MLflow run id, Metric) not handed to the sender yet
        self.sending: list[Future] = []
        self.sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segbench-mlflow")
        self.sent_at = time.monotonic()

    def _saved_ids(self) -> dict[str, Any] | None:
        path = self.folder / IDS_FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text())
        return saved if saved.get("tracking_uri") == self.uri else None  # another store: new MLflow runs

    def _save_ids(self) -> None:
        atomic_write_text(self.folder / IDS_FILE, json.dumps(
            {"tracking_uri": self.uri, "experiment": self.experiment, "run": self.parent, "models": self.children},
            indent=1) + "\n")

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None if self.uri else (self.folder / "artifacts").resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def _params(self, values: dict[str, str]) -> list[Any]:
        return [self._param(key, value) for key, value in values.items()]

    def _call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A client call on the sender thread, after what it has queued; waits for its result."""
        return self.sender.submit(call, *args, **kwargs).result()

    def _child(self, model: str) -> str:
        """`model`'s MLflow run, created with its settings as params at its first metric."""
        if model not in self.children:
            run = self._call(self.client.create_run, self.experiment, run_name=model,
                             tags={"mlflow.parentRunId": self.parent}).info.run_id
            self._call(self.client.log_batch, run, params=self._params(model_settings(self.record, model)))
            self.children[model] = run
            self._save_ids()
        return self.children[model]

    def _log(self, model: str, key: str, value: float, step: int) -> None:
        """Queue one metric value, unless a resumed model's MLflow run already has this step of it."""
        run = self._child(model)
        if model in self.resumed and (model, key) not in self.logged:
            history = self._call(self.client.get_metric_history, run, key)
            self.logged[model, key] = max((m.step for m in history), default=0)
        if step <= self.logged.get((model, key), 0):
            return
        self.pending.append((run, self._metric(key, float(value), int(time.time() * 1000), step)))

    def _send(self, wait: bool) -> None:
        """Hand the queued metrics to the sender; raise the first failed send (with `wait`: of all of them)."""
        by_run: dict[str, list] = {}
        for run, metric in self.pending:
            by_run.setdefault(run, []).append(metric)
        self.pending.clear()
        self.sent_at = time.monotonic()
        for run, metrics in by_run.items():
            for start in range(0, len(metrics), BATCH):
                self.sending.append(self.sender.submit(self.client.log_batch, run, metrics=metrics[start:start + BATCH]))
        finished = self.sending if wait else [future for future in self.sending if future.done()]
        for future in finished:
            future.result()
        self.sending = [future for future in self.sending if future not in finished]

    def train_step(self, model: str, step: Any) -> None:
        self._log(model, TRAIN_LOSS, step.loss, step.done)
        self._log(model, TRAIN_LR, step.lr, step.done)
        if len(self.pending) >= BATCH or time.monotonic() - self.sent_at >= SEND_SECONDS:
            self._send(wait=False)

    def epoch_end(self, model: str, epoch: int, loss: float) -> None:
        self._log(model, EPOCH_LOSS, loss, self.step_of_epoch(model, epoch))
        self._send(wait=True)

    def evaluation_end(self, model: str, summary: dict[str, dict[str, float]]) -> None:
        total = self.total_steps(model)
        for key, value in summary_scalars(summary).items():
            self._log(model, key, value, total)
        self._send(wait=True)
        self._call(self.client.set_terminated, self._child(model), "FINISHED")

    def run_end(self) -> None:
        self._send(wait=True)
        for model, status in read_models(self.run_dir).items():
            if model in self.children and not status.done:
                self._call(self.client.set_terminated, self.children[model], "FAILED")
        for name in ARTIFACTS:
            if (self.run_dir / name).is_file():
                self._call(self.client.log_artifact, self.parent, str(self.run_dir / name))
        for name, image in report_figures(self.run_dir):
            self._call(self.client.log_image, self.parent, image, f"figures/{name}.png")
        self._call(self.client.set_terminated, self.parent, "FINISHED")

    def close(self) -> None:
        self.sender.shutdown(wait=True, cancel_futures=True)  # a failed tracker's queued sends are dropped
