"""A minimal third-party segbench plugin: one model, `template-fcn`, and one metric read from the masks,
`components`.

Copy this folder, rename the package and the model, then `pip install -e .`:
segbench finds the plugin through the "segbench" entry-point group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segbench import MetricSpec, ModelSpec, hookimpl


class TemplateFCN(nn.Module):
    """A small fully convolutional segmenter: conv blocks at full resolution, one logit per pixel."""

    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        layers.append(nn.Conv2d(channels, 1, 1))
        self.net = nn.Sequential(*layers)

    def training_loss(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """images (B, 1, H, W) in [0, 1], masks (B, 1, H, W) in {0, 1} -> scalar BCE."""
        return F.binary_cross_entropy_with_logits(self.net(images), masks)

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        """Probabilities (B, 1, H, W); deterministic, so `seeds` is unused."""
        return torch.sigmoid(self.net(images))


@hookimpl
def register_models(register) -> None:
    register(ModelSpec(
        name="template-fcn",
        factory=lambda config: TemplateFCN(config["width"], config["depth"]),
        family="cnn",
        presets={
            "tiny": {"width": 4, "depth": 2, "epochs": 1, "batch_size": 4},
            "small": {"width": 16, "depth": 3, "epochs": 10, "batch_size": 16, "lr": 1e-3},
            "paper": {"width": 32, "depth": 5, "epochs": 100, "batch_size": 64, "lr": 1e-3},
        },
        description="template plugin: a small fully convolutional network",
        reference="https://github.com/your/segbench-template",
    ))


def components(pair) -> float:
    """|connected components predicted - in the reference| (8-connected): how many lesions a prediction
    splits, merges, misses or invents. `pair` is a segbench.metrics.masks.MaskPair: bool (H, W) `prediction`
    and `reference`, and the `probabilities`."""
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, 2)
    return float(abs(ndimage.label(pair.prediction, structure)[1] - ndimage.label(pair.reference, structure)[1]))


@hookimpl
def register_metrics(register) -> None:
    register(MetricSpec(
        name="components",
        fn=components,
        description="difference in the number of connected components (8-connected)",
        higher_is_better=False,
        kind="masks",  # fn gets one image's masks; "counts" metrics get TP, FP, FN, TN of all images
        empty_rule="an empty mask has no components: both empty 0, one empty the other's count",
    ))
