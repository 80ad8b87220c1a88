"""What plugins register: models, datasets, metrics and report formats.

These are plain dataclasses with no heavy imports, so listing plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch

    from segbench.results import RunResults

PRESETS = ("tiny", "small", "paper")


class Prediction(NamedTuple):
    """What `predict` may return instead of a bare tensor.

    probabilities: (B, 1, H, W) in [0, 1]; uncertainty: (B, 1, H, W) per-pixel std, or None.
    """

    probabilities: torch.Tensor
    uncertainty: torch.Tensor | None = None


class Segmenter(Protocol):
    """A `torch.nn.Module` a model plugin's factory returns.

    images: float32 (B, 1, H, W) in [0, 1]; masks: float32 (B, 1, H, W) in {0, 1};
    seeds: int64 (B,), one per sample: every random draw for sample i must come
    from a generator seeded with seeds[i].
    """

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor: ...

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor | Prediction: ...


@dataclass(frozen=True)
class ModelSpec:
    """A registered segmenter.

    presets maps a preset name ("tiny", "small", "paper") to a flat dict of
    hyperparameters; a key "<preset>/<task>" (e.g. "paper/infection") overrides
    it for one task. Keys that name training settings (epochs, batch_size, lr,
    ...: see `segbench.engine.training.TrainConfig`) go to the engine, the rest
    to `factory`. A `prefix` spec serves every name "<name>:<variant>" and gets
    the variant as config["variant"] (e.g. "smp:FPN:resnet34"). `summary`, if
    given, maps resolved hyperparameters (with image_size) to one line that
    `segbench info` prints, e.g. formulation, sampler and network evaluations per mask.
    """

    name: str
    factory: Callable[[dict[str, Any]], Segmenter]
    family: str
    presets: Mapping[str, Mapping[str, Any]]
    description: str
    reference: str = ""
    prefix: bool = False
    summary: Callable[[Mapping[str, Any]], str] | None = None
    plugin: str = field(default="", compare=False)

    def hyperparameters(self, preset: str, task: str | None = None) -> dict[str, Any]:
        """Resolved hyperparameters for a preset (and task), falling back to "small"."""
        params = dict(self.presets.get(preset, self.presets.get("small", {})))
        if task is not None:
            params.update(self.presets.get(f"{preset}/{task}", {}))
        return params


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset factory is given.

    size: the run's square image size; a procedural source may render at it
    directly, file sources return native sizes and the core resizes.
    mask_threshold: None accepts only binary masks; T makes values above T foreground.
    """

    task: str
    root: Path | None
    size: int
    seed: int
    mask_threshold: int | None = None


class SegmentationSource(Protocol):
    """What a dataset factory returns: sample ids per split and a loader."""

    def sample_ids(self, split: str) -> Sequence[str]:
        """Stable ids for "train", "val" or "test"; raises SegbenchError for a missing split."""
        ...

    def load(self, split: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, mask): image (H, W) or (H, W, 3) uint8 or float in [0, 1];
        mask (H, W) with values in {0, 1} or {0, 255}."""
        ...

    def fingerprint(self, split: str) -> str:
        """Changes whenever the split's contents would change (files, sizes, generator version)."""
        ...


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: the tasks it serves and a factory for its source."""

    name: str
    tasks: tuple[str, ...]
    factory: Callable[[DatasetOptions], SegmentationSource]
    description: str
    needs_root: bool = False
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class MetricSpec:
    """A per-image metric computed from confusion counts.

    fn(tp, fp, fn, tn) takes float64 tensors of equal shape and returns the
    metric per element; `both_empty` / `degenerate` follow the empty-mask policy
    in `segbench.metrics.policy`.
    """

    name: str
    fn: Callable[..., torch.Tensor]
    description: str
    higher_is_better: bool = True
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class FormatSpec:
    """A report format: render(results, options) -> text."""

    name: str
    render: Callable[..., str]
    extension: str
    description: str
    plugin: str = field(default="", compare=False)


SPEC_TYPES: dict[str, type] = {
    "models": ModelSpec,
    "datasets": DatasetSpec,
    "metrics": MetricSpec,
    "formats": FormatSpec,
}
