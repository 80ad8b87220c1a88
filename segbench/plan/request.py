"""What `segbench run` was asked for (the CLI's options, unresolved), and the checks a request needs
before anything is resolved: names, counts and paths the user can fix."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from segbench.data.augmentation import AUGMENT_CHOICES
from segbench.data.kaggle import check_handle, is_kaggle
from segbench.errors import SegbenchError, did_you_mean, unknown
from segbench.plan.run_plan import FUSION_CHOICES, SELECTION_RULES, model_fusion
from segbench.plugins import Registry
from segbench.specs import DatasetSpec, ModelSpec

MAX_IMAGE_SIZE = 4096  # a typo such as 64000 would otherwise end in an out-of-memory error


@dataclass(frozen=True)
class RunRequest:
    """Everything `segbench run` was asked for. epochs, steps, batch_size and lr override every model's."""

    task: str
    models: list[str]
    dataset: str = "cxr-phantom"
    data_root: str | None = None
    preset: str = "auto"
    seed: int = 0
    epochs: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    eval_samples: int | None = None
    eval_batch_size: int | None = None  # None: the device's default cap
    ensemble: int = 1
    image_size: int = 64
    device: str = "auto"
    out: str | None = None
    resume: bool = False
    sets: list[str] = field(default_factory=list)
    compile: bool = False
    precision: str = "auto"
    checkpoint_every: float = 300.0
    mask_threshold: int | None = None
    folds: str | None = None  # a folds file (segbench.data.folds); with `fold`, that fold is the test split
    fold: int | None = None
    dist_backend: str = "auto"  # torch.distributed backend under torchrun/srun: auto (nccl on CUDA, else gloo)
    dist_timeout: float = 600.0  # seconds any collective may wait for a rank before the run fails
    sync_batchnorm: bool = False  # several processes: BatchNorm statistics over the global batch
    track: list[str] = field(default_factory=list)  # experiment trackers (`--track`), e.g. ["tensorboard"]
    labels: int | None = None  # `--labels N`: training images that keep their masks (None: all)
    labels_seed: int = 0  # which N: independent of `seed`, so seeds vary training, not the data
    select: str = "last"  # `--select`: each labelled stage's last weights, or those of best validation Dice
    select_every: int | None = None  # `--select-every K`: steps between validation scorings (None: the default)
    augment: str = "none"  # `--augment`: the augmentation policy of every model's labelled images
    fusion: str = "mean"  # `--fusion`: how each image's ensemble of `ensemble` maps becomes one


def check_counts(*options: tuple[str, int | None]) -> None:
    """Every (option, value) given (not None) must be at least 1; the first that is not is a SegbenchError."""
    for option, value in options:
        if value is not None and value < 1:
            raise SegbenchError(f"{option} must be at least 1, got {value}")


def check_fusion(fusion: str, ensemble: int, models: Sequence[ModelSpec]) -> None:
    """--fusion names a rule (`FUSIONS`) or "paper" (each of `models` by its spec's rule); one that is not the
    mean fuses an ensemble (--ensemble K, K >= 2); staple, where any of `models` is fused by it, needs SimpleITK."""
    if fusion not in FUSION_CHOICES:
        raise unknown("--fusion rule", fusion, FUSION_CHOICES)
    if fusion != "mean" and ensemble < 2:
        raise SegbenchError(f"--fusion {fusion} fuses an ensemble of sampled masks; give --ensemble K with K >= 2")
    stapled = [spec.name for spec in models if model_fusion(fusion, spec.fusion) == "staple"]
    if stapled and importlib.util.find_spec("SimpleITK") is None:
        by = "" if fusion == "staple" else f" (fusing {', '.join(stapled)} by staple)"
        raise SegbenchError(f"--fusion {fusion}{by} needs SimpleITK: pip install 'segbench[staple]'")


def check_root(spec: DatasetSpec, root: str | None) -> None:
    """A dataset that reads files has its --data-root: a folder, or a `kaggle:` handle (downloaded when planned)."""
    if spec.needs_root:
        if not root:
            raise SegbenchError(f"dataset {spec.name!r} needs --data-root (the folder holding the data)")
        if is_kaggle(root):
            check_handle(root)
        elif not Path(root).expanduser().is_dir():
            raise SegbenchError(f"--data-root {root} is not a folder")


def check_selection(request: RunRequest) -> None:
    """--select names a rule; --select-every and a validation split go with --select best."""
    if request.select not in SELECTION_RULES:
        raise unknown("--select rule", request.select, SELECTION_RULES)
    if request.select_every is not None and request.select != "best":
        raise SegbenchError("--select-every sets how often --select best scores the validation masks; "
                            "give it with --select best")
    if request.select == "best" and request.folds is not None:
        raise SegbenchError("--select best scores checkpoints on the validation split, which --folds does not keep "
                            "(its folds pool every split); use --select last with --folds")


def check_request(request: RunRequest, registry: Registry) -> None:
    """Fail fast, before any work, on what the request names and counts (training settings are checked
    where they are resolved, with the model's preset: `segbench.plan.build`)."""
    if not request.models:
        raise SegbenchError(f"--models is empty; valid: {', '.join(registry.names('models'))}")
    if len(set(request.models)) != len(request.models):
        raise SegbenchError(f"--models lists a model twice: {','.join(request.models)}")
    for name in request.models:
        registry.model(name)
    for name in request.track:
        registry.tracker(name)
    spec = registry.dataset(request.dataset)
    if request.task not in spec.tasks:
        raise SegbenchError(f"dataset {spec.name!r} does not serve task {request.task!r}"
                            f"{did_you_mean(request.task, spec.tasks) or ';'} valid: {', '.join(spec.tasks)}")
    check_root(spec, request.data_root)
    if request.epochs is not None and request.steps is not None:
        raise SegbenchError("--epochs and --steps are two ways to give the training budget; give one of them")
    check_counts(("--eval-samples", request.eval_samples), ("--eval-batch-size", request.eval_batch_size),
                 ("--ensemble", request.ensemble), ("--labels", request.labels), ("--select-every", request.select_every))
    check_selection(request)
    check_fusion(request.fusion, request.ensemble, [registry.model(name) for name in request.models])
    if request.augment not in AUGMENT_CHOICES:
        raise unknown("--augment policy", request.augment, AUGMENT_CHOICES)
    if not (request.dist_timeout > 0 and math.isfinite(request.dist_timeout)):
        raise SegbenchError(f"--dist-timeout must be a positive number of seconds, got {request.dist_timeout}")
    if not (request.checkpoint_every >= 0 and math.isfinite(request.checkpoint_every)):
        raise SegbenchError(f"--checkpoint-every must be a number of seconds >= 0, got {request.checkpoint_every}")
    if request.mask_threshold is not None and not 0 <= request.mask_threshold < 255:
        raise SegbenchError(f"--mask-threshold must be a mask value from 0 to 254, got {request.mask_threshold}")
    if (request.folds is None) != (request.fold is None):
        raise SegbenchError("--folds FILE and --fold I go together (fold I of the folds file is the test split)")
    if request.folds is not None and not Path(request.folds).is_file():
        raise SegbenchError(f"--folds {request.folds} is not a file")
    if not 16 <= request.image_size <= MAX_IMAGE_SIZE:
        raise SegbenchError(f"--image-size must be from 16 to {MAX_IMAGE_SIZE}, got {request.image_size}")
