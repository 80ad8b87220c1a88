"""Hyperparameters of the unconditional X-ray DDPM and of the two segmenters built on it: presets,
validation, the decoder-block layout that feature extraction reads, and `segbench info`'s lines.

No torch import here, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from segbench import Preset, SegbenchError
from segbench.presets import SEED_PAPER_TRAINING
from segbench_backbone.ddpm_hyperparameters import check_schedule
from segbench_backbone.hyperparameters import BackboneHyperparameters, from_factory_input
from segbench_unconditional.blocks import ChosenBlocks, ScaleRange, choose_blocks, parse_block_choice

if TYPE_CHECKING:
    from typing_extensions import Self

ATTENTIONS = ("full", "linear")

# --- the unconditional X-ray DDPM ------------------------------------------------------------------

# The seed paper's X-ray DDPM (its Section 3, Figure 3): the 192-channel U-Net with channel_mult
# (1, 2, 3, 4), two ResBlocks per level, linear attention at 32x32, 16x16 and 8x8 (full attention in
# the middle block), 1000 steps, linear betas 1e-4..0.02, eps-prediction, DDIM 50 steps.
XRAY_DDPM_PAPER: dict[str, Any] = {
    "base_channels": 192,
    "channel_mult": (1, 2, 3, 4),
    "num_res_blocks": 2,
    "attention_resolutions": (32, 16, 8),
    "attention": "linear",
    "head_channels": 64,
    "norm_groups": 32,
    "dropout": 0.0,
    "timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "sampling_steps": 50,
    "clip_x0": True,  # synthesis clamps x0_hat to [-1, 1] (guided-diffusion's and lucidrains' clip_denoised)
    "gradient_checkpointing": False,
    "channels_last": False,
}

# CPU-sized: the backbone's small layout (base 16, mult (1, 2, 2), one ResBlock per level; 0.33 M
# parameters) with linear attention at 32x32 and 16x16 (cheap: O(L d^2)); the seed's schedule and
# sampler, unchanged. A training step at batch 16 takes 0.4 s on 2 cores (base 32: 1.4 s).
# channels_last, as the backbone's small preset (faster on 2 CPU cores).
XRAY_DDPM_SMALL: dict[str, Any] = {
    **XRAY_DDPM_PAPER,
    "base_channels": 16,
    "channel_mult": (1, 2, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (32, 16),
    "head_channels": 16,
    "norm_groups": 8,
    "sampling_steps": 20,
    "channels_last": True,
}

# For tests: 77 k parameters, no level attention (valid at any image size divisible by 4).
XRAY_DDPM_TINY: dict[str, Any] = {
    **XRAY_DDPM_SMALL,
    "base_channels": 8,
    "attention_resolutions": (),
    "head_channels": 8,
    "norm_groups": 4,
    "sampling_steps": 4,
    "channels_last": False,
}

XRAY_DDPM: dict[str, dict[str, Any]] = {"tiny": XRAY_DDPM_TINY, "small": XRAY_DDPM_SMALL, "paper": XRAY_DDPM_PAPER}

# Training of the DDPM stage. paper: the seed's protocol as every built-in model's paper preset
# (100 epochs at batch 512, lr 3e-3), with guided-diffusion's EMA; its budget is the stage's own (it
# sees no masks, so the 2,400-epoch infection layer of the segmenters does not apply). small: AdamW
# 1e-3 with the backbone's warm-up, batch 16, EMA 0.995, 1,200 steps: 0.40 s a step on 2 cores, so
# ~8 min, trained once per run and reused across label budgets; the loss falls from 0.51 to 0.03 and
# the samples are recognisable X-rays (benchmarks/unconditional_phantom.py). tiny: 24 steps, for tests.
DDPM_STAGE: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 24, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.02,
             "ema_decay": 0.0},
    "small": {"steps": 1200, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.02,
              "ema_decay": 0.995},
    "paper": {**SEED_PAPER_TRAINING, "weight_decay": 0.0, "ema_decay": 0.9999},
}


@dataclass(frozen=True)
class DDPMStageHyperparameters:
    """What a trained X-ray DDPM depends on, and so what the "ddpm" stage's stored result is named by: the
    NoiseUNet on one image channel and the noise schedule. Not how it samples: a field that changes the
    trained weights belongs here, one that does not in a subclass."""

    image_size: int
    base_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    attention: str
    head_channels: int
    norm_groups: int
    dropout: float
    timesteps: int
    beta_start: float
    beta_end: float
    gradient_checkpointing: bool
    channels_last: bool


@dataclass(frozen=True)
class XrayDDPMHyperparameters(DDPMStageHyperparameters):
    """The unconditional X-ray DDPM: its trained network and schedule, and DDIM synthesis."""

    sampling_steps: int
    clip_x0: bool

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        return from_factory_input(cls, values)

    def __post_init__(self) -> None:
        # The U-Net's checks are the backbone's: it validates the same fields for the conditional models
        # (its condition-encoder fields get neutral values: this model has no condition encoder).
        BackboneHyperparameters(
            image_size=self.image_size, base_channels=self.base_channels, channel_mult=self.channel_mult,
            num_res_blocks=self.num_res_blocks, attention_resolutions=self.attention_resolutions,
            head_channels=self.head_channels, norm_groups=self.norm_groups, dropout=self.dropout,
            rrdb_blocks=0, rrdb_nf=1, rrdb_gc=1, cond_channels=1,
            gradient_checkpointing=self.gradient_checkpointing, channels_last=self.channels_last,
        )
        if self.attention not in ATTENTIONS:
            raise SegbenchError(f"unknown attention {self.attention!r}; valid: {', '.join(ATTENTIONS)}")
        check_schedule(self)
        if self.sampling_steps > self.timesteps:
            raise SegbenchError(f"sampling_steps={self.sampling_steps} out of range for timesteps={self.timesteps}; "
                                f"valid: 1..{self.timesteps}")

    @property
    def decoder_blocks(self) -> tuple[tuple[int, int], ...]:
        """(channels, resolution) of each decoder stage's output, in order: per level from the deepest,
        num_res_blocks + 1 stages, the last of each level but the finest upsampling by 2 (NoiseUNet)."""
        blocks = []
        per_level = self.num_res_blocks + 1
        for level in reversed(range(len(self.channel_mult))):
            resolution = self.image_size // 2**level
            for i in range(per_level):
                upsampled = level > 0 and i == per_level - 1
                blocks.append((self.base_channels * self.channel_mult[level], resolution * (2 if upsampled else 1)))
        return tuple(blocks)

    def ddpm_line(self) -> str:
        """The DDPM part of `segbench info`'s line."""
        attention = ", ".join(f"{r}x{r}" for r in self.attention_resolutions) or "none"
        return (f"unconditional eps-DDPM of the images: U-Net base {self.base_channels}, mult "
                f"{tuple(self.channel_mult)}, {self.num_res_blocks} ResBlock(s)/level, {self.attention} attention at "
                f"{attention}; T={self.timesteps}, linear betas {self.beta_start:g}..{self.beta_end:g}; synthesis DDIM "
                f"{self.sampling_steps} steps")


