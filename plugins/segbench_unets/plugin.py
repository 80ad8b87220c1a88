"""Registers the CNN baselines: unet, unet-pretrained, res50attunet and smp:<Arch>:<encoder>."""

from collections.abc import Mapping
from typing import Any

from segbench import ModelSpec, Stage, hookimpl
from segbench_unets import factories, presets

MODELS_GENESIS = ("Zhou et al. 2019/2021, Models Genesis: Generic Autodidactic Models for 3D Medical Image Analysis "
                  "(MICCAI 2019; Medical Image Analysis 2021)")

# "pretrain" reads no masks: a run trains it once per seed and reuses it across label budgets, named by the
# U-Net's hyperparameters (the pretext has none of its own), like ddpm-features' DDPM stage.
PRETRAINED_STAGES = (
    Stage("pretrain", view="images", loss="restoration_loss", hyperparameters=presets.UNetHyperparameters,
          description="the whole U-Net restores every training image from its Models Genesis corruption"),
    Stage("finetune", view="labelled", loss="training_loss",
          description="the pretrained U-Net fine-tuned on the labelled images, BCE + Dice, as unet trains"),
)


def _one_forward(values) -> int:
    """A CNN predicts a mask in one forward pass."""
    return 1


def _pretrained_summary(values: Mapping[str, Any]) -> str:
    """`segbench info`'s line for unet-pretrained."""
    from segbench_unets.pretext import shuffle_cell

    size = values["image_size"]
    return (f"unet's network ({values['encoder']}), pretrained on every training image (no masks) to restore it from "
            f"a Models Genesis corruption (Zhou et al. 2019/2021): local pixel shuffling in "
            f"{shuffle_cell(size)}x{shuffle_cell(size)} cells (p 0.5), a Bezier intensity map (p 0.9), in- or "
            f"out-painting with uniform noise (p 0.9, in-painting 1 in 5); sigmoid of the segmentation head, MSE; "
            f"each sample's draws from (step, its image); then fine-tuned on the labelled images as unet; "
            f"1 network evaluation per mask")


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
        name="unet-pretrained",
        factory=factories.unet_pretrained,
        family="cnn",
        presets=presets.UNET_PRETRAINED,
        schema=presets.UNetHyperparameters,
        description="unet's U-Net pretrained self-supervised on every training image (Models Genesis restoration, "
                    "no masks; the budget of ddpm-features' DDPM stage), then fine-tuned on the labelled ones: it "
                    "sees the same unlabelled images as ddpm-features, so it is what ddpm-features must beat",
        reference=MODELS_GENESIS,
        summary=_pretrained_summary,
        network_evaluations=_one_forward,
        stages=PRETRAINED_STAGES,
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
