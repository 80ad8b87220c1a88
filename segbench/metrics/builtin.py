"""Registers the eight built-in metrics through the public plugin API."""

from segbench import MetricSpec, hookimpl
from segbench.metrics import definitions as d

BUILTIN_METRICS = (
    d.dice,
    d.jaccard,
    d.accuracy,
    d.sensitivity,
    d.specificity,
    d.balanced_accuracy,
    d.precision,
    d.mcc,
)


@hookimpl
def register_metrics(register) -> None:
    for fn in BUILTIN_METRICS:
        register(MetricSpec(name=fn.__name__, fn=fn, description=(fn.__doc__ or "").strip()))
