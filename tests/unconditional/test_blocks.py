"""ddpm-features' feature blocks chosen by output scale, against the scales measured on the network's own
forward pass: at two image sizes, on networks with a 1/8 level, with a coarser one, and without one."""

from fractions import Fraction

import pytest
import torch

from segbench_unconditional.blocks import BlockIndices, ScaleRange, parse_block_choice
from segbench_unconditional.hyperparameters import FEATURES_PRESETS, FeaturesHyperparameters
from segbench_unconditional.network import XrayDDPM


def hyperparameters(image_size: int, channel_mult: tuple[int, ...], **overrides) -> FeaturesHyperparameters:
    return FeaturesHyperparameters.from_mapping({**FEATURES_PRESETS["tiny"].model, "image_size": image_size,
                                                 "channel_mult": channel_mult, **overrides})


def measured(hp: FeaturesHyperparameters) -> list[tuple[int, Fraction]]:
    """(channels, output size / input size) of each decoder stage, read off one forward pass."""
    unet = XrayDDPM(hp).unet.eval()
    outputs = []
    hooks = [stage.register_forward_hook(lambda module, inputs, output: outputs.append(output.shape))
             for stage in unet.decoder]
    with torch.no_grad():
        unet(torch.zeros(1, 1, hp.image_size, hp.image_size), torch.tensor([10]))
    for hook in hooks:
        hook.remove()
    return [(shape[1], Fraction(shape[-1], hp.image_size)) for shape in outputs]


# tiny U-Nets (one ResBlock per level: two decoder blocks per level, the second of each but the finest
# upsampling): the blocks whose outputs are 1/8..1/2 of the input, and the scale standing in for 1/8
CASES = [
    ((1, 2, 2), (0, 1, 2), Fraction(1, 4)),  # levels 1..1/4: no 1/8 level, 1/4 stands in
    ((1, 2, 2, 2), (0, 1, 2, 3, 4), None),  # levels 1..1/8
    ((1, 1, 2, 2, 2), (1, 2, 3, 4, 5, 6), None),  # levels 1..1/16: block 0 (1/16) is coarser than the paper's
]


@pytest.mark.parametrize("image_size", [64, 128])
@pytest.mark.parametrize("channel_mult, blocks, stand_in", CASES)
def test_the_default_reads_every_block_at_an_eighth_to_a_half_of_the_input(image_size, channel_mult, blocks, stand_in):
    hp = hyperparameters(image_size, channel_mult)
    assert hp.feature_blocks == "1/8-1/2"
    chosen = hp.chosen_blocks
    assert (chosen.indices, chosen.stand_in) == (blocks, stand_in)
    network = measured(hp)
    coarsest = max(Fraction(1, 8), min(scale for _, scale in network))
    assert [b for b, (_, scale) in enumerate(network) if coarsest <= scale <= Fraction(1, 2)] == list(blocks)
    assert hp.features_per_pixel == len(hp.feature_timesteps) * sum(network[b][0] for b in blocks)


@pytest.mark.parametrize("image_size", [64, 128])
def test_a_range_coarser_than_the_network_reads_its_coarsest_level(image_size):
    hp = hyperparameters(image_size, (1, 2, 2), feature_blocks="1/16-1/8")
    network = measured(hp)
    assert [scale for _, scale in network] == [Fraction(1, 4), *[Fraction(1, 2)] * 2, *[Fraction(1)] * 3]
    assert (hp.chosen_blocks.indices, hp.chosen_blocks.stand_in) == ((0,), Fraction(1, 4))
    deeper = hyperparameters(image_size, (1, 2, 2, 2), feature_blocks="1/4")
    assert [b for b, (_, scale) in enumerate(measured(deeper)) if scale == Fraction(1, 4)] == [1, 2]
    assert (deeper.chosen_blocks.indices, deeper.chosen_blocks.stand_in) == ((1, 2), None)


def test_indices_are_kept_as_given():
    hp = hyperparameters(64, (1, 2, 2), feature_blocks="4,1")
    assert (hp.chosen_blocks.indices, hp.chosen_blocks.stand_in) == ((4, 1), None)


@pytest.mark.parametrize("text, choice", [
    ("1/8-1/2", ScaleRange(Fraction(1, 8), Fraction(1, 2))),
    ("1/2 - 1/8", ScaleRange(Fraction(1, 8), Fraction(1, 2))),
    ("1/4", ScaleRange(Fraction(1, 4), Fraction(1, 4))),
    ("1/2-1", ScaleRange(Fraction(1, 2), Fraction(1))),
    ("5,6,7,8,12", BlockIndices((5, 6, 7, 8, 12))),
    ("1", BlockIndices((1,))),  # without a "/", indices
])
def test_the_setting_reads_as_a_scale_range_or_indices(text, choice):
    assert parse_block_choice(text) == choice
    assert parse_block_choice(str(choice)) == choice
