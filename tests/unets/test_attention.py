"""The additive attention gate and the Attention U-Net's layout."""

from __future__ import annotations

import pytest
import torch

from segbench_unets.attention_unet import AttentionGate, ResNetAttentionUNet


def test_gate_coefficients_lie_in_unit_interval_and_match_skip():
    torch.manual_seed(0)
    gate = AttentionGate(x_channels=24, g_channels=40, inter_channels=12)
    x, g = torch.randn(3, 24, 16, 16) * 5, torch.randn(3, 40, 8, 8) * 5
    alpha = gate.coefficients(x, g)
    assert alpha.shape == (3, 1, 16, 16)
    assert alpha.min() >= 0 and alpha.max() <= 1
    torch.testing.assert_close(gate(x, g), x * alpha)


def test_gate_depends_on_the_gating_signal():
    torch.manual_seed(0)
    gate = AttentionGate(8, 8, 4).eval()
    x = torch.randn(1, 8, 8, 8)
    assert not torch.allclose(gate.coefficients(x, torch.randn(1, 8, 4, 4)), gate.coefficients(x, torch.randn(1, 8, 4, 4)))


def test_every_skip_is_gated():
    net = ResNetAttentionUNet("resnet50", (32, 16, 16, 8, 8))
    gates = [block.gate for block in net.decoder]
    assert all(isinstance(g, AttentionGate) for g in gates[:4]) and gates[4] is None
    assert [g.w_x[0].in_channels for g in gates[:4]] == [1024, 512, 256, 64]


def test_decoder_channels_must_cover_five_blocks():
    with pytest.raises(ValueError, match="5 widths"):
        ResNetAttentionUNet("resnet50", (32, 16))


@pytest.mark.parametrize(("encoder", "why"), [("nope", "unknown timm encoder"), ("test_convnext", "strides")])
def test_encoder_must_be_a_timm_model_with_five_feature_levels(encoder, why):
    with pytest.raises(ValueError, match=why):
        ResNetAttentionUNet(encoder)