# --- ddpm-features (Baranchuk et al. 2021) -------------------------------------------------------------

# Baranchuk et al.: t in {50, 150, 250}; guided-diffusion decoder blocks {5, 6, 7, 8, 12} of 18 (256 px,
# 3 blocks per level, levels 8..256), whose outputs are 32, 32, 32, 64 and 128 px: 1/8 to 1/2 of the input;
# 10 MLPs Linear(d,128)-ReLU-BN-Linear(128,32)-ReLU-BN-Linear(32,C); Adam 1e-3, batch 64 pixels; prediction
# by majority vote (torch.mode). The blocks are chosen by scale, so the same coarse, semantic levels are
# read at any image size and depth: every decoder block at 1/8 to 1/2 (the paper took 5 of the 9 at those
# scales). On the seed U-Net at 64 px (levels 8..64) that is blocks 0-7: the 8x8 level's three blocks (the
# last upsampling to 16; 768 channels), the 16x16 level's (576) and the first two at 32x32 (384): 4,800
# features per timestep, 14,400 per pixel (the paper's 8,448 at 256 px).
FEATURES_PAPER: dict[str, Any] = {
    "feature_timesteps": (50, 150, 250),
    "feature_blocks": "1/8-1/2",
    "feature_noise_seed": 0,
    "ensemble_size": 10,
    "ensemble_fusion": "vote",
    "mlp_widths": (128, 32),
    "pixels_per_step": 64,
}
# The small U-Net (levels 16, 32, 64 at 64 px) has no 1/8 level: its coarsest, 1/4, stands in; blocks 0-2
# (16x16, the one upsampling to 32, the first at 32x32): 96 features per timestep, 288 per pixel. 1,024
# pixels per MLP and step (a batch of 64 would need 16x the U-Net passes for the same pixels seen; the
# features of a step's images are computed once).
FEATURES_SMALL: dict[str, Any] = {**FEATURES_PAPER, "pixels_per_step": 1024}
FEATURES_TINY: dict[str, Any] = {**FEATURES_SMALL, "ensemble_size": 2, "mlp_widths": (16, 8), "pixels_per_step": 256}
FEATURES: dict[str, dict[str, Any]] = {"tiny": FEATURES_TINY, "small": FEATURES_SMALL, "paper": FEATURES_PAPER}
# How the MLPs' outputs become one probability map and its uncertainty (ddpm_features.py): the reference's
# majority vote with its Jensen-Shannon uncertainty, or the mean probability with its std.
ENSEMBLE_FUSIONS = ("vote", "mean")

