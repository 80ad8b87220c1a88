"""What plugins register: models, datasets, metrics, report formats, study executors and trackers.

These are plain dataclasses with no heavy imports, so listing plugins stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from segbench.errors import SegbenchError

if TYPE_CHECKING:
    import numpy as np
    import torch

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

    Optional: `synthesize(seeds) -> images` float32 (B, 1, H, W) in [0, 1], one image per seed, for a model
    with a generative model of the images (an unconditional DDPM): a run then keeps a few of them for the
    report's grid beside real images (and FID/KID with Inception weights on disk).
    """

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor: ...

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor | Prediction: ...


VIEWS = ("labelled", "images", "healthy")
STAGE_SPLITS = ("train", "val")
FLIPS = ("left-right", "up-down")  # the flips a dataset may allow augmentation (`DatasetSpec.flips`)


@dataclass(frozen=True)
class Stage:
    """One stage of a model's training: the data it sees, what it optimises, and which parameters.

    view: "labelled" (the labelled images and their masks: all of them, or `--labels N`), "images" (every
    image of the split, labelled or not, without masks) or "healthy" (the split's images with an empty
    reference, or the dataset's healthy group; without masks). A stage gets exactly its view, and validation
    images only with split="val"; never the test split.
    loss: the segmenter's method giving the stage's scalar loss on a batch: loss(images, masks) for the
    labelled view, loss(images) for the others. Or fit: a method that sets the model's state without an
    optimiser (a calibration, say), called once as fit(outputs) with the outputs of method `fit_on` on the
    whole view, float32 (N, 1, H, W) on the CPU, computed as prediction computes `predict`'s (fit_on(images,
    seeds) with the same per-sample seeds, batch shape, padding and precision); a stage has a loss or a fit,
    not both.
    trains: the attribute name of the submodule whose parameters the stage optimises ("": all of them); the
    rest is frozen (no gradients, modules in eval mode) for the stage.
    augment: whether a stage on the images or healthy view trains on batches augmented by the run's policy
    (`--augment`; images alone); a labelled stage's batches always are, images and masks together.
    hyperparameters: a dataclass whose fields are the model hyperparameters the stage's result depends on
    (None: all of them); a stage whose view and earlier stages do not depend on the label budget is trained
    once and reused, named by a digest of their values, the data, the seed and its training settings.
    """

    name: str
    view: str = "labelled"
    loss: str = "training_loss"
    fit: str = ""
    fit_on: str = ""
    trains: str = ""
    split: str = "train"
    hyperparameters: type | None = None
    augment: bool = False
    description: str = field(default="", compare=False)  # not part of what the stage is, nor of its digest

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise SegbenchError(f"stage {self.name!r} has view {self.view!r}; valid: {', '.join(VIEWS)}")
        if self.split not in STAGE_SPLITS:
            raise SegbenchError(f"stage {self.name!r} has split {self.split!r}; valid: {', '.join(STAGE_SPLITS)}")
        if bool(self.fit) != bool(self.fit_on):
            raise SegbenchError(f"stage {self.name!r} has fit={self.fit!r} and fit_on={self.fit_on!r}: a fit names "
                                "the method whose outputs it fits, e.g. fit='calibrate', fit_on='scores'")
        if self.hyperparameters is not None and not (isinstance(self.hyperparameters, type)
                                                     and is_dataclass(self.hyperparameters)):
            raise SegbenchError(f"stage {self.name!r} has hyperparameters={self.hyperparameters!r}; expected a "
                                "dataclass whose fields are the hyperparameters its result depends on, or None")

    @property
    def needs_labels(self) -> bool:
        """Whether the stage's data depend on the label budget (it reads masks)."""
        return self.view == "labelled"

    @property
    def augmented(self) -> bool:
        """Whether the run's augmentation policy applies to the stage's batches (a fit has none)."""
        return not self.fit and (self.needs_labels or self.augment)


# What a model without declared stages trains in: one stage on the labelled pairs, every parameter.
SINGLE_STAGE = (Stage("train"),)


@dataclass(frozen=True)
class Preset:
    """One preset of a model: `model` hyperparameters (for its factory), `training` settings (for the
    engine: any field of `segbench.training_settings.TrainingSettings`, e.g. steps or epochs, batch_size, lr),
    and for a model in several stages, `stages`: per stage name, settings layered over `training`."""

    model: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, values: Preset | Mapping[str, Any]) -> Preset:
        """A Preset as is; a flat dict split by key: training settings to `training`, the rest to `model`."""
        if isinstance(values, Preset):
            return values
        from segbench.training_settings import TrainingSettings

        training = set(TrainingSettings.keys())
        return cls({k: v for k, v in values.items() if k not in training},
                   {k: v for k, v in values.items() if k in training})


