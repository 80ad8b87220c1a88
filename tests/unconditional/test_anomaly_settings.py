"""anomaly-ddpm's noise and reconstruction sampler against direct computations: ancestral reconstruction step
by step from the linear schedule's betas (Ho et al. Eq. 6-7), with Gaussian or simplex draws from the
sample's generator; DDIM and ancestral differ; simplex noise in training; what `segbench info` says; and
`evaluate --set` refused where it would change how the run's stages were made."""

import numpy as np
import pytest
import torch

from segbench import SegbenchError
from segbench.plan.build import refuse_stage_sets
from segbench.plan.sets import SetKey
from segbench_backbone.schedules import q_sample
from segbench_unconditional import plugin
from segbench_unconditional.hyperparameters import ANOMALY_PRESETS
from segbench_unconditional.simplex import simplex_per_sample
from tests.segmenters import planned, registered
from tests.unconditional.helpers import perturb, tiny_anomaly

SIMPLEX = {"octaves": 4, "persistence": 0.8, "frequency": 4.0}  # the presets' simplex settings


def draws(noise: str, seed: int, size: int):
    """The sample's noise, draw after draw, as an independent generator gives it."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        if noise == "gaussian":
            yield torch.randn((1, size, size), generator=generator).double()
        else:
            yield simplex_per_sample((1, size, size), [generator], **SIMPLEX)[0].double()


@pytest.mark.parametrize("noise", ["gaussian", "simplex"])
def test_ancestral_reconstruction_is_ho_et_als_chain_step_by_step(monkeypatch, noise):
    """eps_theta(x, t) = 0.3 x: x_5 = sqrt(abar_5) x_0 + sqrt(1 - abar_5) n_0, then for t = 5..0 the posterior
    mean of x0_hat (clamped) and x_t, plus sqrt(beta_tilde_t) n_k for t > 0; abar and beta from the linear
    betas in float64; the score (sigma 0) is |image - reconstruction|."""
    model = tiny_anomaly(start_steps=(5,), reconstructions=1, reconstruction_steps=2, smoothing_sigma=0.0,
                         reconstruction_sampler="ddpm", noise=noise).eval()
    calls = []
    monkeypatch.setattr(model.ddpm, "eps", lambda x, t: (calls.append(int(t[0])), 0.3 * x)[1])
    image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    score = model.anomaly_scores(image, torch.tensor([11]))
    assert calls == [5, 4, 3, 2, 1, 0]

    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    noise_draws = draws(noise, 11, 32)
    x0 = image[0].double() * 2 - 1
    x = abar[5].sqrt() * x0 + (1 - abar[5]).sqrt() * next(noise_draws)
    for t in range(5, -1, -1):
        previous = abar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
        x0_hat = ((x - (1 - abar[t]).sqrt() * 0.3 * x) / abar[t].sqrt()).clamp(-1, 1)
        mean = (previous.sqrt() * betas[t] / (1 - abar[t])) * x0_hat + ((1 - betas[t]).sqrt() * (1 - previous)
                                                                          / (1 - abar[t])) * x
        x = mean + ((1 - previous) / (1 - abar[t]) * betas[t]).sqrt() * next(noise_draws) if t > 0 else mean
    reconstruction = (x.clamp(-1, 1) + 1) / 2
    # 1e-4: the model's float32 schedule near t = 0 (1 - abar_0 = 1e-4 to float32's 1e-7) against float64
    np.testing.assert_allclose(score[0].double().numpy(), (image[0].double() - reconstruction).abs().numpy(), atol=1e-4)


def test_ddim_and_ancestral_reconstructions_differ_and_cost_what_info_says(monkeypatch):
    model = tiny_anomaly(start_steps=(20,), reconstructions=1, reconstruction_steps=4).eval()
    perturb(model.ddpm)
    images, seeds = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 2])
    ddim = model.anomaly_scores(images, seeds)
    ancestral_model = tiny_anomaly(start_steps=(20,), reconstructions=1, reconstruction_steps=4,
                                   reconstruction_sampler="ddpm").eval()
    ancestral_model.load_state_dict(model.state_dict())
    calls = []
    original = ancestral_model.ddpm.eps
    monkeypatch.setattr(ancestral_model.ddpm, "eps", lambda x, t: (calls.append(int(t[0])), original(x, t))[1])
    ancestral = ancestral_model.anomaly_scores(images, seeds)
    assert float((ddim - ancestral).abs().max()) > 1e-3
    spec = registered(plugin)["anomaly-ddpm"]
    values = {**ANOMALY_PRESETS["tiny"].model, "start_steps": (20,), "reconstructions": 1, "reconstruction_steps": 4}
    assert len(calls) == 21 == spec.network_evaluations({**values, "reconstruction_sampler": "ddpm"})
    assert spec.network_evaluations(values) == 4


def test_simplex_noise_partially_noises_and_trains_the_ddpm(monkeypatch):
    """Reconstruction: x_t made with the simplex draw of the sample's generator. Training: t, then one simplex
    field per image from the global generator, and L_simple against that field."""
    model = tiny_anomaly(noise="simplex", start_steps=(100,), reconstructions=1, reconstruction_steps=2).eval()
    seen = []
    monkeypatch.setattr(model.ddpm, "eps", lambda x, t: (seen.append(x.clone()), torch.zeros_like(x))[1])
    images = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    model.anomaly_scores(images, torch.tensor([5, 6]))
    noise = simplex_per_sample((1, 32, 32), [torch.Generator().manual_seed(s) for s in (5, 6)], **SIMPLEX)
    expected = q_sample(images * 2 - 1, torch.full((2,), 100), noise, model.ddpm.alphas_cumprod)
    torch.testing.assert_close(seen[0], expected)

    trained = tiny_anomaly(noise="simplex")
    torch.manual_seed(3)
    loss = trained.ddpm_loss(images)
    torch.manual_seed(3)
    t = torch.randint(0, 1000, (2,))
    target = simplex_per_sample((1, 32, 32), [torch.default_generator] * 2, **SIMPLEX)
    x_t = q_sample(images * 2 - 1, t, target, trained.ddpm.alphas_cumprod)
    assert torch.equal(loss, torch.nn.functional.mse_loss(trained.ddpm.eps(x_t, t), target))


def test_info_names_the_baseline_its_noise_and_sampler_and_what_it_leaves_out():
    spec = registered(plugin)["anomaly-ddpm"]
    values = {**ANOMALY_PRESETS["paper"].model, "image_size": 64}
    line = spec.summary(values)
    assert "partial-diffusion residual baseline of Pinaya et al., AnoDDPM and AutoDDPM" in line
    assert "with Gaussian noise" in line and "DDIM back (10 steps)" in line
    assert ("Not included: Pinaya et al.'s VQ-VAE latent model and masked inpainting, AutoDDPM's "
            "mask-stitch-resample") in line
    simplex = spec.summary({**values, "noise": "simplex", "reconstruction_sampler": "ddpm"})
    assert ("simplex noise (AnoDDPM), also the DDPM's training noise: 4 octaves of lattice cells 16, 8, 4, 2 px, "
            "amplitudes 1, 0.8, 0.64, 0.512") in simplex
    assert "ancestral DDPM back (every step from the start)" in simplex and "201 U-Net evaluations" in simplex
    assert "partial-diffusion residual" in spec.description and "mask-stitch-resample" in spec.description


@pytest.mark.parametrize("overrides, message", [
    ({"noise": "perlin"}, r"unknown noise 'perlin'; valid: gaussian, simplex"),
    ({"reconstruction_sampler": "dpmpp2m"}, r"unknown reconstruction_sampler 'dpmpp2m'; valid: ddim, ddpm"),
    ({"noise": "simplex", "simplex_octaves": 5}, r"simplex_octaves=5 at simplex_frequency=4: the finest octave's "
                                                 r"lattice cells are below a pixel at 32 px"),
    ({"simplex_persistence": 0}, r"persistence in \(0, 1\]"),
])
def test_bad_noise_settings_are_one_clear_error(overrides, message):
    with pytest.raises(SegbenchError, match=message):
        planned(registered(plugin)["anomaly-ddpm"], "tiny", 32, "infection", **overrides)


@pytest.mark.parametrize("model, key, stage", [
    ("anomaly-ddpm", "noise", "'ddpm' was trained"),
    ("anomaly-ddpm", "simplex_octaves", "'ddpm' was trained"),
    ("anomaly-ddpm", "start_steps", "'calibration' was fitted"),
    ("anomaly-ddpm", "reconstruction_sampler", "'calibration' was fitted"),
    ("anomaly-ddpm", "smoothing_sigma", "'calibration' was fitted"),
    ("ddpm-features", "timesteps", "'ddpm' was trained"),
])
def test_a_set_that_changes_a_stage_of_the_run_is_refused(model, key, stage):
    with pytest.raises(SegbenchError, match=f"^--set {model}.{key}: the run's stage {stage} with the run's value, "
                                            "and evaluate reuses it; run again to change it$"):
        refuse_stage_sets(registered(plugin)[model], model, {SetKey("", key): "1"}, "evaluate")
    refuse_stage_sets(registered(plugin)["ddpm-features"], "ddpm-features", {SetKey("", "feature_timesteps"): "5"},
                      "evaluate")  # not what a stage of ddpm-features' run was made with: allowed


def test_evaluate_refuses_a_set_that_changes_the_scores_in_one_line(tmp_path, run_cli):
    run = tmp_path / "anomaly"
    code, _, stderr = run_cli("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "anomaly-ddpm",
                              "--preset", "tiny", "--image-size", "32", "--steps", "2", "--eval-samples", "2",
                              "--quiet", "--out", str(run))
    assert code == 0, stderr
    for setting, stage in (("start_steps=100", "'calibration' was fitted"), ("noise=simplex", "'ddpm' was trained")):
        code, _, stderr = run_cli("evaluate", str(run), "--set", f"anomaly-ddpm.{setting}", "--out",
                                  str(tmp_path / "again"), "--quiet")
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert f"--set anomaly-ddpm.{setting.split('=')[0]}: the run's stage {stage}" in stderr
        assert not (tmp_path / "again").exists()
