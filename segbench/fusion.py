"""How an ensemble of K sampled probability maps of one image becomes one map and a per-pixel uncertainty
(`--fusion`; the names are `segbench.plan.run_plan.FUSIONS`). Members are float32 (N, K, 1, H, W) in [0, 1],
N images of K members; each rule returns (probabilities, uncertainty), float32 (N, 1, H, W).

- mean: probability = the members' mean, uncertainty = their per-pixel (population) std.
- vote: each member thresholded (foreground where p >= threshold), the mask is the majority, a K/2 : K/2 tie
  background (as torch.mode gives it, Baranchuk et al.'s rule). probability = the fraction of foreground
  votes, a tie written as `BELOW_HALF` so that it thresholds to background at the protocol's 0.5 (at another
  threshold t the mask is where at least a fraction t of the members vote foreground, a tie counting just
  below 1/2); uncertainty = the binary entropy of the vote fraction (nats, 0 to ln 2).
- staple: each member thresholded, then STAPLE (Warfield, Zou and Wells 2004, IEEE TMI 23(7)): the EM
  algorithm that estimates each member's sensitivity and specificity and the hidden true segmentation;
  probability = its per-pixel posterior of foreground, uncertainty = the posterior's binary entropy (nats).
  Run per image by SimpleITK's STAPLEImageFilter (ITK's implementation) on one thread, so the result is
  deterministic and an image's does not depend on the others. An image whose members are all empty (or all
  full) is degenerate for the EM (0/0 sensitivity or specificity: ITK returns NaN): its posterior is that
  unanimous mask.
MedSegDiff's released code calls a one-pass re-weighted mean of its samples "staple"; that is not this one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

# The largest float32 below 1/2: a tied vote's probability, on the background side of the protocol's p >= 0.5.
BELOW_HALF = torch.nextafter(torch.tensor(0.5), torch.tensor(0.0)).item()


def binary_entropy(p: Tensor) -> Tensor:
    """H(p) = -p ln p - (1 - p) ln(1 - p) in nats, 0 at p in {0, 1}; elementwise."""
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p))


def mean_fusion(members: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The members' mean and per-pixel (population) std (the threshold is applied afterwards, to the mean)."""
    return members.mean(1), members.std(1, correction=0)


def vote_fusion(members: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """The fraction of members with p >= threshold, a tie as `BELOW_HALF`, and its binary entropy."""
    k = members.shape[1]
    votes = (members >= threshold).sum(1)
    fraction = votes / k
    return fraction.masked_fill(2 * votes == k, BELOW_HALF), binary_entropy(fraction)


def staple_posterior(masks: np.ndarray) -> np.ndarray:
    """STAPLE's posterior of foreground, float64 (H, W), of K binary masks bool (K, H, W) of one image."""
    if masks.all() or not masks.any():
        return masks[0].astype(np.float64)
    import SimpleITK as sitk  # the optional extra segbench[staple]; `segbench.plan.request.check_fusion` asks first
    staple = sitk.STAPLEImageFilter()
    staple.SetForegroundValue(1)
    staple.SetNumberOfThreads(1)  # ITK sums over pixels per thread: one thread fixes the summation order
    posterior = staple.Execute([sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks])
    return sitk.GetArrayFromImage(posterior)


def staple_fusion(members: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Each image's `staple_posterior` of its members thresholded, and its binary entropy."""
    masks = (members[:, :, 0] >= threshold).numpy()
    posterior = torch.from_numpy(np.stack([staple_posterior(m) for m in masks])).float().unsqueeze(1)
    return posterior, binary_entropy(posterior)


RULES: dict[str, Callable[[Tensor, float], tuple[Tensor, Tensor]]] = {
    "mean": mean_fusion, "vote": vote_fusion, "staple": staple_fusion}


def fuse(fusion: str, members: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Members (N, K, 1, H, W) -> (probabilities, uncertainty) (N, 1, H, W) by the rule named `fusion`."""
    return RULES[fusion](members, threshold)
