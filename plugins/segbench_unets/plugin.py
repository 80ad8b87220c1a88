"""Registers the CNN baselines: unet, res50attunet and smp:<Arch>:<encoder>."""

from segbench import ModelSpec, hookimpl
from segbench_unets import factories, presets


def _one_forward(values) -> int:
    """A CNN predicts a mask in one forward pass."""
    return 1


@hookimpl
def register_models(register) -> None:
    register(ModelSpec(
        name="unet",
        factory=factories.unet,
        family="cnn",
        presets=presets.UNET,
        schema=presets.UNetHyperparameters,
        description="U-Net with a ResNet-34 encoder (segmentation_models_pytorch; tiny: timm's test ResNet), BCE + Dice",
        reference="Ronneberger et al. 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation",
        network_evaluations=_one_forward,
    ))
    register(ModelSpec(
        name="res50attunet",
        factory=factories.res50attunet,
        family="cnn",
        presets=presets.RES50ATTUNET,
        schema=presets.UNetHyperparameters,
        description="Attention U-Net: ResNet-50 encoder (timm; tiny: its test ResNet), additive attention gates on "
                    "the skips, BCE + Dice",
        reference="Oktay et al. 2018, Attention U-Net: Learning Where to Look for the Pancreas",
        network_evaluations=_one_forward,
    ))
    register(ModelSpec(
        name="smp",
        factory=factories.smp_model,
        family="cnn",
        presets=presets.SMP,
        schema=presets.SMPHyperparameters,
        description="any segmentation_models_pytorch model: smp:<Arch>:<encoder>, e.g. smp:FPN:resnet34",
        reference="Iakubovskii 2019, Segmentation Models Pytorch",
        prefix=True,
        variant_help="<Arch>:<encoder>",
        network_evaluations=_one_forward,
    ))