FUSION_RULES = ("mean", "vote", "staple")  # how an ensemble's sampled masks become one (`segbench.fusion`)


@dataclass(frozen=True)
class ModelSpec:
    """A registered segmenter.

    presets maps a preset name ("tiny", "small", "paper") to a `Preset` (or a flat dict, split by key:
    training settings to the engine, the rest to `factory`); a key "<preset>/<task>" (e.g.
    "paper/infection") is layered over it for one task. `schema`, if given, is a dataclass whose fields
    declare the model's hyperparameters and their types (a field `image_size` is filled in by the run);
    without one, the types are those of the preset values. `factory` gets the hyperparameters with
    "image_size" (and, for a `prefix` spec, which serves every name "<name>:<variant>", "variant": e.g.
    "FPN:resnet34" for "smp:FPN:resnet34"; `variant_help` says what a variant looks like).
    `summary`, if given, maps the hyperparameters (with image_size) to one line that `segbench info`
    prints, e.g. formulation, sampler and network evaluations per mask. `network_evaluations`, if given,
    maps them to the number of network forward passes one predicted mask costs (1 for a U-Net, the
    sampling steps for a diffusion model); reports print it in each model's cost. `stages`: the model's
    training stages in order (see `Stage`); without them, one stage on the labelled pairs. `upper_bound`:
    its probability is a score thresholded at a calibrated point (an anomaly model's), so reports add the
    Dice at the best threshold on the test set, marked as an upper bound, and the score's image-level AUROC.
    `fusion`: the rule (of `FUSION_RULES`) its paper fuses a sampled ensemble by, which
    `--fusion paper` uses.
    """

    name: str
    factory: Callable[[dict[str, Any]], Segmenter]
    family: str
    presets: Mapping[str, Preset | Mapping[str, Any]]
    description: str
    reference: str = ""
    prefix: bool = False
    variant_help: str = ""
    schema: type | None = None
    summary: Callable[[Mapping[str, Any]], str] | None = None
    network_evaluations: Callable[[Mapping[str, Any]], int] | None = None
    stages: tuple[Stage, ...] = SINGLE_STAGE
    upper_bound: bool = False
    fusion: str = "mean"
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if not names or len(set(names)) != len(names):
            raise SegbenchError(f"model {self.name!r} needs one or more stages with distinct names, got {names}")
        if self.fusion not in FUSION_RULES:
            raise SegbenchError(f"model {self.name!r} has fusion {self.fusion!r}; valid: {', '.join(FUSION_RULES)}")

    def preset(self, name: str, task: str | None = None) -> Preset:
        """The preset `name` (falling back to "small") with its "<name>/<task>" layer applied."""
        base = Preset.of(self.presets.get(name, self.presets.get("small", {})))
        layer = Preset.of(self.presets.get(f"{name}/{task}", {})) if task is not None else Preset()
        stages = {stage: {**base.stages.get(stage, {}), **layer.stages.get(stage, {})}
                  for stage in {*base.stages, *layer.stages}}
        return Preset({**base.model, **layer.model}, {**base.training, **layer.training}, stages)


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
    """What a dataset factory returns: sample ids per split and a loader.

    Optional: `metadata(split, sample_id) -> Mapping[str, str]`, facts about a sample (e.g. {"group":
    "COVID-19"}), the same keys for every sample of a split; keys are lower-case names (letters, digits,
    `_`). They are cached with the arrays (so the fingerprint must change when they would), land in
    per_image.csv as columns, and `segbench report --by KEY` breaks the results down by them.
    """

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
    """A registered dataset: the tasks it serves and a factory for its source. `healthy` names the
    metadata group of its healthy images, e.g. ("group", "Normal"), for models that train on healthy
    images only; without it, an image is healthy when its reference is empty. `flips`: the axes (of
    `FLIPS`) along which a flipped image is still a valid sample of the task, which `--augment` may then
    flip; none by default (a chest X-ray flipped left-right puts the heart on the wrong side).

    For data users download, `segbench data` reads two optional fields: `expected`, the published
    counts {task: {split: {group: images}}} that `segbench data check` compares a data root against (the
    group is a sample's metadata "group", or "all" for a source without one), and `layout(source, root,
    path)`, which `segbench data layout` calls to lay a downloaded copy (a folder, or the folder `path`
    in it or in a bare git repository, see `segbench.data.tree`) out under `root` where the factory
    reads it, returning the lines to print."""

    name: str
    tasks: tuple[str, ...]
    factory: Callable[[DatasetOptions], SegmentationSource]
    description: str
    needs_root: bool = False
    synthetic: str = ""  # for generated data, what it is (reports say so); empty for real data
    healthy: tuple[str, str] | None = None  # (metadata key, value) of its healthy images; None: empty references
    expected: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None
    layout: Callable[[Path, Path, str], list[str]] | None = None
    flips: tuple[str, ...] = ()
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if bad := [axis for axis in self.flips if axis not in FLIPS]:
            raise SegbenchError(f"dataset {self.name!r} allows flip {bad[0]!r}; valid: {', '.join(FLIPS)}")
        if self.expected is not None and (unserved := sorted(set(self.expected) - set(self.tasks))):
            raise SegbenchError(f"dataset {self.name!r} gives expected counts for task {unserved[0]!r}, which it "
                                f"does not serve; its tasks: {', '.join(self.tasks)}")


