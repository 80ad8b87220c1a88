"""Hyperparameters of the diffusion segmenters: presets and validation.

No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, get_type_hints

from segbench import SegbenchError

if TYPE_CHECKING:
    from typing_extensions import Self

SAMPLERS = ("ddim", "ddpm", "dpmpp2m")
PREDICTIONS = ("epsilon", "x0")
LOSSES = ("mse", "bce_dice")

# The seed paper (after SegDiff, Amit et al. 2021) at 64x64: U-Net 218 M parameters.
PAPER: dict[str, Any] = {
    "base_channels": 192,
    "channel_mult": (1, 2, 3, 4),
    "num_res_blocks": 2,
    "attention_resolutions": (32, 16, 8),
    "head_channels": 64,
    "norm_groups": 32,
    "dropout": 0.0,
    "rrdb_blocks": 1,
    "rrdb_nf": 64,
    "rrdb_gc": 32,
    "cond_channels": 16,
    "gradient_checkpointing": False,  # recompute U-Net activations in the backward pass: less memory
    "channels_last": False,  # NHWC weights and activations; eager bf16 on an H200 was slower with it
    "timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "sampler": "ddim",
    "sampling_steps": 50,
    "eta": 0.0,
    "clip_x0": False,
    "prediction": "epsilon",
    "loss": "mse",
    # training (the engine's keys)
    "epochs": 100,
    "batch_size": 512,
    "lr": 3e-3,
    "ema_decay": 0.9999,
}

# The CPU default, designed for fast convergence (the report states these choices):
# - prediction="x0": the network predicts the clean mask and the samplers use the
#   eps it implies. With eps-prediction a few-step DDIM sample is only as good as
#   x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) at high t, where the
#   eps error is amplified ~80x; an x0-predicting net learns "read the mask off the
#   image" directly. Phantom lungs: Dice 0.986 after 300 steps (eps-prediction:
#   0.61 after 400 steps);
# - base 16 with mult (1, 2, 2), one ResBlock per level, attention only at 16x16
#   (256 tokens) and a light RRDB (nf 16, gc 8): 0.65 + 0.41 GFLOP per image;
# - batch 16, AdamW at 1e-3, short warm-up and cosine decay; EMA with a ~100-step
#   horizon, since a CPU run is only a few hundred steps long. At 2e-3 training
#   stalled for some seeds (loss flat at 0.3 for ten epochs, the image ignored at
#   high noise). Infection Dice at 2e-3 -> 1e-3 (benchmarks/score_formulations.py),
#   seeds 0 / 1: diff-add 0.76 / 0.66 -> 0.80 / 0.74, sde-add 0.51 / 0.65 -> 0.80 / 0.73;
#   ncsn-add seeds 0 / 1 / 2: 0.67 / 0.60 / 0.23 -> 0.66 / 0.70 / 0.68;
# - loss="bce_dice": the output is the mask's logit (x0 = tanh(out / 2)), trained with
#   BCE + soft Dice like the U-Nets; MSE on x0 under-weights small lesions. Phantom
#   infection, validation split, 12 epochs (benchmarks/preset_sweep.py, one seed): per-image
#   Dice 0.71 vs 0.59 with MSE; 16 epochs 0.78 (on a GPU) and 0.74 (2-core CPU);
# - 16 epochs: what the main job's 10-minute budget allows beside the U-Net;
# - channels_last: on 2 CPU cores, sampling 26 % faster than NCHW (benchmarks/speed.py);
# - clip_x0 and 10 DDIM steps: evaluation costs 10 U-Net forwards per mask.
SMALL: dict[str, Any] = {
    **PAPER,
    "base_channels": 16,
    "channel_mult": (1, 2, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (16,),
    "head_channels": 32,
    "norm_groups": 8,
    "rrdb_blocks": 1,
    "rrdb_nf": 16,
    "rrdb_gc": 8,
    "sampling_steps": 10,
    "clip_x0": True,
    "prediction": "x0",
    "loss": "bce_dice",
    "channels_last": True,
    "epochs": 16,
    "batch_size": 16,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "warmup_fraction": 0.02,
    "grad_clip": 1.0,
    "ema_decay": 0.99,
}

# For tests: 92 k parameters. Attention only in the middle block, so that it is
# valid at any image size divisible by 4; three levels put that block at 16x16
# for 64x64 images (with two, attention over 32x32 took half of a training step).
TINY: dict[str, Any] = {
    **SMALL,
    "base_channels": 8,
    "channel_mult": (1, 2, 2),
    "attention_resolutions": (),
    "head_channels": 8,
    "norm_groups": 4,
    "rrdb_nf": 8,
    "rrdb_gc": 4,
    "sampling_steps": 2,
    "epochs": 2,
    "batch_size": 8,
    "lr": 1e-3,
    "ema_decay": 0.0,
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": TINY,
    "small": SMALL,
    "paper": PAPER,
    "paper/infection": {"epochs": 2400},
}


@dataclass(frozen=True)
class UNetConfig:
    """Backbone hyperparameters (NoiseUNet + RRDB condition encoder), validated on creation.

    Shared by every model family built on this backbone (diffusion, score-based); a
    subclass adds its formulation's fields and checks.
    """

    image_size: int
    base_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    head_channels: int
    norm_groups: int
    dropout: float
    rrdb_blocks: int
    rrdb_nf: int
    rrdb_gc: int
    cond_channels: int
    gradient_checkpointing: bool
    channels_last: bool

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Self:
        """Take this model's keys from a flat config; other keys (training settings) belong to the engine."""
        hints = get_type_hints(cls)
        values = {}
        for f in fields(cls):
            if f.name not in config:
                raise SegbenchError(f"model config is missing hyperparameter {f.name!r}")
            values[f.name] = _coerce(f.name, config[f.name], hints[f.name])
        return cls(**values)

    @property
    def level_resolutions(self) -> tuple[int, ...]:
        """Feature-map size at each U-Net level, e.g. (64, 32, 16, 8)."""
        return tuple(self.image_size // 2**level for level in range(len(self.channel_mult)))

    def __post_init__(self) -> None:
        for name in ("image_size", "base_channels", "num_res_blocks", "head_channels", "norm_groups",
                     "rrdb_nf", "rrdb_gc", "cond_channels"):
            if getattr(self, name) < 1:
                raise SegbenchError(f"{name}={getattr(self, name)} must be a positive integer")
        if self.rrdb_blocks < 0:
            raise SegbenchError(f"rrdb_blocks={self.rrdb_blocks} must be 0 or more")
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise SegbenchError(f"channel_mult={self.channel_mult} must be a non-empty list of positive integers")
        factor = 2 ** (len(self.channel_mult) - 1)
        if self.image_size % factor:
            raise SegbenchError(
                f"image_size={self.image_size} cannot be halved {len(self.channel_mult) - 1} times "
                f"(channel_mult={self.channel_mult}); use a multiple of {factor}"
            )
        levels = self.level_resolutions
        for resolution in self.attention_resolutions:
            if resolution not in levels:
                raise SegbenchError(
                    f"attention_resolutions contains {resolution}, which no U-Net level has; "
                    f"level resolutions for image_size={self.image_size}: {', '.join(map(str, levels))}"
                )
        if self.base_channels % self.norm_groups:
            raise SegbenchError(
                f"base_channels={self.base_channels} is not divisible by norm_groups={self.norm_groups} (GroupNorm)"
            )
        # the middle block always has attention, at the last level's width
        attention_widths = {self.base_channels * self.channel_mult[-1]} | {
            self.base_channels * mult
            for mult, resolution in zip(self.channel_mult, levels)
            if resolution in self.attention_resolutions
        }
        for width in sorted(attention_widths):
            if width % self.head_channels:
                raise SegbenchError(
                    f"head_channels={self.head_channels} does not divide the attention width {width}; "
                    f"choose a divisor of {width}"
                )
        if not 0 <= self.dropout < 1:
            raise SegbenchError(f"dropout={self.dropout} must be in [0, 1)")


@dataclass(frozen=True)
class DiffusionConfig(UNetConfig):
    """Network, schedule and sampler hyperparameters of diff-add / diff-concat (validated on creation)."""

    timesteps: int
    beta_start: float
    beta_end: float
    sampler: str
    sampling_steps: int
    eta: float
    clip_x0: bool
    prediction: str
    loss: str

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("timesteps", "sampling_steps"):
            if getattr(self, name) < 1:
                raise SegbenchError(f"{name}={getattr(self, name)} must be a positive integer")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise SegbenchError(
                f"beta_start={self.beta_start}, beta_end={self.beta_end}: need 0 < beta_start < beta_end < 1"
            )
        if self.prediction not in PREDICTIONS:
            raise SegbenchError(f"unknown prediction {self.prediction!r}; valid: {', '.join(PREDICTIONS)}")
        if self.loss not in LOSSES:
            raise SegbenchError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.loss == "bce_dice" and self.prediction != "x0":
            raise SegbenchError(f"loss='bce_dice' needs prediction='x0' (the output is the mask's logit), not {self.prediction!r}")
        if self.sampler not in SAMPLERS:
            raise SegbenchError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if not 1 <= self.sampling_steps <= self.timesteps:
            raise SegbenchError(
                f"sampling_steps={self.sampling_steps} out of range for timesteps={self.timesteps}; "
                f"valid: 1..{self.timesteps}"
            )
        if self.eta < 0:
            raise SegbenchError(f"eta={self.eta} must be >= 0 (0: deterministic DDIM, 1: DDPM-like)")


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Convert a value from a preset, JSON or the command line to the field's type, or raise SegbenchError."""
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
        elif kind is int:
            if not isinstance(value, bool) and float(value) == int(float(value)):
                return int(float(value))
        elif kind is float:
            if not isinstance(value, bool):
                return float(value)
        elif kind is str:
            if isinstance(value, str):
                return value
        elif isinstance(value, str):  # tuple[int, ...] from the command line: "1,2,2" or "" for none
            return tuple(_coerce(name, part, int) for part in value.replace(" ", "").split(",") if part)
        else:
            return tuple(_coerce(name, part, int) for part in value)
    except (TypeError, ValueError, SegbenchError):
        pass
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, "a comma-separated list of integers"
    )
    raise SegbenchError(f"hyperparameter {name}={value!r} must be {expected}")
