"""RRDB condition encoder (ESRGAN, Wang et al. 2018), as SegDiff uses it to encode the image."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ESRGAN's residual scaling: each dense block adds 0.2 x its output, which keeps a
# deep stack of them close to the identity at initialisation.
RESIDUAL_SCALE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five densely connected conv3x3 (growth `gc`, LeakyReLU 0.2), scaled residual: (B, nf, H, W) -> same."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(nf + i * gc, gc, 3, padding=1) for i in range(4))
        self.fuse = nn.Conv2d(nf + 4 * gc, nf, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in self.convs:
            features.append(F.leaky_relu(conv(torch.cat(features, dim=1)), 0.2))
        return x + RESIDUAL_SCALE * self.fuse(torch.cat(features, dim=1))


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks and a scaled residual around them."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(nf, gc) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.blocks(x)


class RRDBEncoder(nn.Module):
    """Image -> condition: (B, in_channels, H, W) -> (B, out_channels, H, W), resolution kept.

    conv3x3 to nf, `blocks` RRDBs, trunk conv3x3, residual over the trunk, conv3x3 to out_channels.
    """

    def __init__(self, in_channels: int, out_channels: int, nf: int, gc: int, blocks: int) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(in_channels, nf, 3, padding=1)
        self.trunk = nn.Sequential(*(RRDB(nf, gc) for _ in range(blocks)))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.conv_first(x)
        features = features + self.trunk_conv(self.trunk(features))
        return self.conv_last(features)
