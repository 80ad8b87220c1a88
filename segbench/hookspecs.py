"""The hooks a segbench plugin may implement (pluggy project "segbench").

Registration hooks receive a `register` callable: call it once per spec.
Lifecycle hooks are notifications for loggers and trackers; return values are ignored.
"""

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("segbench")


@hookspec
def register_models(register: Callable[..., None]) -> None:
    """Register segmenters: `register(ModelSpec(...))`."""


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register datasets: `register(DatasetSpec(...))`."""


@hookspec
def register_metrics(register: Callable[..., None]) -> None:
    """Register per-image metrics: `register(MetricSpec(...))`."""


@hookspec
def register_formats(register: Callable[..., None]) -> None:
    """Register report formats: `register(FormatSpec(...))`."""


@hookspec
def register_executors(register: Callable[..., None]) -> None:
    """Register study executors (how a study's cells are run: locally, on SLURM, ...): `register(ExecutorSpec(...))`."""


@hookspec
def register_trackers(register: Callable[..., None]) -> None:
    """Register experiment trackers, the names `--track` accepts: `register(TrackerSpec(...))`. The plugin
    tracks in its lifecycle hooks the runs whose `record.plan.track` names its tracker."""


@hookspec
def on_run_start(run_dir: str, record: Any) -> None:
    """A run starts; `record` is what config.json holds, typed (`segbench.results.RunRecord`: the run plan
    with every model's resolved hyperparameters and training settings, and the facts of the run)."""


@hookspec
def on_train_step(model_name: str, step: Any) -> None:
    """Model `model_name` finished an optimiser step; `step` (`segbench.engine.training.TrainingStep`) has
    `epoch` and `step` (in the epoch), both from 0, `done` (steps done, from 1), `total`, `loss` (the batch's
    mean) and `lr` (the step's learning rate). Called on every step, so keep it cheap (buffer, write in
    batches); when no plugin implements it the runner does not call it. A resumed run repeats, with
    identical values, the steps done after its last checkpoint. For a model trained in several stages,
    `model_name` is "MODEL/STAGE" and `done`/`total` count the stage's steps."""


@hookspec
def on_epoch_end(model_name: str, epoch: int, metrics: dict[str, float]) -> None:
    """Model `model_name` finished training epoch `epoch` (from 1); `metrics` holds at least "loss". For a
    model trained in several stages, `model_name` is "MODEL/STAGE" and `epoch` counts the stage's epochs."""


@hookspec
def on_evaluation_end(model_name: str, summary: dict[str, dict[str, float]]) -> None:
    """Model `model_name` was evaluated; `summary[metric]` has mean, ci_low, ci_high, pooled."""


@hookspec
def on_run_end(run_dir: str) -> None:
    """A run finished and wrote its results."""
