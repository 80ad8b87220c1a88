"""Model factories: config (preset + {"image_size"} + overrides) -> Segmenter.

torch, timm and smp are imported inside the factories so that listing
plugins does not pay for them. Training keys in config belong to the engine
and are ignored here.
"""

from __future__ import annotations

from typing import Any

from segbench import SegbenchError


def _segmenter(net: Any, encoder: Any, config: dict[str, Any]) -> Any:
    """Load config["weights_path"] (if set) into net or encoder, then wrap net as a Segmenter."""
    from segbench_unets.segmenter import LogitSegmenter
    from segbench_unets.weights import load_weights

    if config["weights_path"]:
        load_weights(net, config["weights_path"], encoder)
    return LogitSegmenter(net, channels_last=config["channels_last"])


def unet(config: dict[str, Any]) -> Any:
    """smp Unet with a ResNet-34 encoder."""
    from segbench_unets.smp_models import build_smp

    net = build_smp("Unet", "resnet34", config["image_size"], decoder_channels=config["decoder_channels"])
    return _segmenter(net, net.encoder, config)


def smp_model(config: dict[str, Any]) -> Any:
    """Any smp architecture and encoder; config["variant"] is "<Arch>:<encoder>"."""
    from segbench_unets.smp_models import build_smp, parse_variant

    arch, encoder = parse_variant(config["variant"])
    net = build_smp(
        arch,
        encoder,
        config["image_size"],
        encoder_depth=config["encoder_depth"],
        decoder_channels=config["decoder_channels"],
    )
    return _segmenter(net, net.encoder, config)


def res50attunet(config: dict[str, Any]) -> Any:
    """Attention U-Net with a timm ResNet-50 encoder."""
    from segbench_unets.attention_unet import ResNet50AttentionUNet

    size = config["image_size"]
    if size % 32:
        raise SegbenchError(f"res50attunet needs an image size divisible by 32, got {size}")
    try:
        net = ResNet50AttentionUNet(tuple(config["decoder_channels"]))
    except ValueError as exc:
        raise SegbenchError(f"res50attunet: {exc}") from None
    return _segmenter(net, net.encoder, config)
