"""The training settings the engine owns, and the budget they give on a training set of a given size."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

EMA_INITIAL_SHARE = 0.01  # the most of the initial (random) weights an EMA may still hold when training ends
BUDGET_KEYS = ("epochs", "steps")


class SettingError(ValueError):
    """A training setting outside its valid range; `key` names it, the message is "must be ..., got ..."."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class TrainingSettings:
    """What the engine trains with; a model's preset (its `training` part) or `--set MODEL.KEY=VALUE` sets them.

    The budget is `epochs` or `steps` (optimiser steps), exactly one of them: a budget in steps means the
    same on a dataset of any size, one in epochs scales with it (see `total_steps`).
    """

    epochs: int | None = 10
    steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    explode_factor: float = 1000.0

    def __post_init__(self) -> None:
        rules = {
            "epochs": (self.epochs is None or self.epochs >= 1, "an integer >= 1"),
            "steps": (self.steps is None or self.steps >= 1, "an integer >= 1"),
            "batch_size": (self.batch_size >= 1, "an integer >= 1"),
            "lr": (math.isfinite(self.lr) and self.lr > 0, "a positive finite number"),
            "weight_decay": (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "a finite number >= 0"),
            "warmup_fraction": (0 <= self.warmup_fraction < 1, "in [0, 1)"),
            "grad_clip": (math.isfinite(self.grad_clip) and self.grad_clip >= 0, "a finite number >= 0 (0: no clipping)"),
            "ema_decay": (0 <= self.ema_decay < 1, "in [0, 1) (0: no EMA)"),
            "explode_factor": (self.explode_factor >= 0, "a number >= 0 (0: no explosion check)"),
        }
        for key, (ok, rule) in rules.items():
            if not ok:
                raise SettingError(key, f"must be {rule}, got {getattr(self, key)!r}")
        if (self.epochs is None) == (self.steps is None):
            raise SettingError("epochs", f"a budget is epochs or steps, exactly one of them; got epochs={self.epochs!r}, "
                                         f"steps={self.steps!r}")

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def layered(cls, *layers: Mapping[str, Any]) -> TrainingSettings:
        """Defaults, then each layer in turn; a layer that sets one budget key clears the other."""
        values: dict[str, Any] = asdict(cls())
        for layer in layers:
            if all(layer.get(k) is not None for k in BUDGET_KEYS):
                raise SettingError("steps", "set epochs or steps, not both")
            for key in BUDGET_KEYS:
                if layer.get(key) is not None:
                    values.update(dict.fromkeys(BUDGET_KEYS), **{key: layer[key]})
            values.update({k: v for k, v in layer.items() if k not in BUDGET_KEYS})
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def batches_per_epoch(self, samples: int) -> int:
        """Batches of a seeded permutation of `samples` cut at `batch_size`, a trailing batch of one dropped
        (BatchNorm needs two) unless it is the only one."""
        batches = math.ceil(samples / self.batch_size)
        if batches > 1 and samples - (batches - 1) * self.batch_size < 2:
            batches -= 1
        return batches

    def total_steps(self, samples: int) -> int:
        """Optimiser steps of the whole run on `samples` training images."""
        return self.steps if self.steps is not None else self.epochs * self.batches_per_epoch(samples)

    def epochs_run(self, samples: int) -> int:
        """Epochs the run starts (the last one cut short when a step budget ends inside it)."""
        return self.epochs if self.epochs is not None else math.ceil(self.steps / self.batches_per_epoch(samples))

    def ema_decay_used(self, samples: int) -> float:
        """`ema_decay`, capped to this run's length by `ema_decay_for`."""
        return ema_decay_for(self.ema_decay, self.total_steps(samples))


def ema_decay_for(decay: float, total_steps: int) -> float:
    """The EMA decay a run uses: `decay`, capped so that at most 1 % of the initial weights remain
    after `total_steps` updates (decay ** total_steps <= 0.01). A decay meant for long runs, such as
    guided-diffusion's 0.9999, would otherwise leave a short run's EMA near its random start (99 %
    of it after 100 steps). 0 (no EMA) stays 0."""
    if decay <= 0:
        return 0.0
    return min(decay, EMA_INITIAL_SHARE ** (1 / max(1, total_steps)))
