"""BerDiff's Bernoulli diffusion against brute force: the chain of Eq. 1 enumerated for T <= 4 gives Eq. 2's
marginal and, by Bayes' rule, Eq. 4's posterior; the DDIM-like step keeps the marginal; the KL is the sum it
stands for; the samplers draw from per-sample generators."""

import itertools
import math

import pytest
import torch

from segbench_berdiff.bernoulli import (
    ancestral_sample,
    bernoulli_kl,
    ddim_probability,
    ddim_sample,
    posterior_probability,
    q_probability,
)


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons with the enumeration: float64 tensors by default, restored afterwards."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dtype)


def schedule(T: int, seed: int) -> torch.Tensor:
    """Random betas in (0.05, 0.6): large steps, so that every term of the formulas matters."""
    return 0.05 + 0.55 * torch.rand(T, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def bern(x: int, p: float) -> float:
    return p if x == 1 else 1 - p


def chains(T: int, betas: torch.Tensor, x0_prob: float):
    """Every path x_0..x_T of one pixel with its probability: x_0 ~ B(x0_prob), then Eq. 1 step by step
    (beta_{t} = betas[t - 1]). Uses only the one-step kernel, never Eq. 2."""
    for path in itertools.product((0, 1), repeat=T + 1):
        p = bern(path[0], x0_prob)
        for t in range(1, T + 1):
            p *= bern(path[t], (1 - betas[t - 1].item()) * path[t - 1] + betas[t - 1].item() / 2)
        yield path, p


@pytest.mark.parametrize("T", [1, 2, 3, 4])
def test_forward_marginal_eq2_matches_the_enumerated_chain(T):
    betas = schedule(T, T)
    abar = torch.cumprod(1 - betas, 0)
    for x0 in (0, 1):
        for t in range(1, T + 1):
            enumerated = sum(p for path, p in chains(T, betas, float(x0)) if path[t] == 1)
            assert q_probability(torch.tensor(float(x0)), abar[t - 1]).item() == pytest.approx(enumerated, abs=1e-12)


@pytest.mark.parametrize("T", [1, 2, 3, 4])
@pytest.mark.parametrize("x0_prob", [0.0, 1.0, 0.3])
def test_posterior_eq4_is_bayes_rule_by_enumeration_and_sums_to_one(T, x0_prob):
    """For binary x_0 (0, 1): q(x_{t-1} | x_t, x_0). For x0_prob = 0.3: the reverse step with x0_hat plugged in,
    which is Bayes' rule for x_0 ~ B(x0_hat): P(x_{t-1} | x_t) of that chain."""
    betas = schedule(T, 10 + T)
    alphas, abar = 1 - betas, torch.cumprod(1 - betas, 0)
    paths = list(chains(T, betas, x0_prob))
    for t in range(1, T + 1):  # paper's t; our 0-based index is t - 1
        abar_prev = abar[t - 2] if t >= 2 else torch.tensor(1.0)
        for x_t in (0, 1):
            evidence = sum(p for path, p in paths if path[t] == x_t)
            bayes = [sum(p for path, p in paths if path[t] == x_t and path[t - 1] == v) / evidence for v in (0, 1)]
            assert sum(bayes) == pytest.approx(1, abs=1e-12)
            one = posterior_probability(torch.tensor(float(x_t)), torch.tensor(x0_prob), alphas[t - 1], abar_prev)
            zero = posterior_probability(torch.tensor(1.0 - x_t), torch.tensor(1 - x0_prob), alphas[t - 1], abar_prev)
            assert one.item() == pytest.approx(bayes[1], abs=1e-12)
            assert zero.item() == pytest.approx(bayes[0], abs=1e-12)  # the 0 class, by the process's symmetry
            assert (one + zero).item() == pytest.approx(1, abs=1e-12)


def test_posterior_of_the_first_step_is_the_point_mass_on_x0():
    x_t = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x0 = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert torch.equal(posterior_probability(x_t, x0, torch.tensor(0.9), torch.tensor(1.0)), x0)


@pytest.mark.parametrize("t, s", [(3, 1), (4, 0), (2, 1)])
def test_ddim_like_step_keeps_the_forward_marginal(t, s):
    betas = schedule(4, 7)
    abar = torch.cumprod(1 - betas, 0)
    abar_s = abar[s - 1] if s >= 1 else torch.tensor(1.0)
    for x0 in (0.0, 1.0):
        x0 = torch.tensor(x0)
        marginal = sum(bern(x_t, q_probability(x0, abar[t - 1]).item())
                       * ddim_probability(torch.tensor(float(x_t)), x0, abar[t - 1], abar_s).item() for x_t in (0, 1))
        assert marginal == pytest.approx(q_probability(x0, abar_s).item(), abs=1e-12)
        for x_t in (0.0, 1.0):
            p = ddim_probability(torch.tensor(x_t), x0, abar[t - 1], abar_s).item()
            assert 0 <= p <= 1


def test_the_noise_term_of_eq2_is_kept():
    """The released code's q_mean drops "+ (1 - abar) / 2" (a discarded statement): x_T would be all zeros."""
    assert q_probability(torch.tensor(0.0), torch.tensor(1e-6)).item() == pytest.approx(0.5, abs=1e-6)
    assert q_probability(torch.tensor(1.0), torch.tensor(1e-6)).item() == pytest.approx(0.5, abs=1e-6)
    assert q_probability(torch.tensor(0.0), torch.tensor(0.4)).item() == pytest.approx(0.3)


def test_kl_is_the_two_term_sum_and_zero_log_zero_is_zero():
    p = torch.tensor([0.2, 0.7, 0.0, 1.0, 0.5])
    q = torch.tensor([0.3, 0.7, 0.4, 0.9, 0.1])
    expected = [sum(bern(v, a) * math.log(bern(v, a) / bern(v, b)) for v in (0, 1) if bern(v, a) > 0)
                for a, b in zip(p.tolist(), q.tolist())]
    assert torch.allclose(bernoulli_kl(p, q), torch.tensor(expected), atol=1e-12)
    assert bernoulli_kl(torch.tensor([1.0]), torch.tensor([0.0])).isfinite().all()  # q kept off 0


def oracle(mask: torch.Tensor, calls: list):
    def x0_fn(x_t, t):
        calls.append(int(t[0]))
        return mask.expand_as(x_t).clone()
    return x0_fn


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_samplers_visit_their_timesteps_and_return_x0_hat_of_the_last():
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 100), 0)
    alphas = 1 - torch.linspace(1e-4, 0.02, 100)
    mask = (torch.rand(1, 1, 4, 4) > 0.5).double()
    x_T = (torch.rand(3, 1, 4, 4) > 0.5).double()
    calls = []
    assert torch.equal(ddim_sample(oracle(mask, calls), x_T, abar, 5, generators([1, 2, 3])), mask.expand_as(x_T))
    assert calls == [80, 60, 40, 20, 0]
    calls.clear()
    assert torch.equal(ancestral_sample(oracle(mask, calls), x_T, alphas, abar, generators([1, 2, 3])), mask.expand_as(x_T))
    assert calls == list(range(99, -1, -1))


def test_sampler_draws_are_per_sample():
    abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 100), 0)
    seen = []

    def x0_fn(x_t, t):
        seen.append(x_t.clone())
        return torch.full_like(x_t, 0.5)

    x_T = torch.zeros(3, 1, 8, 8)
    ddim_sample(x0_fn, x_T, abar, 3, generators([5, 6, 7]))
    together = [x[1] for x in seen[1:]]
    seen.clear()
    ddim_sample(x0_fn, x_T[1:2], abar, 3, generators([6]))
    assert all(torch.equal(a, b[0]) for a, b in zip(together, seen[1:]))
