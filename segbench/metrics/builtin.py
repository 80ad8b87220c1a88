"""Registers the built-in metrics through the public plugin API: eight from confusion counts, three boundary
metrics from the masks."""

from segbench import MetricSpec, hookimpl
from segbench.metrics import definitions as d
from segbench.metrics.boundary import BOUNDARY_METRICS

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
LABELS = {"balanced_accuracy": "Balanced accuracy", "mcc": "MCC"}  # the others: the name, capitalised


@hookimpl
def register_metrics(register) -> None:
    for fn in BUILTIN_METRICS:
        register(MetricSpec(name=fn.__name__, fn=fn, description=(fn.__doc__ or "").strip(),
                            label=LABELS.get(fn.__name__, fn.__name__.capitalize())))
    for spec in BOUNDARY_METRICS:
        register(spec)
