"""segbench: compare image segmenters under one fixed-seed protocol."""

import pluggy

from segbench.controls import direct_control
from segbench.deferred import deferred
from segbench.errors import HyperparameterError, SegbenchError
from segbench.specs import (
    DatasetOptions,
    DatasetSpec,
    ExecutorSpec,
    FormatSpec,
    MetricSpec,
    ModelSpec,
    Prediction,
    Preset,
    Stage,
    TrackerSpec,
)

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("segbench")

__all__ = [
    "DatasetOptions",
    "DatasetSpec",
    "ExecutorSpec",
    "FormatSpec",
    "HyperparameterError",
    "MetricSpec",
    "ModelSpec",
    "Prediction",
    "Preset",
    "SegbenchError",
    "Stage",
    "TrackerSpec",
    "__version__",
    "deferred",
    "direct_control",
    "hookimpl",
]
