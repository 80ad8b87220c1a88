"""Augmentation policies (`--augment`): which transforms a training batch may go through, with what
probability and over which ranges; `segbench.engine.augment` draws each sample's parameters and applies them.

`standard` follows nnU-Net's 2D policy (Isensee et al., Nature Methods 2021, its default data augmentation),
scaled down to the small, centred images of this benchmark: small rotations and scaling, a mild grid
deformation, flips only along the axes the dataset declares (`DatasetSpec.flips`), Gaussian noise and blur,
multiplicative brightness, contrast and gamma. Left out of nnU-Net's: simulated low resolution and inverted
gamma. Torch-free, so the plan can name and check the policies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple


class Draw(NamedTuple):
    """A transform applied to a sample with probability `p`, its parameter drawn uniformly from [low, high]."""

    p: float
    low: float
    high: float


@dataclass(frozen=True)
class AugmentPolicy:
    """A named policy. Geometric transforms move image and mask together (the mask resampled bilinearly and
    re-thresholded at 0.5); intensity transforms touch the image alone, which stays in [0, 1].

    rotation: degrees; scale: zoom factor (> 1 enlarges); deformation: the standard deviation of the
    displacement of a `control_points` x `control_points` grid (interpolated bicubically to every pixel), in
    fractions of the image side; flip: the probability of each flip along an axis in `flips`; noise: the
    standard deviation of additive Gaussian noise; blur: the Gaussian's sigma in pixels; brightness: a
    multiplicative factor; contrast: a factor about the image's mean (its range kept); gamma: an exponent.
    """

    name: str
    rotation: Draw
    scale: Draw
    deformation: Draw
    flip: float
    noise: Draw
    blur: Draw
    brightness: Draw
    contrast: Draw
    gamma: Draw
    control_points: int = 4
    flips: tuple[str, ...] = ()  # the axes the dataset allows flipping along (`segbench.specs.FLIPS`)


STANDARD = AugmentPolicy(
    name="standard", rotation=Draw(0.2, -15.0, 15.0), scale=Draw(0.2, 0.85, 1.15), deformation=Draw(0.2, 0.01, 0.025),
    flip=0.5, noise=Draw(0.1, 0.0, 0.05), blur=Draw(0.2, 0.5, 1.0), brightness=Draw(0.15, 0.75, 1.25),
    contrast=Draw(0.15, 0.75, 1.25), gamma=Draw(0.3, 0.7, 1.5))
POLICIES = {"standard": STANDARD}
AUGMENT_CHOICES = ("none", *POLICIES)  # `--augment`: none leaves every batch as it is


def resolve(policy: str, flips: tuple[str, ...]) -> AugmentPolicy | None:
    """The policy named `policy` with the flips a dataset allows; None for none."""
    return None if policy == "none" else replace(POLICIES[policy], flips=tuple(flips))


def describe(policy: str, flips: tuple[str, ...]) -> str:
    """The policy in one line for a report: its transforms, ranges and the flips it used."""
    if policy == "none":
        return "none"
    p = POLICIES[policy]
    allowed = ", ".join(flips) if flips else "none (the dataset declares none)"
    return (f"{policy}: rotation ±{p.rotation.high:g}°, scale {p.scale.low:g}-{p.scale.high:g}, grid deformation "
            f"(sd {p.deformation.low:g}-{p.deformation.high:g} of the side), flips {allowed}; image only: noise "
            f"(sd ≤ {p.noise.high:g}), blur (sigma {p.blur.low:g}-{p.blur.high:g} px), brightness, contrast "
            f"{p.contrast.low:g}-{p.contrast.high:g}, gamma {p.gamma.low:g}-{p.gamma.high:g}; "
            "each sample's draws from (seed, epoch, sample id)")