# Training of the MLP stage. paper: Adam 1e-3 without decay (weight_decay 0, no warm-up), batch 64 pixels
# per MLP, no gradient clipping; 16,000 steps are 5 epochs of the pixels of 50 labelled 64x64 images (Baranchuk et al. stop
# early from epoch 4); the engine's cosine decay stands in for the early stop. small: 600 steps of 1,024
# pixels from 8 images. tiny: 12 steps.
MLP_STAGE: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 12, "batch_size": 4, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.0, "grad_clip": 0.0,
             "ema_decay": 0.0},
    "small": {"steps": 600, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.0, "grad_clip": 0.0,
              "ema_decay": 0.0},
    "paper": {"steps": 16000, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.0, "grad_clip": 0.0,
              "ema_decay": 0.0},
}


@dataclass(frozen=True)
class FeaturesHyperparameters(XrayDDPMHyperparameters):
    """ddpm-features: the X-ray DDPM, which of its decoder activations make a pixel's features (`feature_blocks`:
    a scale range or indices, see blocks.py), and the ensemble of pixel MLPs reading them and its fusion."""

    feature_timesteps: tuple[int, ...]
    feature_blocks: str
    feature_noise_seed: int
    ensemble_size: int
    ensemble_fusion: str
    mlp_widths: tuple[int, ...]
    pixels_per_step: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.feature_timesteps or not all(0 <= t < self.timesteps for t in self.feature_timesteps):
            raise SegbenchError(f"feature_timesteps={self.feature_timesteps}: need one or more steps in "
                                f"0..{self.timesteps - 1}")
        self.chosen_blocks  # parses and checks feature_blocks against this U-Net
        if self.ensemble_fusion not in ENSEMBLE_FUSIONS:
            raise SegbenchError(f"unknown ensemble_fusion {self.ensemble_fusion!r}; valid: {', '.join(ENSEMBLE_FUSIONS)}")
        if self.ensemble_size < 1 or self.pixels_per_step < 2:
            raise SegbenchError(f"ensemble_size={self.ensemble_size} must be >= 1 and pixels_per_step="
                                f"{self.pixels_per_step} >= 2 (BatchNorm)")
        if not self.mlp_widths or min(self.mlp_widths) < 1:
            raise SegbenchError(f"mlp_widths={self.mlp_widths} must be a non-empty list of positive integers")

    @property
    def block_scales(self) -> tuple[Fraction, ...]:
        """Each decoder block's output size relative to the input (1/8, ..., 1), in decoder order."""
        return tuple(Fraction(resolution, self.image_size) for _, resolution in self.decoder_blocks)

    @property
    def chosen_blocks(self) -> ChosenBlocks:
        """The decoder blocks `feature_blocks` selects on this U-Net."""
        return choose_blocks(parse_block_choice(self.feature_blocks), self.block_scales)

    @property
    def features_per_pixel(self) -> int:
        """Length of a pixel's feature vector: the chosen blocks' channels, once per timestep."""
        blocks = self.decoder_blocks
        return len(self.feature_timesteps) * sum(blocks[b][0] for b in self.chosen_blocks.indices)

    def blocks_text(self) -> str:
        """The chosen blocks for `segbench info`: how they were chosen, each with its channels and scale."""
        choice, chosen = parse_block_choice(self.feature_blocks), self.chosen_blocks
        if isinstance(choice, ScaleRange):
            how = (f"every decoder block at {choice} of the input (the paper's, blocks 5-8 and 12 of guided-diffusion's "
                   f"18 at 256 px, are at 1/8-1/2)")
            if chosen.stand_in is not None:
                how += f"; this U-Net has no {choice.coarsest} level: its coarsest, {chosen.stand_in}, stands in"
        else:
            how = "decoder blocks chosen by index"
        channels, scales = self.decoder_blocks, self.block_scales
        listed = ", ".join(f"{b} ({channels[b][0]} ch, {scales[b]})" for b in chosen.indices)
        return f"{how}: blocks {listed} of {len(channels)}"

    def summary(self) -> str:
        widths = "-".join(map(str, (self.features_per_pixel, *self.mlp_widths, 1)))
        fusion = ("majority vote (a tie is background, as torch.mode; probability = the fraction of foreground "
                  "votes), uncertainty the members' Jensen-Shannon divergence H(mean p) - mean H(p) in nats (the "
                  "reference's js)" if self.ensemble_fusion == "vote" else "mean probability, uncertainty their std")
        return (f"{self.ddpm_line()}. Features (Baranchuk et al.): {self.blocks_text()}, bilinearly upsampled, at "
                f"t={', '.join(map(str, self.feature_timesteps))} with one shared noise: {self.features_per_pixel} per "
                f"pixel; {self.ensemble_size} pixel MLPs {widths}, {fusion}; {len(self.feature_timesteps)} U-Net "
                f"evaluations per mask")


