"""The diffusion segmenter: Segmenter contract, seeding, condition caching, learning, presets."""

from functools import partial

import pytest
import torch

from segbench import Prediction
from segbench_diffusion.hyperparameters import PRESETS
from segbench_diffusion.segmenter import DiffusionSegmenter, diff_add, diff_concat
from tests.segmenters import perturbed, random_images

SIZE = 16


def tiny(conditioning="add", **overrides) -> DiffusionSegmenter:
    """A tiny model with every parameter perturbed (the zero-initialised output layers would make eps = 0)."""
    factory = diff_add if conditioning == "add" else diff_concat
    return perturbed(factory, {**PRESETS["tiny"].model, "image_size": SIZE, **overrides})


images = partial(random_images, SIZE)


@pytest.mark.parametrize("conditioning", ["add", "concat"])
def test_segmenter_contract(conditioning):
    model = tiny(conditioning)
    assert model.unet.input_conv.in_channels == (16 if conditioning == "add" else 17)
    x = images(3)
    masks = (x > 0.5).float()
    loss = model.training_loss(x, masks)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    prediction = model.predict(x, torch.tensor([1, 2, 3]))
    assert isinstance(prediction, Prediction) and prediction.uncertainty is None
    p = prediction.probabilities
    assert p.shape == (3, 1, SIZE, SIZE) and p.dtype == torch.float32
    assert p.min() >= 0 and p.max() <= 1


def test_same_seed_same_mask_other_seed_other_mask():
    model, x = tiny(), images(2)
    first = model.predict(x, torch.tensor([5, 6])).probabilities
    assert torch.equal(first, model.predict(x, torch.tensor([5, 6])).probabilities)
    assert not torch.equal(first, model.predict(x, torch.tensor([7, 8])).probabilities)


@pytest.mark.parametrize("overrides", [{}, {"eta": 0.7}, {"sampler": "ddpm", "timesteps": 40}])
def test_cached_condition_equals_recomputed(overrides):
    model, x, seeds = tiny(**overrides), images(2), torch.tensor([1, 2])
    assert torch.equal(model.sample(x, seeds), model.sample(x, seeds, recompute_condition=True))


@pytest.mark.parametrize("overrides", [{}, {"eta": 1.0}, {"sampler": "ddpm", "timesteps": 40}])
def test_sample_independent_of_batch_size_and_position(overrides):
    model = tiny(**overrides, sampling_steps=5)
    batch, seeds = images(8), torch.arange(100, 108)
    together = model.predict(batch, seeds).probabilities
    alone = model.predict(batch[5:6], seeds[5:6]).probabilities
    # kernels may block a batch of 8 differently from a batch of 1: equal up to float rounding
    assert torch.allclose(together[5], alone[0], atol=1e-5)
    shuffled = torch.tensor([5, 0, 1, 2, 3, 4, 6, 7])
    assert torch.allclose(model.predict(batch[shuffled], seeds[shuffled]).probabilities[0], alone[0], atol=1e-5)


def test_predict_leaves_global_rng_alone():
    model, x = tiny(eta=1.0), images(2)
    state = torch.get_rng_state()
    model.predict(x, torch.tensor([1, 2]))
    assert torch.equal(torch.get_rng_state(), state)


def test_training_loss_uses_the_global_rng():
    model, x = tiny(), images(4)
    masks = (x > 0.5).float()
    torch.manual_seed(3)
    first = model.training_loss(x, masks)
    torch.manual_seed(3)
    assert torch.equal(first, model.training_loss(x, masks))


def synthetic_batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Bright squares on a noisy background; the mask is the square."""
    masks = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        r, c = torch.randint(0, SIZE - 6, (2,), generator=generator).tolist()
        masks[i, :, r : r + 6, c : c + 6] = 1
    noisy = 0.2 + 0.6 * masks + 0.1 * torch.randn(masks.shape, generator=generator)
    return noisy.clamp(0, 1), masks


def assert_learns(model: torch.nn.Module, steps: int) -> None:
    """`steps` AdamW steps on synthetic batches halve the mean of the first 10 losses by the last 10."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        loss = model.training_loss(*synthetic_batch(8, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)


def test_tiny_diff_add_learns():
    torch.manual_seed(0)
    assert_learns(diff_add({**PRESETS["tiny"].model, "image_size": SIZE}).train(), 100)


def test_paper_preset_builds_and_runs_at_64(capsys):
    model = diff_add({**PRESETS["paper"].model, "image_size": 64}).eval()
    unet_parameters = sum(p.numel() for p in model.unet.parameters())
    encoder_parameters = sum(p.numel() for p in model.condition_encoder.parameters())
    with capsys.disabled():
        print(f"\npaper diff-add: U-Net {unet_parameters / 1e6:.1f} M, RRDB {encoder_parameters / 1e6:.2f} M params")
    assert 217e6 < unet_parameters < 219e6  # 217.9 M measured for the seed paper's U-Net
    with torch.inference_mode():
        condition = model.encode(torch.rand(1, 1, 64, 64))
        eps = model.noise_prediction(torch.randn(1, 1, 64, 64), torch.tensor([500]), condition)
    assert eps.shape == (1, 1, 64, 64)


@pytest.mark.parametrize(("prediction", "loss"), [("epsilon", "mse"), ("x0", "mse"), ("x0", "bce_dice")])
def test_training_target_and_implied_noise(prediction, loss, monkeypatch):
    """An exact network gives (near) zero loss, and noise_prediction returns the true eps either way."""
    from segbench_backbone.schedules import q_sample

    model = tiny(prediction=prediction, loss=loss)
    x0 = (images(2) > 0.5).float() * 2 - 1
    t = torch.tensor([10, 900])
    noise = torch.randn_like(x0, generator=None)
    x_t = q_sample(x0, t, noise, model.alphas_cumprod)
    # bce_dice: the output is the mask's logit; +-30 gives x0 = tanh(+-15) = +-1 in float32
    exact = {"epsilon": noise, "x0": x0 if loss == "mse" else 30 * x0}[prediction]
    monkeypatch.setattr(model, "network_output", lambda x, tt, c: exact)
    torch.testing.assert_close(model.noise_prediction(x_t, t, None), noise, atol=2e-3, rtol=1e-3)

    monkeypatch.setattr(torch, "randint", lambda *a, **k: t)
    monkeypatch.setattr(torch, "randn_like", lambda x: noise)
    assert model.training_loss(images(2), (x0 + 1) / 2).item() == pytest.approx(0.0, abs=1e-6)
