"""Our samplers against diffusers' schedulers (skipped when diffusers is not installed):
DDIM to the bit, DPM-Solver++(2M) to float32 rounding."""

import pytest
import torch

from segbench_backbone.samplers import ddim_sample, dpmpp_2m_sample, randn_per_sample
from segbench_backbone.schedules import alphas_cumprod, linear_betas

diffusers = pytest.importorskip("diffusers")

ABAR = alphas_cumprod(linear_betas(1000, 1e-4, 0.02))


def eps_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Any deterministic function of (x_t, t) will do; nonlinear so clipping matters."""
    return torch.tanh(2 * x_t) * (1 - t.float() / 2000).reshape(-1, 1, 1, 1)


def diffusers_ddim(x_T, steps, eta, seeds, clip):
    scheduler = diffusers.DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        timestep_spacing="leading",
        steps_offset=0,
        set_alpha_to_one=True,
        clip_sample=clip,
        clip_sample_range=1.0,
    )
    scheduler.set_timesteps(steps)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    x = x_T
    for t in scheduler.timesteps:
        eps = eps_fn(x, torch.full((x.shape[0],), int(t)))
        x = scheduler.step(eps, t, x, eta=eta, generator=generators, use_clipped_model_output=clip).prev_sample
    return x


@pytest.mark.parametrize("steps", [50, 10])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [False, True])
def test_ddim_matches_diffusers(steps, eta, clip):
    seeds = [3, 4, 5]
    x_T = randn_per_sample((1, 16, 16), [torch.Generator().manual_seed(s) for s in seeds])
    ours = ddim_sample(
        eps_fn, x_T, ABAR, steps, eta, [torch.Generator().manual_seed(s + 10) for s in seeds], clip_x0=clip
    )
    theirs = diffusers_ddim(x_T, steps, eta, [s + 10 for s in seeds], clip)
    assert torch.equal(ours, theirs)


def diffusers_dpmpp_2m(x_T, steps):
    scheduler = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        beta_start=1e-4,
        beta_end=0.02,
        algorithm_type="dpmsolver++",
        solver_order=2,
        solver_type="midpoint",
        timestep_spacing="linspace",
        final_sigmas_type="zero",
        lower_order_final=True,
    )
    scheduler.set_timesteps(steps)
    x = x_T
    for t in scheduler.timesteps:
        x = scheduler.step(eps_fn(x, torch.full((x.shape[0],), int(t))), t, x).prev_sample
    return x


@pytest.mark.parametrize("steps", [20, 10, 5])
def test_dpmpp_2m_matches_diffusers(steps):
    x_T = randn_per_sample((1, 16, 16), [torch.Generator().manual_seed(s) for s in (3, 4, 5)])
    ours = dpmpp_2m_sample(eps_fn, x_T, ABAR, steps)
    theirs = diffusers_dpmpp_2m(x_T, steps)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours, x_T)
