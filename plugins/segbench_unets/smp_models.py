"""Networks from segmentation_models_pytorch (smp): 1 input channel, 1 logit, random init."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import segmentation_models_pytorch as smp
import timm
from torch import nn

from segbench import SegbenchError

VARIANT_FORMAT = "smp:<Arch>:<encoder>, e.g. smp:UnetPlusPlus:resnet34 or smp:FPN:tu-resnet18"


def parse_variant(variant: str) -> tuple[str, str]:
    """Split "<Arch>:<encoder>" (the part after "smp:") into its two names."""
    arch, sep, encoder = variant.partition(":")
    if not sep or not arch or not encoder or ":" in encoder:
        raise SegbenchError(f"bad smp model name 'smp:{variant}'; expected {VARIANT_FORMAT}")
    return arch, encoder


def architectures() -> list[str]:
    """smp's architecture class names, e.g. "Unet", "FPN"."""
    return sorted(cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values())


def _arch_class(arch: str) -> type[nn.Module]:
    # smp's own lookup is case-insensitive; so is ours.
    cls = smp.MODEL_ARCHITECTURES_MAPPING.get(arch.lower())
    if cls is None:
        raise SegbenchError(f"unknown smp architecture {arch!r}; valid: {', '.join(architectures())}")
    return cls


def _check_encoder(encoder: str) -> None:
    known = encoder in smp.encoders.encoders or (encoder.startswith("tu-") and timm.is_model(encoder[3:]))
    if not known:
        examples = "resnet18, resnet34, resnet50, efficientnet-b0, mobilenet_v2, tu-resnet18, tu-convnext_atto"
        raise SegbenchError(
            f"unknown smp encoder {encoder!r}; valid e.g.: {examples} "
            "(all: segmentation_models_pytorch.encoders.get_encoder_names(), or 'tu-<timm model>')"
        )


def _default_decoder_channels(cls: type[nn.Module], depth: int) -> tuple[int, ...] | None:
    """The arch's default per-stage decoder widths cut to `depth` stages; None if it has none."""
    default = inspect.signature(cls).parameters.get("decoder_channels")
    if default is None or not isinstance(default.default, Sequence):
        return None
    return tuple(default.default)[:depth]


def build_smp(
    arch: str,
    encoder: str,
    image_size: int,
    encoder_depth: int | None = None,
    decoder_channels: Sequence[int] | int | None = None,
) -> nn.Module:
    """smp `<arch>` with `<encoder>`: images (B, 1, S, S) -> logits (B, 1, S, S).

    encoder_depth / decoder_channels: None keeps smp's default for the arch; with
    a depth below 5 the default per-stage widths are cut to match. Depths below 5
    leave the encoder's deeper stages unused (smp keeps their parameters).
    Raises SegbenchError for unknown names, arguments the arch lacks, or an
    image size the encoder's output stride does not divide.
    """
    cls = _arch_class(arch)
    _check_encoder(encoder)
    kwargs: dict = {}
    if encoder_depth is not None:
        kwargs["encoder_depth"] = int(encoder_depth)
        decoder_channels = decoder_channels or _default_decoder_channels(cls, encoder_depth)
    if decoder_channels is not None:
        if "decoder_channels" not in inspect.signature(cls).parameters:
            raise SegbenchError(f"smp {cls.__name__} has no decoder_channels; leave it None")
        # a list (as JSON holds one) works as well as a tuple
        kwargs["decoder_channels"] = tuple(decoder_channels) if isinstance(decoder_channels, Sequence) else decoder_channels
    name = f"smp:{cls.__name__}:{encoder}"
    try:
        net = cls(encoder_name=encoder, encoder_weights=None, in_channels=1, classes=1, **kwargs)
    except (KeyError, ValueError, RuntimeError, TypeError, AssertionError) as exc:
        raise SegbenchError(f"smp could not build {name} with {kwargs or 'defaults'}: {exc}") from None
    stride = net.encoder.output_stride
    if getattr(net, "requires_divisible_input_shape", True) and image_size % stride:
        raise SegbenchError(f"{name} needs an image size divisible by {stride}, got {image_size}")
    return net
