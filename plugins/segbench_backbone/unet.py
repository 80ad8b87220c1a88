"""Noise-predicting U-Net (Ho et al. 2020; layout of guided-diffusion / LDM, Rombach et al. 2022).

Without LDM's latent encoder/decoder: it runs on the pixels of the (conditioned)
noisy mask. Resampling happens inside ResBlocks (BigGAN-style, guided-diffusion's
resblock_updown), attention is multi-head self-attention over positions, or at the levels of
`attention_resolutions` optionally linear attention (Shen et al. 2021), as the seed paper's
unconditional X-ray DDPM has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017): t (B,) -> (B, dim), [cos | sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so a residual branch (or the output) starts at zero.

    Zero-initialised residual branches make every block an identity at the start
    and the network output zero, which keeps early diffusion training stable.
    """
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


class GroupNorm(nn.GroupNorm):
    """GroupNorm that returns its input's dtype: autocast computes it in float32, and handing
    bfloat16 on halves the memory traffic of the SiLU and convolution that follow."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).to(x.dtype)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-(resample)-conv3x3, + time embedding, GroupNorm-SiLU-dropout-conv3x3, + skip.

    (B, in_channels, H, W) -> (B, out_channels, H', W') with H' = H/2 for "down",
    2H for "up", H otherwise; the skip is resampled the same way and 1x1-projected
    when the widths differ.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        embedding_channels: int,
        norm_groups: int,
        dropout: float = 0.0,
        resample: str = "none",
    ) -> None:
        super().__init__()
        self.resample = resample
        self.norm1 = GroupNorm(norm_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Sequential(nn.SiLU(), nn.Linear(embedding_channels, out_channels))
        self.norm2 = GroupNorm(norm_groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def _resample(self, x: Tensor) -> Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = F.silu(self.norm1(x))
        h = self.conv1(self._resample(h))
        h = h + self.embedding(embedding)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(self._resample(x)) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over positions with a residual: (B, C, H, W) -> same.

    GroupNorm, Q/K/V from one 1x1 Conv1d, softmax(Q K^T / sqrt(d)) V per head of
    size d = head_channels (scaled_dot_product_attention computes exactly this),
    output projection (zero-initialised).
    """

    def __init__(self, channels: int, head_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.heads = channels // head_channels
        self.norm = GroupNorm(norm_groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        # Tokens (B, L, C): the 1x1 Conv1d applied as the linear map it is, so that Q, K, V come out
        # with head_channels contiguous, the layout fused (flash) attention kernels need; with
        # strided Q/K/V, scaled_dot_product_attention falls back to materialising Q K^T in float32.
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        qkv = F.linear(tokens, self.qkv.weight.squeeze(-1), self.qkv.bias)
        # (B, L, 3C) -> three (B, heads, L, head_channels)
        q, k, v = qkv.reshape(b, -1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, c)
        out = F.linear(h, self.proj_out.weight.squeeze(-1), self.proj_out.bias)
        return x + out.transpose(1, 2).reshape(b, c, height, width)


class LinearAttentionBlock(nn.Module):
    """Multi-head linear attention over positions with a residual: (B, C, H, W) -> same.

    "Efficient attention" (Shen et al. 2021), the form of lucidrains' LinearAttention that the seed
    paper's U-Net uses: per head of size d = head_channels, q is softmax-normalised over its d channels
    and k over the L positions, and out = (k^T v)^T q / sqrt(d), which costs O(L d^2) instead of
    O(L^2 d): the attention a 32x32 level can afford. The same layers as `AttentionBlock` (GroupNorm,
    Q/K/V from one 1x1 Conv1d, zero-initialised output projection), so the parameter count is equal.
    """

    def __init__(self, channels: int, head_channels: int, norm_groups: int) -> None:
        super().__init__()
        self.heads = channels // head_channels
        self.norm = GroupNorm(norm_groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x).flatten(2))  # (B, 3C, L)
        q, k, v = qkv.reshape(b, 3, self.heads, d, height * width).unbind(1)  # each (B, heads, d, L)
        q = q.softmax(dim=2) * d**-0.5
        k = k.softmax(dim=3)
        context = torch.einsum("bhdl,bhel->bhde", k, v)  # (B, heads, d, d): sum over positions of k v^T
        out = torch.einsum("bhde,bhdl->bhel", context, q).reshape(b, c, height * width)
        return x + self.proj_out(out).reshape(b, c, height, width)


ATTENTION_KINDS = ("full", "linear")


class UNetStage(nn.Module):
    """A ResBlock, optionally followed by attention and/or a resampling ResBlock."""

    def __init__(self, res: ResBlock, attention: nn.Module | None = None, resample: ResBlock | None = None):
        super().__init__()
        self.res = res
        self.attention = attention
        self.resample = resample

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        x = self.res(x, embedding)
        if self.attention is not None:
            x = self.attention(x)
        if self.resample is not None:
            x = self.resample(x, embedding)
        return x


class NoiseUNet(nn.Module):
    """epsilon_theta(x, t): (B, in_channels, S, S), int64 (B,) -> (B, 1, S, S).

    Encoder: per level `num_res_blocks` ResBlocks to width base*mult (with
    attention where the level's resolution is in `attention_resolutions`), then
    a downsampling ResBlock (not after the last level). Middle: ResBlock,
    attention, ResBlock. Decoder: per level `num_res_blocks + 1` ResBlocks, each
    taking one encoder activation by concatenation, with an upsampling ResBlock
    closing every level but the first. Output: GroupNorm, SiLU, zero-initialised conv3x3.
    `attention` is the kind at the levels of `attention_resolutions`: "full" (`AttentionBlock`, the
    default) or "linear" (`LinearAttentionBlock`); the middle block's attention is always full.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        base_channels: int,
        channel_mult: Sequence[int],
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        head_channels: int,
        norm_groups: int,
        dropout: float = 0.0,
        checkpointing: bool = False,
        attention: str = "full",
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, not {attention!r}")
        level_attention = LinearAttentionBlock if attention == "linear" else AttentionBlock
        self.base_channels = base_channels
        self.checkpointing = checkpointing
        embedding_channels = 4 * base_channels
        self.time_embedding = nn.Sequential(
            nn.Linear(base_channels, embedding_channels),
            nn.SiLU(),
            nn.Linear(embedding_channels, embedding_channels),
        )

        def res(c_in: int, c_out: int, resample: str = "none") -> ResBlock:
            return ResBlock(c_in, c_out, embedding_channels, norm_groups, dropout, resample)

        def level_attention_block(channels: int, resolution: int) -> nn.Module | None:
            if resolution not in attention_resolutions:
                return None
            return level_attention(channels, head_channels, norm_groups)

        self.input_conv = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.encoder = nn.ModuleList()
        skip_channels = [base_channels]  # widths of the activations the decoder concatenates
        channels, resolution = base_channels, image_size
        for level, mult in enumerate(channel_mult):
            width = base_channels * mult
            for _ in range(num_res_blocks):
                self.encoder.append(UNetStage(res(channels, width), level_attention_block(width, resolution)))
                channels = width
                skip_channels.append(channels)
            if level < len(channel_mult) - 1:
                self.encoder.append(UNetStage(res(channels, channels, "down")))
                resolution //= 2
                skip_channels.append(channels)

        self.middle = UNetStage(res(channels, channels), AttentionBlock(channels, head_channels, norm_groups))
        self.middle_out = res(channels, channels)

        self.decoder = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                width = base_channels * mult
                upsample = res(width, width, "up") if level > 0 and i == num_res_blocks else None
                self.decoder.append(
                    UNetStage(res(channels + skip_channels.pop(), width), level_attention_block(width, resolution), upsample)
                )
                channels = width
            resolution *= 2

        self.output = nn.Sequential(
            GroupNorm(norm_groups, channels),
            nn.SiLU(),
            zero_init(nn.Conv2d(channels, 1, 3, padding=1)),
        )

    @classmethod
    def of(cls, hparams: Any, in_channels: int, attention: str = "full") -> NoiseUNet:
        """The U-Net that hyperparameters with the backbone's network fields describe (base_channels,
        channel_mult, ..., gradient_checkpointing), on `in_channels` input channels."""
        return cls(in_channels=in_channels, image_size=hparams.image_size, base_channels=hparams.base_channels,
                   channel_mult=hparams.channel_mult, num_res_blocks=hparams.num_res_blocks,
                   attention_resolutions=hparams.attention_resolutions, head_channels=hparams.head_channels,
                   norm_groups=hparams.norm_groups, dropout=hparams.dropout,
                   checkpointing=hparams.gradient_checkpointing, attention=attention)

    def embed(self, t: Tensor) -> Tensor:
        """The time embedding (B, 4 * base_channels) every ResBlock adds, for noise labels t (B,)."""
        return self.time_embedding(timestep_embedding(t, self.base_channels))

    def run(self, block: nn.Module, h: Tensor, embedding: Tensor) -> Tensor:
        """One stage; with gradient checkpointing in training only its input is kept and its activations
        are recomputed in the backward pass."""
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(block, h, embedding, use_reentrant=False)
        return block(h, embedding)

    def decode(self, h: Tensor, skips: list[Tensor], embedding: Tensor) -> Tensor:
        """Middle block, decoder (each stage takes the last of `skips` by concatenation) and output conv."""
        h = self.run(self.middle_out, self.run(self.middle, h, embedding), embedding)
        for stage in self.decoder:
            h = self.run(stage, torch.cat([h, skips.pop()], dim=1), embedding)
        return self.output(h)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        embedding = self.embed(t)
        h = self.input_conv(x)
        skips = [h]
        for stage in self.encoder:
            h = self.run(stage, h, embedding)
            skips.append(h)
        return self.decode(h, skips, embedding)
