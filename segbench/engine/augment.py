"""A training batch augmented by a policy (`segbench.data.augmentation`): each sample's parameters drawn on the
CPU from a generator of its own, seeded by (run seed, epoch, sample id), then applied to the whole batch on
its device.

A sample's augmentation therefore depends on nothing else in its batch: not its companions, its position,
the batch size, a micro-batch split after GPU out-of-memory, or the process it is trained in; it draws
nothing from the global generators, so training's own draws stay as they were. A sample is seen at most once
per epoch, and its draws do not depend on the model, so every model of a run sees it augmented alike in each
epoch. The batch-wise part is element-wise arithmetic, `grid_sample` and `interpolate`, whose every output
element is computed from its own sample alone; means are taken sample by sample, as a reduction's order may
depend on the batch.

Written on torch's own resampling rather than MONAI's or kornia's random transforms: those draw from one
random state per transform or per batch (kornia's noise and elastic fields from the global generator), not
from a generator per sample, and importing MONAI's transforms costs seconds at every run's start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segbench.data.augmentation import AugmentPolicy, Draw
from segbench.seeds import derive_seed

# Per sample, in this order, from its generator: one uniform per gate (is the transform applied) and one per
# parameter, then the control points' displacements, then the noise.
GATES = ("rotation", "scale", "deformation", "left-right", "up-down", "noise", "blur", "brightness", "contrast",
         "gamma")
PARAMETERS = ("rotation", "scale", "deformation", "noise", "blur", "brightness", "contrast", "gamma")
TRUNCATE = 3.0  # the blur kernel's half-width in sigmas


def augment_seed(run_seed: int, epoch: int, sample_id: str) -> int:
    """The seed of sample `sample_id`'s augmentation in `epoch`."""
    return derive_seed("augment", run_seed, epoch, sample_id)


@dataclass(frozen=True)
class Parameters:
    """A batch's drawn parameters, on its device: `on` (B, len(GATES)) whether each transform applies; the
    inverse map of rotation and scale as (B, 2) (cos, sin) / scale; control-point displacements (B, 2, G, G)
    in grid_sample's units; noise (B, 1, H, W); blur kernels (B, K); brightness, contrast, gamma (B,)."""

    on: torch.Tensor
    rotation: torch.Tensor
    displacement: torch.Tensor
    noise: torch.Tensor
    kernel: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    gamma: torch.Tensor

    def gate(self, name: str) -> torch.Tensor:
        """(B, 1, 1, 1) True where transform `name` applies."""
        return self.on[:, GATES.index(name)].view(-1, 1, 1, 1)


def _value(draw: Draw, u: float) -> float:
    return draw.low + (draw.high - draw.low) * u


def _kernel(sigma: float) -> torch.Tensor:
    """The sampled Gaussian of `sigma` pixels, truncated at TRUNCATE sigmas, summing to 1 (float64)."""
    radius = math.ceil(TRUNCATE * sigma)
    weights = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2 / (2 * sigma ** 2))
    return weights / weights.sum()


