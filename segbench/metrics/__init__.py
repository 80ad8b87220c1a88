"""Per-image confusion counts, the metrics computed from them, and their statistics.

The names below load on first use (PEP 562), so registering the built-in metrics does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ConfusionCounts": "segbench.metrics.confusion",
    "confusion_counts": "segbench.metrics.confusion",
    "EMPTY_MASK_POLICY": "segbench.metrics.policy",
    "safe_ratio": "segbench.metrics.policy",
    "bootstrap_ci": "segbench.metrics.statistics",
    "summarise": "segbench.metrics.statistics",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'segbench.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
