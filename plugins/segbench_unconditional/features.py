"""Pixel features from a DDPM's decoder and the ensemble of pixel MLPs that reads them
(Baranchuk et al. 2021, "Label-Efficient Semantic Segmentation with Diffusion Models", Sec. 3).

For an image x_0 and each t of a few timesteps, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with one
noise eps shared by every image and timestep (their code's `share_noise`), one U-Net forward pass, and
the chosen decoder blocks' activations, bilinearly upsampled to the image size and concatenated:
a feature vector of length d per pixel. An ensemble of pixel MLPs reads it; their outputs are fused by
majority vote (the paper's) or by the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segbench.fusion import BELOW_HALF, binary_entropy
from segbench_backbone.schedules import q_sample
from segbench_unconditional.network import XrayDDPM


@torch.no_grad()
def pixel_features(ddpm: XrayDDPM, images: Tensor, timesteps: Sequence[int], blocks: Sequence[int],
                   noise: Tensor) -> Tensor:
    """images (B, 1, S, S) in [0, 1] -> features float32 (B, d, S, S), d = len(timesteps) x sum of the blocks'
    channels; ordered by timestep, then block. noise (1, 1, S, S) is shared by every image and timestep."""
    x0 = images * 2 - 1
    size = images.shape[-2:]
    features = []
    for t in timesteps:
        t_batch = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
        x_t = q_sample(x0, t_batch, noise.expand_as(x0), ddpm.alphas_cumprod)
        for activation in ddpm.decoder_activations(x_t, t_batch, blocks):
            features.append(F.interpolate(activation, size=size, mode="bilinear", align_corners=False))
    return torch.cat(features, dim=1)


def pixel_mlp(features: int, widths: Sequence[int], outputs: int = 1) -> nn.Sequential:
    """Linear(d, w1)-ReLU-BN(w1)-...-Linear(w_last, outputs), the paper's classifier (widths 128, 32), with
    its initialisation: weights N(0, 0.02), biases 0."""
    layers: list[nn.Module] = []
    previous = features
    for width in widths:
        layers += [nn.Linear(previous, width), nn.ReLU(), nn.BatchNorm1d(width)]
        previous = width
    layers.append(nn.Linear(previous, outputs))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class PixelMLPEnsemble(nn.Module):
    """`size` independent pixel MLPs (d -> widths -> 1 logit of the foreground)."""

    def __init__(self, features: int, widths: Sequence[int], size: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(pixel_mlp(features, widths) for _ in range(size))

    def forward(self, pixels: Tensor) -> Tensor:
        """pixels (N, d) -> logits (M, N), one row per member."""
        return torch.stack([member(pixels).squeeze(1) for member in self.members])

    def member_logits(self, pixels: Tensor) -> Tensor:
        """pixels (M, N, d), member m's own N pixels -> logits (M, N): how each member sees its own batch."""
        return torch.stack([member(x).squeeze(1) for member, x in zip(self.members, pixels)])


def vote_fusion(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Baranchuk et al.'s prediction from the members' foreground logits (M, ...) -> (probabilities, uncertainty),
    each (...).

    Each member votes for its argmax class, foreground when its logit > 0; the mask is the majority (their
    torch.mode over members), a tie background as torch.mode gives it (the smaller class). The probability is
    the fraction of foreground votes, a tie written as `BELOW_HALF`. The uncertainty is their per-pixel `js`,
    the members' Jensen-Shannon divergence H(mean_m p_m) - mean_m H(p_m) in nats (0..ln 2), with p_m =
    sigmoid(logit_m); clamped at 0 against rounding.
    """
    members = logits.shape[0]
    votes = (logits > 0).sum(0)
    probabilities = (votes / members).masked_fill(2 * votes == members, BELOW_HALF)
    p = logits.sigmoid()
    js = binary_entropy(p.mean(0)) - binary_entropy(p).mean(0)
    return probabilities, js.clamp_min(0)


def mean_fusion(logits: Tensor) -> tuple[Tensor, Tensor]:
    """The members' (M, ...) mean foreground probability and its per-pixel (population) std, each (...)."""
    p = logits.sigmoid()
    return p.mean(0), p.std(0, correction=0)


def as_pixels(maps: Tensor) -> Tensor:
    """(B, C, H, W) -> (B H W, C), pixels in (image, row, column) order."""
    return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])