def draw_sample(policy: AugmentPolicy, seed: int, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """One sample's parameters (CPU, float32), drawn from a generator seeded with `seed`."""
    g = torch.Generator().manual_seed(seed)
    gates = dict(zip(GATES, torch.rand(len(GATES), generator=g, dtype=torch.float64).tolist()))
    u = dict(zip(PARAMETERS, torch.rand(len(PARAMETERS), generator=g, dtype=torch.float64).tolist()))
    control = torch.randn(2, policy.control_points, policy.control_points, generator=g)
    noise = torch.randn(1, *size, generator=g)
    probability = {"left-right": policy.flip if "left-right" in policy.flips else 0.0,
                   "up-down": policy.flip if "up-down" in policy.flips else 0.0,
                   **{name: getattr(policy, name).p for name in GATES if name not in ("left-right", "up-down")}}
    on = {name: gates[name] < probability[name] for name in GATES}
    angle = math.radians(_value(policy.rotation, u["rotation"])) if on["rotation"] else 0.0
    scale = _value(policy.scale, u["scale"]) if on["scale"] else 1.0
    spread = 2 * _value(policy.deformation, u["deformation"]) if on["deformation"] else 0.0  # the side spans 2
    kernel = _kernel(_value(policy.blur, u["blur"]))
    kernel = F.pad(kernel, ((len(_kernel(policy.blur.high)) - len(kernel)) // 2,) * 2)  # every sample's as long
    return {
        "on": torch.tensor([on[name] for name in GATES]),
        "rotation": torch.tensor([math.cos(angle) / scale, math.sin(angle) / scale]),
        "displacement": control * spread,
        "noise": noise * _value(policy.noise, u["noise"]),
        "kernel": kernel.float(),
        "brightness": torch.tensor(_value(policy.brightness, u["brightness"])),
        "contrast": torch.tensor(_value(policy.contrast, u["contrast"])),
        "gamma": torch.tensor(_value(policy.gamma, u["gamma"])),
    }


def draw(policy: AugmentPolicy, seeds: Sequence[int], size: tuple[int, int], device: torch.device) -> Parameters:
    """Every sample's parameters, each from its own seed, stacked on `device`."""
    samples = [draw_sample(policy, seed, size) for seed in seeds]
    return Parameters(**{key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]})


def _warp(x: torch.Tensor, p: Parameters) -> torch.Tensor:
    """`x` (B, C, H, W) resampled bilinearly where each output pixel's source is its position rotated and
    scaled about the centre, then displaced by the interpolated control points (zeros outside the image)."""
    h, w = x.shape[-2:]
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device).view(1, 1, w)  # pixel centres
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device).view(1, h, 1)
    a, b = p.rotation[:, 0].view(-1, 1, 1), p.rotation[:, 1].view(-1, 1, 1)
    field = F.interpolate(p.displacement, size=(h, w), mode="bicubic", align_corners=True)
    grid = torch.stack([a * xs + b * ys + field[:, 0], a * ys - b * xs + field[:, 1]], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable convolution of each sample with its own kernel (B, K), edges replicated: a sum of shifted
    copies, element by element."""
    radius = kernel.shape[1] // 2
    for dim in (-1, -2):
        pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
        padded, out = F.pad(x, pad, mode="replicate"), torch.zeros_like(x)
        for k in range(kernel.shape[1]):
            out = out + kernel[:, k].view(-1, 1, 1, 1) * padded.narrow(dim, k, x.shape[dim])
        x = out
    return x


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each image scaled by `factor` about its mean, clipped to its own range."""
    mean = torch.stack([sample.mean() for sample in x]).view(-1, 1, 1, 1)  # one sample at a time: see the module
    low, high = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    return torch.minimum(torch.maximum((x - mean) * factor.view(-1, 1, 1, 1) + mean, low), high)


def apply(p: Parameters, images: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Images (B, 1, H, W) in [0, 1] (and masks in {0, 1}) augmented with `p`: flips and the warp on both,
    then noise, blur, brightness, contrast and gamma on the image; a transform a sample does not draw leaves
    it exactly as it was."""
    pairs = [images] if masks is None else [images, masks]
    for name, dim in (("left-right", -1), ("up-down", -2)):
        pairs = [torch.where(p.gate(name), x.flip(dim), x) for x in pairs]
    spatial = p.gate("rotation") | p.gate("scale") | p.gate("deformation")
    warped = [_warp(x, p) for x in pairs]
    if masks is not None:
        warped[1] = (warped[1] >= 0.5).to(masks.dtype)
    x, *rest = [torch.where(spatial, new, old) for new, old in zip(warped, pairs)]
    x = torch.where(p.gate("noise"), x + p.noise, x)
    x = torch.where(p.gate("blur"), _blur(x, p.kernel), x)
    x = torch.where(p.gate("brightness"), x * p.brightness.view(-1, 1, 1, 1), x)
    x = torch.where(p.gate("contrast"), _contrast(x, p.contrast), x)
    x = torch.where(p.gate("gamma"), x.clamp(0, 1) ** p.gamma.view(-1, 1, 1, 1), x)
    return (x.clamp(0, 1), *rest)


@dataclass(frozen=True)
class Augmenter:
    """A run's policy with its seed and the training view's sample ids: `augmenter(batch, index, epoch)` is
    the batch of those samples (index into `ids`) as `apply` augments it."""

    policy: AugmentPolicy
    run_seed: int
    ids: Sequence[str]

    def __call__(self, batch: tuple[torch.Tensor, ...], index: torch.Tensor, epoch: int) -> tuple[torch.Tensor, ...]:
        images = batch[0]
        seeds = [augment_seed(self.run_seed, epoch, self.ids[i]) for i in index.tolist()]
        return apply(draw(self.policy, seeds, tuple(images.shape[-2:]), images.device), *batch)
