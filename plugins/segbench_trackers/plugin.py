"""The trackers' hooks: `--track` names, and the active trackers of the run in progress fed from the
lifecycle hooks. Runs in one process follow each other, so one set of active trackers is enough; hooks
are called by the process that writes the run (rank 0 of a distributed run), so only it tracks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from segbench import TrackerSpec, hookimpl
from segbench_trackers.tracker import Tracker


def _tensorboard(run_dir: Path, record: Any) -> Tracker:
    from segbench_trackers.tensorboard_tracker import TensorBoardTracker

    return TensorBoardTracker(run_dir, record)


def _mlflow(run_dir: Path, record: Any) -> Tracker:
    from segbench_trackers.mlflow_tracker import MlflowTracker

    return MlflowTracker(run_dir, record)


FACTORIES = {"tensorboard": _tensorboard, "mlflow": _mlflow}  # each installed by the segbench extra of its name
ACTIVE: list[Tracker] = []


def _warn(name: str, problem: str) -> None:
    print(f"warning: tracker {name!r} {problem}; the run goes on without it (segbench's own files are the record)",
          file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _close(tracker: Tracker) -> None:
    try:
        tracker.close()
    except Exception:  # noqa: BLE001 - closing a tracker that already failed must not fail the run
        pass


def _close_all() -> None:
    while ACTIVE:
        _close(ACTIVE.pop())


def _each(method: str, *args: Any) -> None:
    """`method` on every active tracker; one that raises is warned about once and turned off."""
    for tracker in list(ACTIVE):
        try:
            getattr(tracker, method)(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker must not end a run
            ACTIVE.remove(tracker)
            _warn(tracker.name, f"failed ({_first_line(exc)})")
            _close(tracker)


@hookimpl
def register_trackers(register) -> None:
    register(TrackerSpec("tensorboard", "TensorBoard event files in <run>/tensorboard/: loss and lr per step, "
                                        "epoch loss, summary metrics, report figures (segbench[tensorboard])"))
    register(TrackerSpec("mlflow", "MLflow runs (a SQLite store in <run>/mlflow/, or MLFLOW_TRACKING_URI): "
                                   "settings, metrics, report.md and summary.csv (segbench[mlflow])"))


@hookimpl
def on_run_start(run_dir: str, record: Any) -> None:
    _close_all()  # a run that ended with an error left its trackers open
    for name in record.plan.track:
        if name not in FACTORIES:
            continue  # another plugin's tracker
        try:
            ACTIVE.append(FACTORIES[name](Path(run_dir), record))
        except ImportError as exc:
            _warn(name, f"needs a package that is not installed ({_first_line(exc)}): pip install "
                        f"'segbench[{name}]'")
        except Exception as exc:  # noqa: BLE001 - e.g. an unreachable tracking server
            _warn(name, f"could not start ({_first_line(exc)})")


@hookimpl
def on_train_step(model_name: str, step: Any) -> None:
    if ACTIVE:
        _each("train_step", model_name, step)


@hookimpl
def on_epoch_end(model_name: str, epoch: int, metrics: dict[str, float]) -> None:
    _each("epoch_end", model_name, epoch, metrics["loss"])


@hookimpl
def on_evaluation_end(model_name: str, summary: dict[str, dict[str, float]]) -> None:
    _each("evaluation_end", model_name, summary)


@hookimpl
def on_run_end(run_dir: str) -> None:
    _each("run_end")
    _close_all()
