"""The score segmenters: contract, per-sample seeds, parameterisations against an exact network."""

from functools import partial

import pytest
import torch

from segbench import Prediction
from segbench_score.hyperparameters import NCSN_PRESETS, SDE_PRESETS
from segbench_score.schedules import expand
from segbench_score.segmenter import ScoreSegmenter, ncsn_add, ncsn_concat, sde_add, sde_concat
from tests.segmenters import perturbed, random_images

SIZE = 16
FACTORIES = {"ncsn-add": ncsn_add, "ncsn-concat": ncsn_concat, "sde-add": sde_add, "sde-concat": sde_concat}


def tiny(name="ncsn-add", **overrides) -> ScoreSegmenter:
    """A tiny model with every parameter perturbed (the zero-initialised output layer would hide the image)."""
    presets = NCSN_PRESETS if name.startswith("ncsn") else SDE_PRESETS
    return perturbed(FACTORIES[name], {**presets["tiny"].model, "image_size": SIZE, **overrides})


images = partial(random_images, SIZE)


@pytest.mark.parametrize("name", FACTORIES)
def test_segmenter_contract(name):
    model = tiny(name)
    assert model.unet.input_conv.in_channels == (17 if name.endswith("concat") else 16)
    x = images(3)
    loss = model.training_loss(x, (x > 0.5).float())
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    prediction = model.predict(x, torch.tensor([1, 2, 3]))
    assert isinstance(prediction, Prediction) and prediction.uncertainty is None
    p = prediction.probabilities
    assert p.shape == (3, 1, SIZE, SIZE) and p.dtype == torch.float32 and 0 <= p.min() and p.max() <= 1


SAMPLERS = [
    ("ncsn-add", {"num_scales": 3, "steps_per_level": 2}),
    ("ncsn-add", {"parameterisation": "score", "loss": "dsm", "clip_x0": False}),
    ("sde-add", {"sampler": "euler_maruyama", "sampling_steps": 3}),
    ("sde-add", {"sampler": "pc", "sampling_steps": 3, "sde": "ve"}),
    ("sde-concat", {"sampler": "ode", "sampling_steps": 3}),
]


@pytest.mark.parametrize("name, overrides", SAMPLERS)
def test_sample_independent_of_batch_size_and_position(name, overrides):
    model = tiny(name, **overrides)
    batch, seeds = images(6), torch.arange(100, 106)
    together = model.predict(batch, seeds).probabilities
    alone = model.predict(batch[4:5], seeds[4:5]).probabilities
    # kernels may block a batch of 6 differently from a batch of 1: equal up to float rounding
    assert torch.allclose(together[4], alone[0], atol=1e-5)
    shuffled = torch.tensor([4, 0, 1, 2, 3, 5])
    assert torch.allclose(model.predict(batch[shuffled], seeds[shuffled]).probabilities[0], alone[0], atol=1e-5)


@pytest.mark.parametrize("name, overrides", SAMPLERS[:4])
def test_seed_decides_the_mask_and_global_rng_is_left_alone(name, overrides):
    model, x = tiny(name, **overrides), images(2)
    state = torch.get_rng_state()
    first = model.sample(x, torch.tensor([5, 6]))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, model.sample(x, torch.tensor([5, 6])))
    assert not torch.equal(first, model.sample(x, torch.tensor([7, 8])))


def test_noise_labels_span_the_embeddings_range():
    ncsn = tiny("ncsn-add", num_scales=4)
    torch.testing.assert_close(ncsn.noise_label(ncsn.sigmas[[0, -1]]), torch.tensor([999.0, 0.0]), atol=1e-3, rtol=0)
    sde = tiny("sde-add")
    torch.testing.assert_close(sde.noise_label(torch.tensor([1.0, 1e-3])), torch.tensor([999.0, 0.999]))
    t = sde.noise_levels(1000, torch.device("cpu"))
    assert t.min() >= 1e-3 and t.max() <= 1


