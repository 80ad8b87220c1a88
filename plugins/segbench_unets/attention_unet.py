"""Attention U-Net on a timm ResNet encoder, ResNet-50 in res50attunet (Oktay et al. 2018, "Attention U-Net").

Skip connections pass through additive attention gates before the decoder
concatenates them. The decoder mirrors smp's Unet (nearest upsampling, two
conv-BN-ReLU per block, a last skip-less block at full resolution), so this
model and `unet` differ in encoder and gates, not in decoder layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Same-size convolution without bias (batch norm follows), then batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class AttentionGate(nn.Module):
    """Additive attention gate, Oktay et al. 2018, eqs. (1)-(2).

    alpha = sigmoid(psi(relu(W_x x + W_g g))); the gate returns x * alpha.
    x: skip features (B, Cx, H, W); g: gating signal from the coarser decoder
    level (B, Cg, h, w), h <= H. W_g is applied at g's resolution and then
    bilinearly upsampled, which equals upsampling first (both are linear) at a
    fraction of the cost.
    """

    def __init__(self, x_channels: int, g_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.w_x = conv_bn(x_channels, inter_channels, 1)
        self.w_g = conv_bn(g_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def coefficients(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Attention coefficients alpha (B, 1, H, W) in [0, 1]."""
        gate = F.interpolate(self.w_g(g), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(self.psi(F.relu(self.w_x(x) + gate)))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Gated skip features (B, Cx, H, W)."""
        return x * self.coefficients(x, g)


class DecoderBlock(nn.Module):
    """Upsample, concatenate the gated skip (if any), then conv-BN-ReLU twice."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        # Oktay et al. halve the skip's channels inside the gate.
        self.gate = AttentionGate(skip_channels, in_channels, max(skip_channels // 2, 1)) if skip_channels else None
        self.convs = nn.Sequential(
            conv_bn(in_channels + skip_channels, out_channels, 3),
            nn.ReLU(inplace=True),
            conv_bn(out_channels, out_channels, 3),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor, size: Sequence[int], skip: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, Cin, h, w) -> (B, Cout, *size); skip (B, Cskip, *size) when the block has one."""
        up = F.interpolate(x, size=tuple(size), mode="nearest")
        if self.gate is not None:
            # The gating signal is the coarse decoder feature, before upsampling.
            up = torch.cat([up, self.gate(skip, x)], dim=1)
        return self.convs(up)


STRIDES = [2, 4, 8, 16, 32]  # the encoder's five feature levels


class ResNetAttentionUNet(nn.Module):
    """images (B, 1, H, W) -> logits (B, 1, H, W); H and W divisible by 32 keep every stage exact.

    encoder: a timm model with features at strides 2..32 ("resnet50"; the tiny preset's "test_resnet").
    decoder_channels: widths of the five decoder blocks, deepest first; the
    first four take gated skips at strides 16, 8, 4, 2, the fifth works at
    full resolution without a skip.
    """

    def __init__(self, encoder: str = "resnet50", decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)) -> None:
        super().__init__()
        if not timm.is_model(encoder):
            raise ValueError(f"unknown timm encoder {encoder!r}; e.g. resnet50, resnet18, test_resnet")
        self.encoder = timm.create_model(encoder, features_only=True, in_chans=1, pretrained=False)
        if self.encoder.feature_info.reduction() != STRIDES:
            raise ValueError(f"encoder {encoder!r} has features at strides {self.encoder.feature_info.reduction()}, "
                             f"not {STRIDES}; choose a ResNet-like timm model")
        channels = self.encoder.feature_info.channels()  # resnet50: [64, 256, 512, 1024, 2048]
        if len(decoder_channels) != len(channels):
            raise ValueError(f"decoder_channels needs {len(channels)} widths, got {list(decoder_channels)}")
        skips = [*reversed(channels[:-1]), 0]
        ins = [channels[-1], *decoder_channels[:-1]]
        self.decoder = nn.ModuleList(
            DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_channels, strict=True)
        )
        self.head = nn.Conv2d(decoder_channels[-1], 1, 1)
        self._init_decoder()

    def _init_decoder(self) -> None:
        """He init for the ReLU decoder, Xavier for the head (smp's choice).

        With PyTorch's default init this model learned about half as fast: BCE + Dice
        1.00 vs 0.56 after one epoch on cxr-phantom lungs.
        """
        for module in self.decoder.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, H, W) for images (B, 1, H, W)."""
        features = self.encoder(images)
        x = features[-1]
        for block, skip in zip(self.decoder[:-1], reversed(features[:-1])):
            x = block(x, skip.shape[-2:], skip)
        return self.head(self.decoder[-1](x, images.shape[-2:]))
