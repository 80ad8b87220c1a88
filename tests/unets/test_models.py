"""Every CNN baseline: registration, shapes, probabilities, determinism, loss and gradients."""

from __future__ import annotations

import json

import pytest
import torch

from segbench.testing import check_model

MODELS = ["unet", "res50attunet", "smp:UnetPlusPlus:resnet34", "smp:FPN:efficientnet-b0"]
TRAINING_KEYS = {"batch_size", "lr", "weight_decay", "warmup_fraction", "grad_clip", "ema_decay"}


def _batch(size: int = 64, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(n, 1, size, size, generator=gen)
    return images, (images > 0.5).float()


@pytest.mark.parametrize("name", ["unet", "res50attunet", "smp"])
def test_spec_registered_with_all_presets(registry, name):
    spec = registry.specs["models"][name]
    assert spec.plugin == "unets" and spec.family == "cnn" and spec.reference
    for preset in ("tiny", "small", "paper"):
        chosen = spec.preset(preset)
        assert TRAINING_KEYS <= set(chosen.training) and {"epochs", "steps"} & set(chosen.training)
        json.dumps(chosen.model)  # config.json must hold them
    assert spec.preset("paper", "infection").training["epochs"] == 2400
    assert spec.preset("paper").training["batch_size"] == 512
    assert spec.preset("small").training["steps"] == 300  # 10 epochs of the phantom's 30 batches


@pytest.mark.parametrize("name", MODELS)
def test_segmenter_contract_at_64(registry, name):
    check_model(registry.model(name), name, image_size=64)


# smp's EfficientNet encoders keep an unused classification head, so smp:FPN:efficientnet-b0 is left out.
@pytest.mark.parametrize("name", MODELS[:3])
def test_loss_reaches_every_parameter(build, name):
    model = build(name)
    images, masks = _batch()
    loss = model.training_loss(images, masks)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    # DDP fails on parameters the loss never reaches; there must be none.
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused[:5]


@pytest.mark.parametrize("name", ["unet", "res50attunet"])
def test_forward_gives_one_logit_per_pixel(build, name):
    model = build(name, preset="small")
    images, _ = _batch()
    assert model(images).shape == (2, 1, 64, 64)


def test_predict_keeps_the_callers_mode_and_ignores_seeds(build):
    model = build("unet").train()
    images, _ = _batch()
    first = model.predict(images, torch.tensor([1, 2]))
    assert model.training and model.net.training
    assert torch.equal(first, model.predict(images, torch.tensor([7, 8])))


@pytest.mark.parametrize("size", [32, 96])
def test_res50attunet_other_sizes(build, size):
    model = build("res50attunet", image_size=size)
    images, _ = _batch(size)
    assert model.predict(images, torch.zeros(2, dtype=torch.int64)).shape == (2, 1, size, size)


def test_channels_last_changes_layout_not_results(build):
    images, _ = _batch()
    fast = build("unet", channels_last=True).eval()
    plain = build("unet", channels_last=False).eval()
    first_conv = next(p for p in fast.net.parameters() if p.dim() == 4)
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(images), plain(images), atol=1e-4, rtol=1e-4)


def test_decoder_channels_from_json_list(build):
    model = build("unet", decoder_channels=[32, 16, 16, 8, 8])
    assert model(_batch()[0]).shape == (2, 1, 64, 64)
