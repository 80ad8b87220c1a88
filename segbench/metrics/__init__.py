"""Per-image confusion counts, the metrics computed from them, and their statistics."""

from segbench.metrics.confusion import ConfusionCounts, confusion_counts
from segbench.metrics.policy import EMPTY_MASK_POLICY, safe_ratio
from segbench.metrics.statistics import bootstrap_ci, summarise

__all__ = ["EMPTY_MASK_POLICY", "ConfusionCounts", "bootstrap_ci", "confusion_counts", "safe_ratio", "summarise"]
