"""A metric plugin installed after a run was made: the false-positive rate (lower is better)."""

from segbench import MetricSpec, hookimpl
from segbench.metrics import safe_ratio


def fpr(tp, fp, fn, tn):
    """FP / (FP + TN)."""
    return safe_ratio(fp, fp + tn, fp, fn)


@hookimpl
def register_metrics(register) -> None:
    register(MetricSpec("fpr", fpr, "false-positive rate", higher_is_better=False))