# --- anomaly-ddpm: the partial-diffusion residual baseline (Pinaya et al. 2022, AnoDDPM, AutoDDPM) -----

# AutoDDPM (T = 1000): one reconstruction from t = 200, threshold for <= 5 % false positives on healthy
# data. DDIM from t = 200 at the seed's DDIM spacing (50 steps over 1000: every 20) is 10 steps (AutoDDPM
# itself steps back ancestrally: reconstruction_sampler="ddpm", 201 steps). Gaussian noise; noise="simplex"
# is AnoDDPM's: nu = 2^-6 per pixel, 6 octaves, decay 0.8 at 256 px. Relative to the image its first octave
# has 4 lattice cells across and its finest cells are 2 px at 256 px; at 64 px the same cells are 16, 8, 4,
# 2, 1 and 0.5 px, so the two below 2 px (which downsampling the paper's noise would average away) are left out.
ANOMALY_PAPER: dict[str, Any] = {
    "start_steps": (200,),
    "reconstructions": 1,
    "reconstruction_sampler": "ddim",
    "reconstruction_steps": 10,
    "smoothing_sigma": 1.0,
    "false_positive_rate": 0.05,
    "noise": "gaussian",
    "simplex_octaves": 4,
    "simplex_persistence": 0.8,
    "simplex_frequency": 4.0,
}
# small: 4 reconstructions from independent noise draws, their residuals averaged. The residual of one
# reconstruction is partly the draw's (which anatomy the DDPM restores from x_t varies with the noise); the
# average lowers that variance on healthy pixels, and with it the 95th-percentile threshold, while the
# residual of what the healthy model cannot restore stays (40 U-Net evaluations per mask instead of 10).
ANOMALY_SMALL: dict[str, Any] = {**ANOMALY_PAPER, "reconstructions": 4}
ANOMALY_TINY: dict[str, Any] = {**ANOMALY_PAPER, "start_steps": (100, 200), "reconstructions": 2,
                                "reconstruction_steps": 2}
