"""The seed paper's unconditional X-ray DDPM as a reusable module: an eps-predicting NoiseUNet on the
image alone (Ho et al. 2020), its training loss, DDIM synthesis and partial-noise reconstruction (DDIM or
ancestral, Gaussian noise or another) with per-sample generators, and the decoder activations that feature
extraction reads.

Images in [0, 1] are diffused as x_0 = 2 image - 1 in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segbench.noise import randn_per_sample, sample_generators
from segbench_backbone.samplers import EpsFn, ddim_sample, ddim_step, ddpm_step
from segbench_backbone.schedules import alphas_cumprod, linear_betas, q_sample
from segbench_backbone.unet import NoiseUNet
from segbench_unconditional.hyperparameters import XrayDDPMHyperparameters

# Noise per sample, as `randn_per_sample`: (shape, one generator per sample, device) -> (B, *shape)
NoiseDraw = Callable[[Sequence[int], Sequence[torch.Generator], torch.device], Tensor]


def partial_ddim_timesteps(t_start: int, steps: int) -> list[int]:
    """Descending timesteps of a DDIM run that starts at t_start: `steps` values evenly spaced from
    t_start down (200, 180, ..., 20 for 200 and 10); the run's last update goes to abar = 1."""
    return [round(t_start * (steps - i) / steps) for i in range(steps)]


def ddim_from(eps_fn, x_t: Tensor, alphas_cumprod: Tensor, timesteps: Sequence[int], clip_x0: bool = False) -> Tensor:
    """Deterministic DDIM (eta = 0, DDIM Eq. 12) from x_t at timesteps[0] through `timesteps` to abar = 1;
    returns the final predicted x_0 (B, ...). The backbone's `ddim_step` does each update."""
    one = alphas_cumprod.new_tensor(1.0)
    x = x_t
    for i, t in enumerate(timesteps):
        previous = alphas_cumprod[timesteps[i + 1]] if i + 1 < len(timesteps) else one
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x = ddim_step(eps, x, alphas_cumprod[t], previous, clip_x0=clip_x0)
    return x


def ddpm_from(eps_fn: EpsFn, x_t: Tensor, alphas_cumprod: Tensor, t_start: int, noise: Callable[[], Tensor],
              clip_x0: bool = False) -> Tensor:
    """Ancestral DDPM (Ho et al. Algorithm 2) from x_t at t_start through every step to x_0 (B, ...); each
    step t > 0 adds `noise()` (B, ...), drawn after its network evaluation. The backbone's `ddpm_step`
    does each update."""
    x = x_t
    for t in range(t_start, -1, -1):
        eps = eps_fn(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
        x = ddpm_step(eps, x, t, alphas_cumprod, noise() if t > 0 else None, clip_x0)
    return x


class XrayDDPM(nn.Module):
    """eps_theta(x_t, t) on single-channel images, with the schedule it was trained on."""

    def __init__(self, hparams: XrayDDPMHyperparameters) -> None:
        super().__init__()
        self.hparams = hparams
        self.unet = NoiseUNet.of(hparams, 1, hparams.attention)
        if hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        betas = linear_betas(hparams.timesteps, hparams.beta_start, hparams.beta_end)
        # derived from the hyperparameters, so not saved in checkpoints
        self.register_buffer("alphas_cumprod", alphas_cumprod(betas), persistent=False)

    def eps(self, x_t: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t): x_t (B, 1, S, S), t int64 (B,) -> float32 (B, 1, S, S), whatever precision runs."""
        return self.unet(x_t, t).float()

    def loss(self, images: Tensor, noise_like: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """L_simple = E ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)||^2 (Ho et al. Eq. 14).

        images (B, 1, S, S) in [0, 1]; t ~ U{0..T-1}, then eps = noise_like(x_0) (None: N(0, I)), from the
        global torch RNG, which the engine seeds.
        """
        x0 = images * 2 - 1
        t = torch.randint(0, self.hparams.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0) if noise_like is None else noise_like(x0)
        return F.mse_loss(self.eps(q_sample(x0, t, noise, self.alphas_cumprod), t), noise)

    @torch.no_grad()
    def synthesize(self, seeds: Tensor) -> Tensor:
        """One unconditional DDIM sample per seed: float32 (B, 1, S, S) in [0, 1].

        x_T ~ N(0, I) from a generator seeded with seeds[i] (eta = 0 draws nothing else), `sampling_steps`
        DDIM steps (DDIM Eq. 12) with x0_hat clamped to [-1, 1] when clip_x0.
        """
        device = self.alphas_cumprod.device
        size = self.hparams.image_size
        x_T = randn_per_sample((1, size, size), sample_generators(seeds), device)
        x0 = ddim_sample(self.eps, x_T, self.alphas_cumprod, self.hparams.sampling_steps, 0.0, None, self.hparams.clip_x0)
        return ((x0 + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def reconstruct(self, images: Tensor, t_start: int, steps: int, generators: Sequence[torch.Generator],
                    sampler: str = "ddim", draw: NoiseDraw = randn_per_sample) -> Tensor:
        """Partial diffusion and back (Pinaya et al. 2022; AnoDDPM, Wyatt et al. 2022): x_t ~ q(x_t | x_0) at
        t_start with noise `draw`n from generators[i] (Ho et al. Eq. 4), then back to x_0 with x0_hat clamped
        to [-1, 1]: sampler "ddim", `steps` deterministic DDIM steps; "ddpm", every ancestral step, each
        t > 0 adding another draw.

        images (B, 1, S, S) in [0, 1] -> reconstructions (B, 1, S, S) in [0, 1]; DDIM advances each
        generator by one image of noise, ancestral DDPM by t_start + 1.
        """
        x0 = images * 2 - 1
        noise = draw(x0.shape[1:], generators, x0.device)
        t = torch.full((x0.shape[0],), t_start, dtype=torch.long, device=x0.device)
        x_t = q_sample(x0, t, noise, self.alphas_cumprod)
        if sampler == "ddpm":
            x = ddpm_from(self.eps, x_t, self.alphas_cumprod, t_start,
                          lambda: draw(x0.shape[1:], generators, x0.device), clip_x0=True)
        else:
            x = ddim_from(self.eps, x_t, self.alphas_cumprod, partial_ddim_timesteps(t_start, steps), clip_x0=True)
        return ((x + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def decoder_activations(self, x_t: Tensor, t: Tensor, blocks: Sequence[int]) -> list[Tensor]:
        """Outputs of the U-Net's decoder stages `blocks` (Baranchuk et al.'s output_blocks) for one forward
        pass at x_t (B, 1, S, S), t (B,): a list of float32 (B, C_b, S_b, S_b), in the order of `blocks`."""
        saved: dict[int, Tensor] = {}
        hooks = [self.unet.decoder[b].register_forward_hook(
                     lambda module, inputs, output, b=b: saved.__setitem__(b, output.float()))
                 for b in blocks]
        try:
            self.unet(x_t, t)
        finally:
            for hook in hooks:
                hook.remove()
        return [saved[b] for b in blocks]
