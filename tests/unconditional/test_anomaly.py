"""anomaly-ddpm against direct computations: the smoothing (scipy), the score on a hand-made case, the
calibration's false-positive rate on synthetic scores and, run by the engine under bf16, through prediction;
the exact 0.5 boundary, the calibration kept in checkpoints, and per-sample seeds."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from segbench import SegbenchError
from segbench.data.prepare import SplitData
from segbench.data.views import TrainingView
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.engine.stages import train_stages
from segbench.plan.run_plan import EvaluationPlan
from segbench_backbone.schedules import q_sample
from segbench_unconditional import plugin
from segbench_unconditional.anomaly import (
    BELOW_HALF,
    fit_threshold,
    gaussian_smooth,
    residual_score,
    score_probability,
)
from tests.unconditional.helpers import perturb, staged_job, tiny_anomaly


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.5])
def test_gaussian_smooth_is_scipys_mirror_filter(sigma):
    maps = torch.rand(2, 1, 20, 17, dtype=torch.float64)
    expected = np.stack([ndimage.gaussian_filter(m[0].numpy(), sigma, mode="mirror", truncate=4.0) for m in maps])
    np.testing.assert_allclose(gaussian_smooth(maps, sigma)[:, 0].numpy(), expected, atol=1e-12)
    assert torch.equal(gaussian_smooth(maps, 0.0), maps)


def test_residual_score_on_a_hand_made_case():
    """A bright square the reconstruction does not have: the score is the smoothed mean absolute residual."""
    image = torch.full((1, 1, 16, 16), 0.3)
    image[..., 5:9, 6:10] = 0.9
    healthy = torch.full((1, 1, 16, 16), 0.3)
    half_way = healthy.clone()
    half_way[..., 5:9, 6:10] = 0.6
    score = residual_score(image, [healthy, half_way], sigma=1.0)
    residual = np.zeros((16, 16))
    residual[5:9, 6:10] = (0.6 + 0.3) / 2  # mean over the two reconstructions
    np.testing.assert_allclose(score[0, 0].numpy(), ndimage.gaussian_filter(residual, 1.0, mode="mirror"), atol=1e-6)
    assert float(residual_score(image, [image], sigma=1.0).abs().max()) == 0


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.2])
def test_calibration_false_positive_rate_on_synthetic_scores(fpr):
    """At most fpr of the healthy pixels reach tau, and no lower threshold keeps that bound; the median maps
    to p = fpr; ties (a score repeated many times at the cut) do not break the bound."""
    generator = torch.Generator().manual_seed(0)
    healthy = torch.randn(10_000, generator=generator).abs()
    healthy[:700] = healthy[5000]  # a block of equal scores
    for scores in (healthy, healthy.round(decimals=1)):
        tau, scale = fit_threshold(scores, fpr)
        positive = score_probability(scores, torch.tensor(tau), torch.tensor(scale)) >= 0.5
        allowed = int(fpr * scores.numel())  # counts, not float32 means: 2,000 of 10,000 is exactly 0.2
        assert int(positive.sum()) <= allowed
        lower = torch.nextafter(torch.tensor(tau), torch.tensor(-np.inf))
        assert int((scores >= lower).sum()) > allowed  # the threshold is as low as the bound allows
    tau, scale = fit_threshold(healthy, fpr)
    p_median = score_probability(healthy.median().reshape(1), tau, scale)
    assert abs(float(p_median) - fpr) < 1e-3


def test_probability_is_at_least_half_exactly_where_the_score_reaches_the_threshold():
    tau = torch.tensor(0.25)
    just_below = torch.nextafter(tau, torch.tensor(0.0))
    scores = torch.stack([just_below, tau, torch.tensor(0.0), torch.tensor(1.0)])
    p = score_probability(scores, tau, torch.tensor(10.0))  # a wide scale: sigmoid would round to 0.5
    assert p.tolist()[0] == BELOW_HALF and p[1] == 0.5
    assert float(p[2]) < 0.5 < float(p[3])


def test_an_exact_healthy_model_scores_the_anomaly_alone(monkeypatch):
    """End to end through the model: a DDPM whose eps is the one that x_t and a known healthy image imply
    reconstructs that healthy image from any start, so the score is the smoothed |image - healthy|."""
    model = tiny_anomaly(smoothing_sigma=1.0, start_steps=(100, 200), reconstruction_steps=3).eval()
    abar = model.ddpm.alphas_cumprod
    healthy = torch.full((1, 1, 32, 32), 0.4)
    image = healthy.clone()
    image[..., 10:16, 12:20] = 0.8

    def eps(x_t, t):
        a = abar[t].view(-1, 1, 1, 1)
        return (x_t - a.sqrt() * (healthy * 2 - 1)) / (1 - a).sqrt()

    monkeypatch.setattr(model.ddpm, "eps", eps)
    score = model.anomaly_scores(image, torch.tensor([7]))
    expected = ndimage.gaussian_filter((image - healthy)[0, 0].abs().double().numpy(), 1.0, mode="mirror")
    np.testing.assert_allclose(score[0, 0].numpy(), expected, atol=1e-4)


def test_reconstruction_noise_comes_from_each_samples_seed(monkeypatch):
    """Reconstruction k (start steps in order, `reconstructions` draws each) starts from x_t made with the
    k-th N(0, I) draw of a generator seeded with the sample's seed, and the score is the smoothed mean of
    the reconstructions' residuals."""
    model = tiny_anomaly(start_steps=(100, 200), reconstructions=2, reconstruction_steps=2,
                         smoothing_sigma=0.0).eval()
    seen = []
    monkeypatch.setattr(model.ddpm, "eps", lambda x, t: (seen.append((x.clone(), int(t[0]))), torch.zeros_like(x))[1])
    images = torch.rand(2, 1, 32, 32)
    score = model.anomaly_scores(images, torch.tensor([5, 6]))
    generators = [torch.Generator().manual_seed(s) for s in (5, 6)]
    draws = [torch.stack([torch.randn((1, 32, 32), generator=g) for g in generators]) for _ in range(4)]
    starts = seen[::2]  # the first of each reconstruction's 2 DDIM steps
    assert [t for _, t in seen] == [100, 50, 100, 50, 200, 100, 200, 100]
    for (x_t, t), noise in zip(starts, draws):
        torch.testing.assert_close(x_t, q_sample(images * 2 - 1, torch.full((2,), t), noise, model.ddpm.alphas_cumprod))
    # eps = 0: each DDIM run ends at x_0 = clamp(x_t / sqrt(abar_t)) of its own x_t (every step keeps x0_hat)
    abar = model.ddpm.alphas_cumprod
    reconstructions = [((x_t / abar[t].sqrt()).clamp(-1, 1) + 1) / 2 for x_t, t in starts]
    expected = torch.stack([(images - r).abs() for r in reconstructions]).mean(0)
    torch.testing.assert_close(score, expected)


