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
def on_run_start(run_dir: str, config: dict[str, Any]) -> None:
    """A run starts; `config` is what config.json holds."""


@hookspec
def on_epoch_end(model: str, epoch: int, metrics: dict[str, float]) -> None:
    """A model finished a training epoch; `metrics` holds at least "loss"."""


@hookspec
def on_evaluation_end(model: str, summary: dict[str, dict[str, float]]) -> None:
    """A model was evaluated; `summary[metric]` has mean, ci_low, ci_high, pooled."""


@hookspec
def on_run_end(run_dir: str) -> None:
    """A run finished and wrote its results."""
