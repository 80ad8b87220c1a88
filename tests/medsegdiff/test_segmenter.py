"""The medsegdiff segmenter: the shared DDPM head on MedSegDiff's network, seeding, and (slow) learning."""

from functools import partial

import pytest
import torch

from segbench import Prediction
from segbench_backbone.ddpm import DDPMSegmenter
from segbench_medsegdiff.hyperparameters import PRESETS
from segbench_medsegdiff.segmenter import MedSegDiffSegmenter, medsegdiff
from tests.segmenters import perturbed, random_images
from tests.test_learning_phantom import _dice_after_training

SIZE = 16


def tiny(**overrides) -> MedSegDiffSegmenter:
    """A tiny model with every parameter perturbed, so that the samples depend on the image and the seed."""
    return perturbed(medsegdiff, {**PRESETS["tiny"].model, "image_size": SIZE, **overrides})


images = partial(random_images, SIZE)


def test_the_head_is_the_shared_ddpm_head():
    model = tiny()
    assert isinstance(model, DDPMSegmenter)
    assert model.alphas_cumprod.shape == (1000,) and "alphas_cumprod" not in model.state_dict()


@pytest.mark.parametrize("overrides", [{}, {"prediction": "epsilon", "loss": "mse", "clip_x0": False}])
def test_segmenter_contract(overrides):
    model = tiny(**overrides).train()
    x = images(3)
    loss = model.training_loss(x, (x > 0.5).float())
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    # the FF-Parser and the encoding are trained
    assert model.fusions[0].ff_parser.weight_real.grad.abs().sum() > 0
    assert model.image_encoder[0].res.conv1.weight.grad.abs().sum() > 0
    prediction = model.eval().predict(x, torch.tensor([1, 2, 3]))
    assert isinstance(prediction, Prediction)
    p = prediction.probabilities
    assert p.shape == x.shape and p.dtype == torch.float32 and 0 <= p.min() and p.max() <= 1


@pytest.mark.parametrize("overrides", [{}, {"sampler": "ddpm", "timesteps": 20}, {"sampler": "dpmpp2m", "sampling_steps": 3},
                                       {"eta": 1.0, "sampling_steps": 3}])
def test_samples_are_per_sample_seeded_and_the_rrdb_stem_may_be_cached(overrides):
    model, x = tiny(**overrides), images(4)
    seeds = torch.tensor([7, 8, 9, 10])
    state = torch.get_rng_state()
    first = model.sample(x, seeds)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, model.sample(x, seeds, recompute_condition=True))
    assert not torch.equal(first, model.sample(x, seeds + 10))
    order = torch.tensor([2, 0, 3, 1])  # a sample's draws are its own: at one batch shape, bit for bit
    assert torch.equal(model.sample(x[order], seeds[order]), first[order])
    # Another batch size rounds the network's kernels differently (up to 5e-5 after 20 ancestral steps on an
    # Intel AVX-512 host); runs keep one batch shape and are exact (tests/core/test_batch_independence.py).
    assert torch.allclose(first[1:2], model.sample(x[1:2], seeds[1:2]), atol=1e-4)


@pytest.mark.slow
def test_tiny_medsegdiff_learns_phantom_lungs(registry):
    assert _dice_after_training(registry, "medsegdiff", "tiny", {"epochs": "12", "lr": "3e-3", "sampling_steps": "5"}) > 0.85


def test_bf16_autocast_runs_the_fourier_filter_in_float32():
    model, x = tiny(), images(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.train().training_loss(x, (x > 0.5).float())
        p = model.eval().predict(x, torch.tensor([1, 2])).probabilities
    reference = model.predict(x, torch.tensor([1, 2])).probabilities
    assert torch.isfinite(loss) and p.dtype == torch.float32
    assert (p - reference).abs().max() < 0.1  # bf16 network, float32 sampler
