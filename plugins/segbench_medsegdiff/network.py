"""MedSegDiff V1's network (Wu et al. 2023, arXiv:2211.00611, Sec. 2 and Fig. 1): a noise-predicting U-Net on
the noisy mask whose encoder E_x runs beside an image encoder E_I; at every scale the image features are
modulated by the (Fourier-filtered) mask features, and the decoder reads E_I + E_x.

    eps_theta(x_t, I, t) = D((E_I + E_x, t), t)                         (Eq. 3)
    m_I <- (LN(m_I) * LN(m_x)) * m_I          (dynamic conditional encoding, Eq. 4; * element-wise)
    m_x <- F^-1[A * F[m_x]]                    (FF-Parser, Eqs. 5-7; A learnable, complex, (C, H, W/2+1))

Every size is derived from the run's image size, so the network is valid at any size the U-Net allows.
Built from segbench_backbone's blocks: the mask path is a NoiseUNet, the image encoder the encoder half of a
second one, and the image enters through the RRDB stem diff-add uses.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from segbench_backbone.rrdb import RRDBEncoder
from segbench_backbone.unet import GroupNorm, NoiseUNet
from segbench_medsegdiff.hyperparameters import MedSegDiffHyperparameters


class FFParser(nn.Module):
    """Feature-frequency parser: (B, C, H, W) -> same, m' = irfft2(A * rfft2(m)) over (H, W).

    A = weight_real + i weight_imag, (C, H, W // 2 + 1), one complex gain per channel and frequency of the
    real FFT's half spectrum. irfft2 reads that half spectrum as Hermitian: m' is the real part of the
    one-sided inverse DFT (interior columns counted twice); for an A that is Hermitian itself, exactly the
    real filter A applied to the full spectrum. "ortho" scaling, as in public MedSegDiff code. A starts at 1
    (the identity); the GFNet-style filter of public MedSegDiff code starts from 0.02 N(0, 1), a random filter
    that scrambles the features until it is learnt.
    Two real parameters rather than one complex one: optimisers, EMA, checkpoints and all-reduce stay real.
    """

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.size = (height, width)
        self.weight_real = nn.Parameter(torch.ones(channels, height, width // 2 + 1))
        self.weight_imag = nn.Parameter(torch.zeros(channels, height, width // 2 + 1))

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.size:
            raise ValueError(f"FFParser built for {self.size[0]}x{self.size[1]} maps got {tuple(x.shape[-2:])}")
        # in float32 whatever precision the network runs in: the CPU FFT has no bfloat16 kernel
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        filtered = spectrum * torch.complex(self.weight_real, self.weight_imag)
        return torch.fft.irfft2(filtered, s=self.size, norm="ortho").to(x.dtype)


class DynamicConditionalEncoding(nn.Module):
    """m_I <- (LN(m_I) * LN(FF-Parser(m_x))) * m_I (Eq. 4), image and mask features (B, C, S, S) -> (B, C, S, S).

    LN normalises each sample over (C, H, W), as the authors' code (`layer_norm(x.size()[1:])`), with a
    learnable per-channel scale and shift (GroupNorm with one group), so it holds at any size.
    """

    def __init__(self, channels: int, size: int, ff_parser: bool = True) -> None:
        super().__init__()
        self.norm_image = GroupNorm(1, channels)
        self.norm_mask = GroupNorm(1, channels)
        self.ff_parser = FFParser(channels, size, size) if ff_parser else None

    def forward(self, image_features: Tensor, mask_features: Tensor) -> Tensor:
        if self.ff_parser is not None:
            mask_features = self.ff_parser(mask_features)
        return self.norm_image(image_features) * self.norm_mask(mask_features) * image_features


class MedSegDiffUNet(nn.Module):
    """eps_theta(x_t, I, t): noisy mask x_t (B, 1, S, S) in [-1, 1], t int64 (B,), and the image's RRDB
    features (from `encode`) -> (B, 1, S, S).

    `unet` is the mask path (input conv and encoder E_x, middle block and decoder D); `image_input` and
    `image_encoder` are E_I, of the same layout with its own weights and the same time embedding; `fusions[k]`
    modulates E_I at the end of level k (before its downsampling), at the level's resolution S / 2^k.
    """

    def __init__(self, hparams: MedSegDiffHyperparameters) -> None:
        super().__init__()
        self.condition_encoder = RRDBEncoder(
            1, hparams.cond_channels, hparams.rrdb_nf, hparams.rrdb_gc, hparams.rrdb_blocks
        )

        self.unet = NoiseUNet.of(hparams, 1)  # E_x sees the noisy mask alone
        # E_I: the input conv and encoder of a second U-Net (its middle and decoder are not kept)
        image_unet = NoiseUNet.of(hparams, hparams.cond_channels)
        self.image_input, self.image_encoder = image_unet.input_conv, image_unet.encoder
        levels, blocks = len(hparams.channel_mult), hparams.num_res_blocks
        # NoiseUNet's encoder: per level `blocks` stages, then a downsampling stage (not after the last level)
        self.fusion_stages = [level * (blocks + 1) + blocks - 1 for level in range(levels)]
        if len(self.unet.encoder) != levels * (blocks + 1) - 1:
            raise RuntimeError("NoiseUNet's encoder layout changed; update MedSegDiffUNet.fusion_stages")
        self.fusions = nn.ModuleList(
            DynamicConditionalEncoding(channels, size, ff_parser=hparams.ff_parser)
            for channels, size, _ in hparams.fusion_shapes()
        ) if hparams.dynamic_encoding else None
        if hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def encode(self, images: Tensor) -> Tensor:
        """The image's RRDB features (B, cond_channels, S, S), from images (B, 1, S, S) in [0, 1]; they do not
        depend on t, so sampling computes them once."""
        return self.condition_encoder(images * 2 - 1)

    def network_output(self, x_t: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        """The U-Net's raw output (B, 1, S, S) for a noisy mask x_t at noise label t and the image's features."""
        unet = self.unet
        embedding = unet.embed(t)
        h = unet.input_conv(x_t)
        m_image = self.image_input(condition)
        skips = [h]
        for index, (stage, image_stage) in enumerate(zip(unet.encoder, self.image_encoder)):
            h = unet.run(stage, h, embedding)
            m_image = unet.run(image_stage, m_image, embedding)
            if self.fusions is not None and index in self.fusion_stages:
                m_image = self.fusions[self.fusion_stages.index(index)](m_image, h)
            skips.append(h)
        # Eq. 3: the decoder reads the sum of the two encodings; its skips are the mask encoder's
        return unet.decode(h + m_image, skips, embedding)
