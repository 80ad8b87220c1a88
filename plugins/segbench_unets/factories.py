"""Model factories: the hyperparameters (with "image_size", and "variant" for smp) -> Segmenter.

torch, timm and smp are imported inside the factories so that listing
plugins does not pay for them.
"""

from __future__ import annotations

from typing import Any

from segbench import SegbenchError


def _segmenter(net: Any, encoder: Any, values: dict[str, Any], wrapper: type | None = None) -> Any:
    """Load values["weights_path"] (if set) into net or encoder, then wrap net as a Segmenter (`wrapper`, by
    default a LogitSegmenter)."""
    from segbench_unets.segmenter import LogitSegmenter
    from segbench_unets.weights import load_weights

    if values["weights_path"]:
        load_weights(net, values["weights_path"], encoder)
    return (wrapper or LogitSegmenter)(net, channels_last=values["channels_last"])


def _unet_network(values: dict[str, Any]) -> Any:
    """unet's smp Unet with values["encoder"] (ResNet-34 but in the tiny preset)."""
    from segbench_unets.smp_models import build_smp

    return build_smp("Unet", values["encoder"], values["image_size"], decoder_channels=values["decoder_channels"])


def unet(values: dict[str, Any]) -> Any:
    """smp Unet with values["encoder"] (ResNet-34 but in the tiny preset)."""
    net = _unet_network(values)
    return _segmenter(net, net.encoder, values)


def unet_pretrained(values: dict[str, Any]) -> Any:
    """unet's network with the restoration pretext's loss (segbench_unets.pretrained), for its two stages."""
    from segbench_unets.pretrained import PretrainedUNet

    net = _unet_network(values)
    return _segmenter(net, net.encoder, values, PretrainedUNet)


def smp_model(values: dict[str, Any]) -> Any:
    """Any smp architecture and encoder; values["variant"] is "<Arch>:<encoder>"."""
    from segbench_unets.smp_models import build_smp, parse_variant

    arch, encoder = parse_variant(values["variant"])
    net = build_smp(
        arch,
        encoder,
        values["image_size"],
        encoder_depth=values["encoder_depth"],
        decoder_channels=values["decoder_channels"],
    )
    return _segmenter(net, net.encoder, values)


def res50attunet(values: dict[str, Any]) -> Any:
    """Attention U-Net with the timm encoder values["encoder"] (ResNet-50 but in the tiny preset)."""
    from segbench_unets.attention_unet import ResNetAttentionUNet

    size = values["image_size"]
    if size % 32:
        raise SegbenchError(f"res50attunet needs an image size divisible by 32, got {size}")
    try:
        net = ResNetAttentionUNet(values["encoder"], tuple(values["decoder_channels"]))
    except ValueError as exc:
        raise SegbenchError(f"res50attunet: {exc}") from None
    return _segmenter(net, net.encoder, values)