@pytest.mark.parametrize(
    "name, overrides, exact",
    [
        ("ncsn-add", {"parameterisation": "score", "loss": "dsm", "clip_x0": False}, "score"),
        ("ncsn-add", {"parameterisation": "score", "loss": "dsm", "clip_x0": True}, "score"),
        ("sde-add", {"parameterisation": "score", "loss": "dsm", "clip_x0": False}, "score"),
        ("sde-add", {"parameterisation": "denoiser", "loss": "dsm", "clip_x0": False}, "denoiser"),
        ("sde-add", {"parameterisation": "denoiser", "loss": "x0_mse"}, "denoiser"),
        ("ncsn-add", {"sde": "ve"}, "logit"),
        ("sde-add", {"sde": "ve"}, "logit"),
    ],
)
def test_exact_network_gives_the_kernel_score_and_zero_loss(name, overrides, exact, monkeypatch):
    """For a point-mass data distribution the network that outputs the truth (F = -z for "score",
    D = x_0 for "denoiser", a large logit of x_0 with bce_dice) yields the kernel's score
    -(x - a x_0) / s^2, and the DSM / x0 losses vanish."""
    model = tiny(name, **overrides)
    masks = (images(2) > 0.5).float()
    x0 = masks * 2 - 1
    t = model.noise_levels(2, torch.device("cpu"))
    noise = torch.randn_like(x0)
    a, std = model.marginal(t)
    x = expand(a, x0) * x0 + expand(std, x0) * noise
    out = {"score": -noise, "denoiser": x0, "logit": 30 * x0}[exact]
    monkeypatch.setattr(model, "network_output", lambda *args: out)
    torch.testing.assert_close(model.score(x, t, None), -noise / expand(std, x0), rtol=1e-3, atol=1e-3)

    monkeypatch.setattr(model, "noise_levels", lambda n, device: t)
    monkeypatch.setattr(torch, "randn_like", lambda like: noise)
    loss = model.training_loss(images(2), masks).item()
    assert loss < 1e-8 if exact != "logit" else loss < 1e-6 + 1e-3  # BCE of a logit of 30; soft Dice's smoothing


def test_clip_x0_keeps_the_implied_denoised_mask_in_range(monkeypatch):
    model = tiny("sde-add", parameterisation="denoiser", loss="x0_mse", clip_x0=True)
    x, t = torch.randn(2, 1, SIZE, SIZE), torch.tensor([0.3, 0.8])
    monkeypatch.setattr(model, "network_output", lambda *args: 5 * torch.randn(2, 1, SIZE, SIZE))
    a, std = (expand(v, x) for v in model.marginal(t))
    denoised = (x + std**2 * model.score(x, t, None)) / a  # Tweedie
    assert denoised.abs().max() <= 1 + 1e-4


def test_training_loss_uses_the_global_rng():
    model, x = tiny("sde-add"), images(4)
    masks = (x > 0.5).float()
    torch.manual_seed(3)
    first = model.training_loss(x, masks)
    torch.manual_seed(3)
    assert torch.equal(first, model.training_loss(x, masks))


@pytest.mark.parametrize("name, overrides", [("ncsn-add", {}), ("sde-add", {"sde": "ve"}), ("sde-add", {"sde": "vp"})])
def test_noisy_mask_enters_the_network_at_unit_scale(name, overrides, monkeypatch):
    """x = a x_0 + s z is divided by sqrt(a^2 + s^2), so at sigma = 60 the noise does not swamp the
    image condition it is added to; VP's input (a^2 + s^2 = 1) is passed as it is."""
    model = tiny(name, **overrides)
    seen = []
    monkeypatch.setattr(model, "network_output", lambda x, label, condition: seen.append(x) or x)
    x0 = (images(4) > 0.5).float() * 2 - 1
    t = model.sigmas[[0, 0, -1, -1]] if name.startswith("ncsn") else torch.tensor([1.0, 1.0, 1e-5, 1e-5])
    a, std = (expand(v, x0) for v in model.marginal(t))
    x = a * x0 + std * torch.randn_like(x0)
    model.score(x, t, None)
    if overrides.get("sde") == "vp":
        torch.testing.assert_close(seen[0], x)
    else:
        assert 0.8 < seen[0][:2].std() < 1.2  # noise of std 60 brought to about 1
        torch.testing.assert_close(seen[0], x / (a**2 + std**2).sqrt())