ANOMALY: dict[str, dict[str, Any]] = {"tiny": ANOMALY_TINY, "small": ANOMALY_SMALL, "paper": ANOMALY_PAPER}
NOISES = ("gaussian", "simplex")
RECONSTRUCTION_SAMPLERS = {"ddim": "DDIM", "ddpm": "ancestral DDPM"}


@dataclass(frozen=True)
class AnomalyDDPMStageHyperparameters(DDPMStageHyperparameters):
    """What anomaly-ddpm's trained DDPM depends on: the X-ray DDPM's fields and the noise it is trained with
    (AnoDDPM trains on simplex noise), so another noise names another stored "ddpm" stage."""

    noise: str
    simplex_octaves: int
    simplex_persistence: float
    simplex_frequency: float


@dataclass(frozen=True)
class AnomalyHyperparameters(XrayDDPMHyperparameters, AnomalyDDPMStageHyperparameters):
    """anomaly-ddpm: the X-ray DDPM (trained on healthy images with `noise`), how an image is reconstructed,
    how the residual is smoothed, and the healthy false-positive rate the calibration fixes at probability 0.5.

    noise: "gaussian" or "simplex" (AnoDDPM), for training, the partial noising and ancestral steps; simplex:
    `simplex_octaves` octaves, amplitude `simplex_persistence`^k, the first at `simplex_frequency` lattice
    cells per image width, normalised per sample (simplex.py). reconstruction_sampler: "ddim" (deterministic,
    `reconstruction_steps` steps) or "ddpm" (ancestral, every step from the start step to 0).
    """

    start_steps: tuple[int, ...]
    reconstructions: int
    reconstruction_sampler: str
    reconstruction_steps: int
    smoothing_sigma: float
    false_positive_rate: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.start_steps or not all(1 <= t < self.timesteps for t in self.start_steps):
            raise SegbenchError(f"start_steps={self.start_steps}: need one or more steps in 1..{self.timesteps - 1}")
        if self.reconstructions < 1:
            raise SegbenchError(f"reconstructions={self.reconstructions} must be >= 1 (noise draws per start step)")
        if self.reconstruction_sampler not in RECONSTRUCTION_SAMPLERS:
            raise SegbenchError(f"unknown reconstruction_sampler {self.reconstruction_sampler!r}; valid: "
                                f"{', '.join(RECONSTRUCTION_SAMPLERS)}")
        if not 1 <= self.reconstruction_steps <= min(self.start_steps) + 1:
            raise SegbenchError(f"reconstruction_steps={self.reconstruction_steps} out of range; valid: "
                                f"1..{min(self.start_steps) + 1} (at most one per timestep of the shortest start)")
        if not 0 <= self.smoothing_sigma <= self.image_size / 4:
            raise SegbenchError(f"smoothing_sigma={self.smoothing_sigma} must be in [0, {self.image_size / 4:g}] pixels")
        if not 0 < self.false_positive_rate < 0.5:
            raise SegbenchError(f"false_positive_rate={self.false_positive_rate} must be in (0, 0.5)")
        if self.noise not in NOISES:
            raise SegbenchError(f"unknown noise {self.noise!r}; valid: {', '.join(NOISES)}")
        if not (self.simplex_octaves >= 1 and 0 < self.simplex_persistence <= 1 and self.simplex_frequency > 0):
            raise SegbenchError(f"simplex_octaves={self.simplex_octaves}, simplex_persistence="
                                f"{self.simplex_persistence}, simplex_frequency={self.simplex_frequency}: need >= 1 "
                                "octaves, persistence in (0, 1] and a positive frequency")
        if self.noise == "simplex" and self.simplex_frequency * 2 ** (self.simplex_octaves - 1) > self.image_size:
            raise SegbenchError(f"simplex_octaves={self.simplex_octaves} at simplex_frequency="
                                f"{self.simplex_frequency:g}: the finest octave's lattice cells are below a pixel at "
                                f"{self.image_size} px")

    def noise_text(self) -> str:
        """The noise, for `segbench info`."""
        if self.noise == "gaussian":
            return "Gaussian noise (AnoDDPM's simplex noise with noise=simplex)"
        cells = ", ".join(f"{self.image_size / (self.simplex_frequency * 2**k):g}"
                          for k in range(self.simplex_octaves))
        amplitudes = ", ".join(f"{self.simplex_persistence**k:g}" for k in range(self.simplex_octaves))
        return (f"simplex noise (AnoDDPM), also the DDPM's training noise: {self.simplex_octaves} octaves of lattice "
                f"cells {cells} px, amplitudes {amplitudes}, normalised per sample to mean 0, variance 1")

    def summary(self) -> str:
        starts = ", ".join(map(str, self.start_steps))
        sampler = RECONSTRUCTION_SAMPLERS[self.reconstruction_sampler]
        steps = (f"{self.reconstruction_steps} steps" if self.reconstruction_sampler == "ddim"
                 else "every step from the start")
        return (f"{self.ddpm_line()}; trained on healthy images only. Anomaly map: the partial-diffusion residual "
                f"baseline of Pinaya et al., AnoDDPM and AutoDDPM: noised to t={starts} ({self.reconstructions} noise "
                f"draw(s) each) with {self.noise_text()}, {sampler} back ({steps}), |image - reconstruction| "
                f"averaged over reconstructions, Gaussian sigma {self.smoothing_sigma:g} px; probability 0.5 at the "
                f"healthy validation pixels' {100 * (1 - self.false_positive_rate):g}th percentile (false-positive "
                f"rate {self.false_positive_rate:g}); {anomaly_evaluations(vars(self))} U-Net evaluations per mask. "
                f"Not included: Pinaya et al.'s VQ-VAE latent model and masked inpainting, AutoDDPM's "
                f"mask-stitch-resample")


