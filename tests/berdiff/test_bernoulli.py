"""BerDiff's Bernoulli diffusion against brute force: the chain of Eq. 1 enumerated for T <= 4 gives Eq. 2's
marginal and, by Bayes' rule, Eq. 4's posterior; the DDIM-like step keeps the marginal; the KL is the sum it
stands for; both samplers equal their chain redone step by step from the paper's formulas on the same
per-sample draws."""

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
    rand_per_sample,
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
            sigma = (1 - abar_s.item()) / (1 - abar[t - 1].item())
            assert p == pytest.approx(sigma * x_t + (1 - sigma) * x0.item(), abs=1e-12)  # the constant term is 0


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
    floor = torch.tensor([1e-6, 1 - 1e-6])
    p, q = torch.tensor([0.7, 0.2]), torch.tensor([0.0, 1.0])
    assert torch.allclose(bernoulli_kl(p, q), bernoulli_kl(p, floor), rtol=1e-12)  # q kept off 0 and 1


def generators(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def recording_x0_fn(seen: list):
    """x0_hat = sigmoid(3 w (2 x_t - 1) + b - t / 10) with fixed per-pixel w, b: a function of x_t and t (so a
    sampler that feeds the network the wrong state or timestep changes it), in (0, 1). Records (x_t, t)."""
    w, b = torch.rand(2, 1, 1, 8, 8, generator=torch.Generator().manual_seed(3))

    def x0_fn(x_t, t):
        seen.append((x_t.clone(), t.clone()))
        return torch.sigmoid(3 * w * (2 * x_t - 1) + b - t.view(-1, 1, 1, 1) / 10)
    return x0_fn


def draw(probability: torch.Tensor, gens: list) -> torch.Tensor:
    """Sample i's B(probability[i]) from uniform draws of generators[i] (the samplers' per-sample protocol)."""
    u = torch.stack([torch.rand(probability.shape[1:], generator=g) for g in gens])
    return (u < probability).double()


def forward_products(betas: torch.Tensor) -> list[float]:
    """abar_t = prod_{s <= t} (1 - beta_s) for the paper's t = 0..T (abar_0 = 1), by a plain product."""
    out = [1.0]
    for beta in betas.tolist():
        out.append(out[-1] * (1 - beta))
    return out


def test_ancestral_sampler_is_the_reverse_chain_of_bayes_posteriors():
    """Every step x_{t-1} ~ B(P(x_{t-1} = 1 | x_t, x0_hat)), the posterior by Bayes' rule from the one-step
    likelihood q(x_t | x_{t-1}) (Eq. 1) and the prior q(x_{t-1} | x0_hat) (Eq. 2), redone here step by step."""
    T = 6
    betas = schedule(T, 21)
    abar = forward_products(betas)
    x_T = draw(torch.full((3, 1, 8, 8), 0.5), generators([9, 8, 7]))
    seen = []
    out = ancestral_sample(recording_x0_fn(seen), x_T, 1 - betas, torch.cumprod(1 - betas, 0), generators([1, 2, 3]))
    assert [int(t[0]) for _, t in seen] == list(range(T - 1, -1, -1))  # index t - 1 holds the paper's t
    expected_fn, gens, x = recording_x0_fn([]), generators([1, 2, 3]), x_T
    for t in range(T, 0, -1):  # the paper's t
        assert torch.equal(seen[T - t][0], x)
        x0_hat = expected_fn(x, torch.full((3,), t - 1))
        if t == 1:
            assert torch.equal(out, x0_hat)
            break
        stay = 1 - betas[t - 1] / 2  # P(x_t = x_{t-1}) under Eq. 1
        prior_one = abar[t - 1] * x0_hat + (1 - abar[t - 1]) / 2  # q(x_{t-1} = 1 | x0_hat)
        joint_one = torch.where(x == 1, stay, 1 - stay) * prior_one  # q(x_t | x_{t-1} = 1) q(x_{t-1} = 1 | x0_hat)
        joint_zero = torch.where(x == 0, stay, 1 - stay) * (1 - prior_one)
        x = draw(joint_one / (joint_one + joint_zero), gens)


@pytest.mark.parametrize("steps, visited", [(5, [16, 12, 8, 4, 0]), (3, [12, 6, 0])])
def test_ddim_sampler_steps_between_its_timesteps_by_the_marginal_preserving_mixture(steps, visited):
    """x_s ~ B(sigma x_t + (1 - sigma) x0_hat), sigma = (1 - abar_s) / (1 - abar_t): the DDIM-like step with its
    constant term zeroed, written in the reduced form (its coefficients sum to 1), over the leading timesteps."""
    T = 20
    betas = 0.02 + 0.1 * torch.rand(T, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    abar = forward_products(betas)
    x_T = draw(torch.full((3, 1, 8, 8), 0.5), generators([9, 8, 7]))
    seen = []
    out = ddim_sample(recording_x0_fn(seen), x_T, torch.cumprod(1 - betas, 0), steps, generators([1, 2, 3]))
    assert [int(t[0]) for _, t in seen] == visited
    expected_fn, gens, x = recording_x0_fn([]), generators([1, 2, 3]), x_T
    for i, index in enumerate(visited):
        assert torch.equal(seen[i][0], x)
        x0_hat = expected_fn(x, torch.full((3,), index))
        if index == 0:
            assert torch.equal(out, x0_hat)
            break
        abar_t, abar_s = abar[index + 1], abar[visited[i + 1] + 1]  # 0-based index t holds the paper's t + 1
        sigma = (1 - abar_s) / (1 - abar_t)
        x = draw(sigma * x + (1 - sigma) * x0_hat, gens)


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


def test_uniform_draws_are_each_samples_own_generators_on_the_requested_device():
    expected = torch.stack([torch.rand(2, 3, generator=g) for g in generators([4, 5])])
    assert torch.equal(rand_per_sample((2, 3), generators([4, 5])), expected)
    assert rand_per_sample((2, 3), generators([4, 5]), "meta").device.type == "meta"


@pytest.mark.parametrize("sample", ["ddim", "ancestral"])
def test_samplers_call_the_network_with_int64_timesteps_per_sample_on_the_masks_device(sample):
    """The meta device stands in for an accelerator: a draw or timestep left on the CPU fails there."""
    betas = schedule(4, 0).to(torch.float32)
    calls = []

    def x0_fn(x_t, t):
        calls.append((t.dtype, tuple(t.shape), t.device.type, x_t.device.type))
        return torch.full_like(x_t, 0.5)

    x_T = torch.zeros(3, 1, 4, 4, device="meta")
    gens = generators([1, 2, 3])
    if sample == "ddim":
        out = ddim_sample(x0_fn, x_T, torch.cumprod(1 - betas, 0), 2, gens)
    else:
        out = ancestral_sample(x0_fn, x_T, 1 - betas, torch.cumprod(1 - betas, 0), gens)
    assert out.device.type == "meta" and calls
    assert set(calls) == {(torch.int64, (3,), "meta", "meta")}


def test_samplers_refuse_a_schedule_without_timesteps():
    x_T, gens = torch.zeros(1, 1, 2, 2), generators([0])
    with pytest.raises(ValueError, match="^ancestral_sample needs at least one timestep$"):
        ancestral_sample(lambda x, t: x, x_T, torch.ones(0), torch.ones(0), gens)
    with pytest.raises(ValueError, match="^ddim_sample needs steps >= 1$"):  # steps = 0 divides by zero first
        ddim_sample(lambda x, t: x, x_T, torch.ones(4), -1, gens)