def test_calibration_is_kept_in_the_checkpoint_and_gives_its_rate_on_its_images():
    model = tiny_anomaly().eval()
    perturb(model.ddpm)
    healthy, seeds = torch.rand(16, 1, 32, 32), torch.arange(16)
    with pytest.raises(SegbenchError, match="not calibrated"):
        model.predict(healthy, seeds)
    model.calibrate(model.anomaly_scores(healthy, seeds))
    assert model.calibrated
    state = model.state_dict()
    assert {"threshold", "scale"} <= set(state)
    restored = tiny_anomaly()
    restored.load_state_dict(state)
    restored.eval()
    p = restored.predict(healthy, seeds).probabilities
    assert torch.equal(p, model.predict(healthy, seeds).probabilities)
    assert int((p >= 0.5).sum()) <= int(model.hparams.false_positive_rate * p.numel())
    assert float(p.min()) >= 0 and float(p.max()) <= 1


def test_a_samples_prediction_depends_on_its_own_seed_only():
    """The same bits with other companions and at another position in a batch of the engine's shape (32 on
    the CPU); the same values alone; another seed, another reconstruction."""
    model = tiny_anomaly(image_size=16, start_steps=(50,), reconstruction_steps=2).eval()
    perturb(model.ddpm)
    model.calibrate(model.anomaly_scores(torch.rand(8, 1, 16, 16), torch.arange(8)))
    generator = torch.Generator().manual_seed(0)
    images, seeds = torch.rand(32, 1, 16, 16, generator=generator), torch.arange(100, 132)
    full = model.predict(images, seeds).probabilities
    others, other_seeds = torch.rand(32, 1, 16, 16, generator=generator), torch.arange(200, 232)
    others[7], other_seeds[7] = images[3], seeds[3]
    assert torch.equal(model.predict(others, other_seeds).probabilities[7], full[3])
    torch.testing.assert_close(model.predict(images[3:4], seeds[3:4]).probabilities, full[3:4], atol=1e-6, rtol=0)
    assert not torch.equal(model.predict(images[3:4], seeds[4:5]).probabilities, full[3:4])


def test_calibration_run_by_the_engine_under_bf16_gives_its_rate_through_prediction(tmp_path):
    """The calibration stage under CPU bf16 autocast fits its threshold on the scores prediction computes
    (the same batch shape, padding and precision): its images, predicted as a run predicts, have exactly
    floor(fpr N) pixels at 0.5 or above (float32 scores do not tie at the cut), within 0.005 of 5 %."""
    model = tiny_anomaly().eval()
    perturb(model.ddpm)
    images = (torch.rand(24, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8).numpy()
    ids = [f"val/{i}" for i in range(len(images))]
    runtime = Runtime(torch.device("cpu"), "bf16")
    calibration = plugin.ANOMALY_STAGES[1]
    assert calibration.fit and model.hparams.false_positive_rate == 0.05
    train_stages(model, staged_job([calibration], {}, TrainingView(ids, images, None), runtime, tmp_path))
    p = predict_split(model, SplitData(ids, images, np.zeros_like(images)), EvaluationPlan(None, 32, 1, 0.5),
                      run_seed=0, runtime=runtime).probabilities
    positives = int((p >= 0.5).sum())
    assert positives == int(0.05 * p.numel())
    assert abs(positives / p.numel() - 0.05) <= 0.005