@dataclass(frozen=True)
class MetricSpec:
    """A per-image metric, of one of two kinds (`kind`):

    - "counts": fn(tp, fp, fn, tn) takes float64 tensors of equal shape and returns the metric per element,
      vectorised over all images; its 0/0 cases follow the empty-mask policy in `segbench.metrics.policy`;
      its pooled value is fn of the counts summed over images.
    - "masks": fn(pair) takes one image's `segbench.metrics.masks.MaskPair` (predicted and reference masks,
      probabilities, boundary distances shared by every metric of the image) and returns a float; it has
      no pooled value.

    `empty_rule` says in words what the metric is when a mask is empty (printed in every report's policy;
    a count metric that follows the shared policy leaves it empty). `higher_is_better` picks the bold
    values. `label` is how report tables name it ("Dice", "HD95 (px)"; default: `name`, which CSV keeps). `variants`, if given, serves the names "<name>:<text>": variants(text) returns that metric's
    spec (e.g. "nsd:2", NSD at a 2-pixel tolerance) or raises SegbenchError; `variant_help` says what
    text looks like.
    """

    name: str
    fn: Callable[..., Any]
    description: str
    higher_is_better: bool = True
    kind: str = "counts"
    empty_rule: str = ""
    variants: Callable[[str], MetricSpec] | None = None
    variant_help: str = ""
    label: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise SegbenchError(f"metric {self.name!r} has kind {self.kind!r}; valid: {', '.join(METRIC_KINDS)}")


METRIC_KINDS = ("counts", "masks")


FIGURE_MODES = ("embedded", "linked", "none")


@dataclass(frozen=True)
class FormatSpec:
    """A report format: render(results, options) -> text.

    figures: "embedded" (render gets every figure in options["figures"], e.g. as base64 in the file),
    "linked" (with --out, figures are written beside the report and get a relative `path`), or "none".
    figure_file: the image type of its figures, "png" (300 dpi) or "pdf" (vector, for LaTeX).
    render_study(study_results, options) -> text, if given, renders a study directory's report
    (`segbench.study.results.StudyResults`); a format without it reports single runs only.
    """

    name: str
    render: Callable[..., str]
    extension: str
    description: str
    figures: str = "none"
    figure_file: str = "png"
    render_study: Callable[..., str] | None = None
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.figure_file not in ("png", "pdf"):
            raise SegbenchError(f"format {self.name!r} has figure_file {self.figure_file!r}; valid: png, pdf")


class Executor(Protocol):
    """Runs a study's cells: `run(jobs)` runs every job (each a picklable `segbench.study.jobs.CellJob`,
    whose `__call__` trains and evaluates one cell, resuming it exactly) and returns, per job, None when
    it finished or the reason it did not."""

    def run(self, jobs: Sequence[Any]) -> list[str | None]: ...


@dataclass(frozen=True)
class ExecutorSpec:
    """A registered study executor: factory(options) -> Executor, where `options` is the study file's
    [executor] table (without `name`) merged with the command line's. `requires` names a Python package
    the executor imports (its absence is one clear line, naming the extra that installs it)."""

    name: str
    factory: Callable[[Mapping[str, Any]], Executor]
    description: str
    requires: str = ""
    plugin: str = field(default="", compare=False)


@dataclass(frozen=True)
class TrackerSpec:
    """A registered experiment tracker: a name `--track` (and a study's `track`) accepts. The plugin that
    registers it does the tracking in its lifecycle hooks, for runs whose `record.plan.track` names it."""

    name: str
    description: str
    plugin: str = field(default="", compare=False)


SPEC_TYPES: dict[str, type] = {
    "models": ModelSpec,
    "datasets": DatasetSpec,
    "metrics": MetricSpec,
    "formats": FormatSpec,
    "executors": ExecutorSpec,
    "trackers": TrackerSpec,
}