# --- presets, summaries and costs for the plugin -----------------------------------------------------


def _presets(head: Mapping[str, dict[str, Any]], stages: Mapping[str, Mapping[str, dict[str, Any]]]) -> dict[str, Preset]:
    return {name: Preset({**XRAY_DDPM[name], **head[name]}, {}, {stage: dict(settings[name])
                                                              for stage, settings in stages.items()})
            for name in ("tiny", "small", "paper")}


FEATURES_PRESETS = _presets(FEATURES, {"ddpm": DDPM_STAGE, "mlp": MLP_STAGE})
ANOMALY_PRESETS = _presets(ANOMALY, {"ddpm": DDPM_STAGE, "calibration": {name: {} for name in XRAY_DDPM}})


def features_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for ddpm-features."""
    return FeaturesHyperparameters.from_mapping({"image_size": 64, **params}).summary()


def anomaly_summary(params: Mapping[str, Any]) -> str:
    """`segbench info`'s line for anomaly-ddpm."""
    return AnomalyHyperparameters.from_mapping({"image_size": 64, **params}).summary()


def features_evaluations(params: Mapping[str, Any]) -> int:
    """U-Net forward passes per predicted mask: one per feature timestep (the MLPs are not counted)."""
    return len(params["feature_timesteps"])


def anomaly_evaluations(params: Mapping[str, Any]) -> int:
    """U-Net forward passes per predicted mask: the steps of every reconstruction (DDIM: reconstruction_steps;
    ancestral: t + 1 from start step t)."""
    if params["reconstruction_sampler"] == "ddpm":
        return int(params["reconstructions"]) * sum(t + 1 for t in params["start_steps"])
    return len(params["start_steps"]) * int(params["reconstructions"]) * int(params["reconstruction_steps"])
