"""The berdiff segmenter: x0_hat from either prediction, the loss terms against their definitions, seeding,
the shared backbone, and (slow) learning phantom lungs."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from segbench import Prediction
from segbench_berdiff.bernoulli import bernoulli_kl, posterior_probability
from segbench_berdiff.hyperparameters import PRESETS
from segbench_berdiff.segmenter import BerDiffSegmenter, berdiff
from tests.segmenters import perturbed, random_images
from tests.test_learning_phantom import _dice_after_training

SIZE = 16


def tiny(**overrides) -> BerDiffSegmenter:
    """A tiny model with every parameter perturbed (the zero-initialised output would make x0_hat = 1/2)."""
    return perturbed(berdiff, {**PRESETS["tiny"].model, "image_size": SIZE, **overrides})


images = partial(random_images, SIZE)


def test_the_network_is_diff_adds_rrdb_and_unet_with_the_condition_added():
    model = tiny()
    assert model.conditioning == "add" and model.unet.input_conv.in_channels == model.hparams.cond_channels


def test_eps_prediction_gives_x0_hat_as_abs_of_x_t_minus_eps_hat():
    model = tiny(prediction="epsilon")
    x_t = (torch.rand(2, 1, SIZE, SIZE) > 0.5).float()
    t, condition = torch.tensor([3, 500]), model.encode(images(2))
    eps_hat = torch.sigmoid(model.network_output(x_t * 2 - 1, t, condition).float())
    assert torch.allclose(torch.sigmoid(model.x0_logit(x_t, t, condition)), (x_t - eps_hat).abs(), atol=1e-6)


@pytest.mark.parametrize("prediction", ["epsilon", "x0"])
def test_mix_loss_is_posterior_kl_plus_bce_of_the_flip_noise(prediction):
    model = tiny(prediction=prediction, loss="mix", bce_weight=0.7).train()
    x, masks = images(4), (images(4, 1) > 0.5).float()
    torch.manual_seed(3)
    loss = model.training_loss(x, masks)
    # the same draws, by hand: t, then x_t ~ B(abar_t x_0 + (1 - abar_t) / 2)
    torch.manual_seed(3)
    t = torch.randint(0, model.hparams.timesteps, (4,))
    abar = model.alphas_cumprod[t].view(-1, 1, 1, 1)
    x_t = (torch.rand_like(masks) < abar * masks + (1 - abar) / 2).float()
    out = model.network_output(x_t * 2 - 1, t, model.encode(x)).float()
    flip = (x_t - masks).abs()
    if prediction == "epsilon":
        eps_hat = torch.sigmoid(out)
        x0_hat = (x_t - eps_hat).abs()
        bce = F.binary_cross_entropy_with_logits(out, flip)  # Eq. 7, on the flip noise
    else:
        x0_hat = torch.sigmoid(out)
        bce = F.binary_cross_entropy_with_logits(out, masks)
    abar_prev = torch.where(t > 0, model.alphas_cumprod[(t - 1).clamp(min=0)], torch.ones(4)).view(-1, 1, 1, 1)
    alpha = model.alphas[t].view(-1, 1, 1, 1)
    kl = bernoulli_kl(posterior_probability(x_t, masks, alpha, abar_prev),
                      posterior_probability(x_t, x0_hat, alpha, abar_prev)).mean()
    assert torch.allclose(loss, kl + 0.7 * bce, atol=1e-5)


def test_at_the_first_step_the_kl_is_the_decoders_negative_log_likelihood():
    x_t = torch.tensor([0.0, 1.0, 1.0, 0.0])
    x0 = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x0_hat = torch.tensor([0.2, 0.9, 0.4, 0.6])
    alpha = torch.tensor(1 - 1e-4)
    p = posterior_probability(x_t, x0_hat, alpha, torch.tensor(1.0))
    nll = -(x0 * p.log() + (1 - x0) * (1 - p).log())
    assert torch.allclose(bernoulli_kl(posterior_probability(x_t, x0, alpha, torch.tensor(1.0)), p), nll, atol=1e-6)


@pytest.mark.parametrize("loss", ["mix", "mix_dice", "kl", "bce"])
def test_every_loss_is_a_finite_scalar_reaching_the_parameters(loss):
    model = tiny(loss=loss).train()
    value = model.training_loss(images(3), (images(3, 1) > 0.5).float())
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert model.unet.output[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("overrides", [{}, {"sampler": "ddpm", "timesteps": 30}])
def test_predict_is_seeded_per_sample_and_leaves_the_global_rng_alone(overrides):
    model, x = tiny(**overrides), images(4)
    state = torch.get_rng_state()
    first = model.predict(x, torch.tensor([1, 2, 3, 4]))
    assert torch.equal(torch.get_rng_state(), state)
    assert isinstance(first, Prediction) and first.uncertainty is None
    p = first.probabilities
    assert p.shape == x.shape and p.dtype == torch.float32 and 0 <= p.min() and p.max() <= 1
    assert torch.equal(p, model.predict(x, torch.tensor([1, 2, 3, 4])).probabilities)
    assert not torch.equal(p, model.predict(x, torch.tensor([5, 6, 7, 8])).probabilities)
    alone = model.predict(x[2:3], torch.tensor([3])).probabilities
    assert torch.allclose(p[2:3], alone, atol=1e-5)


@pytest.mark.slow
def test_tiny_berdiff_learns_phantom_lungs(registry):
    assert _dice_after_training(registry, "berdiff", "tiny", {"epochs": "12", "lr": "3e-3", "sampling_steps": "5"}) > 0.9
