"""`segbench run --compile`: torch.compile each child module in place, and how long compiling took."""

from __future__ import annotations

from typing import Any

from torch import nn


def compile_children(model: nn.Module, **options: Any) -> None:
    """Compile every child module in place (`options` go to torch.compile), so parameter names (and
    checkpoints) stay those of the plain model."""
    for child in model.children():
        child.compile(**options)


def compile_seconds() -> float | None:
    """Wall seconds torch.compile has spent compiling in this process so far (TorchDynamo's own tally;
    compilation is lazy, so it grows during the first batches); None where this torch keeps no tally."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent().get("total_wall_time", 0.0))
    except Exception:  # noqa: BLE001 - a private API: its absence only loses the figure
        return None
