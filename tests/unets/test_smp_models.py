"""smp:<Arch>:<encoder> parsing, building and its errors."""

from __future__ import annotations

import pytest
import torch

from segbench import SegbenchError
from segbench_unets.smp_models import build_smp, parse_variant


def test_parse_variant():
    assert parse_variant("UnetPlusPlus:resnet34") == ("UnetPlusPlus", "resnet34")
    assert parse_variant("FPN:tu-resnet18") == ("FPN", "tu-resnet18")


@pytest.mark.parametrize("variant", ["", "FPN", "FPN:", ":resnet34", "FPN:resnet34:extra"])
def test_bad_variant_explains_the_format(variant):
    with pytest.raises(SegbenchError, match=r"smp:<Arch>:<encoder>"):
        parse_variant(variant)


def test_unknown_architecture_lists_smp_architectures(build):
    with pytest.raises(SegbenchError, match=r"unknown smp architecture 'Nope'.*FPN.*UnetPlusPlus"):
        build("smp:Nope:resnet34")


def test_unknown_encoder_points_to_the_full_list(build):
    with pytest.raises(SegbenchError, match=r"unknown smp encoder 'resnet35'.*resnet34.*get_encoder_names\(\)"):
        build("smp:FPN:resnet35")
    with pytest.raises(SegbenchError, match="unknown smp encoder 'tu-nope'"):
        build("smp:FPN:tu-nope")


def test_architecture_names_are_case_insensitive():
    assert type(build_smp("fpn", "resnet18", 64)).__name__ == "FPN"


def test_timm_encoder(build):
    model = build("smp:Unet:tu-resnet18")
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_shallower_encoder_trims_the_default_decoder():
    net = build_smp("Unet", "resnet18", 64, encoder_depth=3)
    assert len(net.decoder.blocks) == 3
    assert net(torch.rand(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_decoder_channels_on_an_arch_without_them():
    with pytest.raises(SegbenchError, match="FPN has no decoder_channels"):
        build_smp("FPN", "resnet18", 64, decoder_channels=(32, 16))


def test_smp_construction_errors_become_segbench_errors():
    with pytest.raises(SegbenchError, match="smp could not build smp:Unet:resnet18"):
        build_smp("Unet", "resnet18", 64, encoder_depth=3, decoder_channels=(32, 16))


def test_image_size_must_fit_the_encoder_stride(build):
    with pytest.raises(SegbenchError, match="smp:FPN:resnet18 needs an image size divisible by 32, got 48"):
        build("smp:FPN:resnet18", image_size=48)


def test_smp_unet_takes_any_size(build):
    # smp's Unet resizes inside its decoder, so it needs no divisible size.
    assert build("unet", image_size=48)(torch.rand(1, 1, 48, 48)).shape == (1, 1, 48, 48)


def test_res50attunet_size_error(build):
    with pytest.raises(SegbenchError, match="res50attunet needs an image size divisible by 32, got 48"):
        build("res50attunet", image_size=48)
