"""Preset names, how `auto` resolves, and the seed paper's training protocol every built-in model shares.

A plugin builds its presets from `SEED_PAPER_TRAINING` (and `seed_paper_task_layers`) so that the
paper preset trains every model the same way; what a model changes (its EMA, say) it layers on top.
"""

from __future__ import annotations

from typing import Any

from segbench.errors import SegbenchError
from segbench.specs import Preset

PRESETS = ("tiny", "small", "paper")
PRESET_CHOICES = ("auto", *PRESETS)

# The seed paper: 100 epochs at batch 512 and learning rate 3e-3 (AdamW, warm-up and cosine decay).
SEED_PAPER_TRAINING: dict[str, Any] = {"epochs": 100, "batch_size": 512, "lr": 3e-3}
# It trains infection segmenters far longer than lung ones.
SEED_PAPER_TASK_TRAINING: dict[str, dict[str, Any]] = {"infection": {"epochs": 2400}}


def seed_paper_task_layers() -> dict[str, Preset]:
    """The "paper/<task>" layers of a model's presets."""
    return {f"paper/{task}": Preset(training=dict(training)) for task, training in SEED_PAPER_TASK_TRAINING.items()}


def resolve_preset(preset: str, device_type: str) -> str:
    """`auto` is `paper` on CUDA and `small` elsewhere."""
    if preset not in PRESET_CHOICES:
        raise SegbenchError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_CHOICES)}")
    if preset == "auto":
        return "paper" if device_type == "cuda" else "small"
    return preset
