"""A small test plugin: the `toy` dataset (bright squares), `toy-mixed` (every third image without a square:
healthy), `toy-cnn`, a tiny segmenter, and `toy-staged`, a segmenter trained in three stages that fails if
a stage receives a mask it was not given.

Loaded in tests through `--plugin tests.toy_plugin`, the route third parties use
for unpackaged modules. Fast enough for end-to-end CLI tests in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segbench import DatasetOptions, DatasetSpec, ModelSpec, Prediction, Preset, Stage, hookimpl
from segbench.errors import SegbenchError
from segbench.noise import randn_per_sample, sample_generators

SPLITS = {"train": 24, "val": 4, "test": 10}


class ToySquares:
    """Noisy images with one bright square each; the mask is the square. With `healthy_every` k, every
    k-th image (index % k == k - 1) has no square and an empty mask."""

    def __init__(self, options: DatasetOptions, healthy_every: int = 0) -> None:
        self.options, self.healthy_every = options, healthy_every

    def sample_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise SegbenchError(f"toy has no split {split!r}; valid: {', '.join(SPLITS)}")
        return [f"{split}/{i}" for i in range(SPLITS[split])]

    def load(self, split: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        index = int(sample_id.split("/")[1])
        rng = np.random.default_rng([SPLITS[split], index, len(split)])
        n = 48
        mask = np.zeros((n, n), np.uint8)
        y, x = rng.integers(4, 28, 2)
        side = int(rng.integers(8, 18))
        if not (self.healthy_every and index % self.healthy_every == self.healthy_every - 1):
            mask[y : y + side, x : x + side] = 1
        image = 0.3 + 0.4 * mask + rng.normal(0, 0.08, (n, n))
        return np.clip(image, 0, 1).astype(np.float32), mask

    def fingerprint(self, split: str) -> str:
        return hashlib.sha256(f"toy-v1-{split}-{SPLITS.get(split)}-{self.healthy_every}".encode()).hexdigest()


class ToyCNN(nn.Module):
    """Three convs; predict adds seeded noise of scale `noise` so seeding is observable."""

    def __init__(self, width: int, noise: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),
        )
        self.noise = noise

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.net(images), masks)

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> Prediction:
        logits = self.net(images)
        noise = randn_per_sample(images.shape[1:], sample_generators(seeds), images.device)
        probabilities = torch.sigmoid(logits + self.noise * noise)
        return Prediction(probabilities, torch.zeros_like(probabilities))


TOY_PRESET = {"width": 8, "noise": 0.5, "epochs": 12, "batch_size": 4, "lr": 0.03}

# The masks toy-staged's labelled stage read (their bytes), so a test can check it saw only the labelled ones.
MASKS_SEEN: set[bytes] = set()


class ToyStaged(nn.Module):
    """Three stages: `pretrain` (every training image, no masks) trains `body` to reconstruct images;
    `head` (the labelled images) trains a 1x1 `head` on the frozen body's features; `calibrate` (healthy
    validation images) sets `offset`, the mean logit of healthy pixels, subtracted before the sigmoid. Its
    image-only methods take no mask argument, so a stage handed a mask fails."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.ModuleDict({
            "encoder": nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                                     nn.ReLU()),
            "decoder": nn.Conv2d(width, 1, 3, padding=1),
        })
        self.head = nn.Conv2d(width, 1, 1)
        self.register_buffer("offset", torch.zeros(()))

    def reconstruction_loss(self, images: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.body["decoder"](self.body["encoder"](images)), images)

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        MASKS_SEEN.update(m.numpy().astype(np.uint8).tobytes() for m in masks.cpu())
        return F.binary_cross_entropy_with_logits(self.head(self.body["encoder"](images)), masks)

    def logits(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return self.head(self.body["encoder"](images))

    def calibrate(self, logits: torch.Tensor) -> None:
        self.offset.copy_(logits.mean() + 2.0)

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(images, seeds) - self.offset)

    def synthesize(self, seeds: torch.Tensor) -> torch.Tensor:
        """An "image" per seed: the body's reconstruction of uniform noise drawn from the seed."""
        noise = torch.stack([torch.rand(1, 32, 32, generator=g) for g in sample_generators(seeds)])
        return self.body["decoder"](self.body["encoder"](noise.to(seeds.device))).clamp(0, 1)


@dataclass(frozen=True)
class ToyBody:
    """What toy-staged's pretrained body depends on."""

    width: int


STAGES = (Stage("pretrain", view="images", loss="reconstruction_loss", trains="body", hyperparameters=ToyBody),
          Stage("head", view="labelled", trains="head"),
          Stage("calibrate", view="healthy", split="val", fit="calibrate", fit_on="logits"))
STAGED_PRESET = Preset({"width": 8}, {"epochs": 4, "batch_size": 4, "lr": 0.03},
                       {"pretrain": {"steps": 10}, "head": {"epochs": 6}})


@hookimpl
def register_datasets(register) -> None:
    register(DatasetSpec("toy", ("lung", "infection"), ToySquares, "bright squares for fast tests"))
    register(DatasetSpec("toy-mixed", ("lung", "infection"), lambda options: ToySquares(options, healthy_every=3),
                         "bright squares, every third image without one (healthy)"))


@hookimpl
def register_models(register) -> None:
    register(ModelSpec(
        name="toy-cnn",
        factory=lambda c: ToyCNN(c["width"], c["noise"]),
        family="cnn",
        presets={"tiny": TOY_PRESET, "small": TOY_PRESET, "paper": TOY_PRESET},
        description="three-conv test model with seeded prediction noise",
    ))
    register(ModelSpec(
        name="toy-staged",
        factory=lambda c: ToyStaged(c["width"]),
        family="cnn",
        presets={"tiny": STAGED_PRESET, "small": STAGED_PRESET, "paper": STAGED_PRESET},
        description="test model in three stages: reconstruction on every image, a head on labelled ones, "
                    "calibration on healthy validation images",
        stages=STAGES,
        network_evaluations=lambda c: 1,
        upper_bound=True,  # its probability is a calibrated score: the reports' upper-bound table is tested on it
    ))


EVENTS: list[tuple[str, object]] = []


@hookimpl
def on_run_start(run_dir, record) -> None:
    EVENTS.append(("on_run_start", record.plan.data.task))


@hookimpl
def on_epoch_end(model_name, epoch, metrics) -> None:
    EVENTS.append(("on_epoch_end", (model_name, epoch, round(metrics["loss"], 6))))


@hookimpl
def on_evaluation_end(model_name, summary) -> None:
    EVENTS.append(("on_evaluation_end", (model_name, summary["dice"]["mean"])))


@hookimpl
def on_run_end(run_dir) -> None:
    EVENTS.append(("on_run_end", run_dir))
