"""The direct control of a conditional diffusion segmenter (after Öttl et al. 2024, "Analysing Diffusion
Segmentation for Medical Images", arXiv:2403.14440): the same network, conditioning and parameters, trained
to give the mask in one pass. A plugin declares it by registering `direct_control(spec)` beside `spec`; it
is served as "<name>:direct". No torch import here, so registering stays cheap.

What the declaring model provides: hyperparameters with `timesteps` (T, the diffusion's number of steps),
and a segmenter with `encode(images)` -> a condition and `network_output(x_t, t, condition)` -> (B, 1, H, W),
the network's raw output for the noisy-mask input x_t at integer timestep t (B,).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from segbench.errors import SegbenchError
from segbench.specs import SINGLE_STAGE, ModelSpec, Segmenter

DIRECT = "direct"  # the name's suffix: "diff-add:direct"
REFERENCE = "Öttl et al. 2024, Analysing Diffusion Segmentation for Medical Images (arXiv:2403.14440)"


def direct_timestep(params: Mapping[str, Any]) -> int:
    """The fixed timestep of the one pass: T - 1, the last of the diffusion's timesteps.

    At T - 1 the noisy mask carries almost no trace of the mask (abar_{T-1} ~ 4e-5 on the seed paper's linear
    schedule), so a zero input is what the network sees there on average: the mean of x_T ~ N(0, I), and of
    BerDiff's x_T ~ B(1/2) read as 2 x_T - 1. It is the timestep of ancestral sampling's first network evaluation,
    where the diffusion model reads the mask off the image alone; the control is that step trained to be the
    only one. At t = 0 the network would instead be built to refine an almost clean mask it is never given.
    Trained from scratch, the control's t only fixes the timestep embedding's constant input; the embedding
    stays, so the parameters are its diffusion model's.
    """
    return int(params["timesteps"]) - 1


@dataclass(frozen=True)
class DirectFactory:
    """A control's factory: the diffusion model's network, built by `diffusion` from the same
    hyperparameters, evaluated in one pass (picklable where `diffusion` is)."""

    diffusion: Callable[[dict[str, Any]], Segmenter]

    def __call__(self, params: dict[str, Any]) -> Segmenter:
        from segbench.controls.segmenter import DirectSegmenter

        return DirectSegmenter(self.diffusion(params), direct_timestep(params))


def _summary(model: str, params: Mapping[str, Any]) -> str:
    """`segbench info`'s line of `model`'s direct control."""
    t = direct_timestep(params)
    return (f"direct control of {model}: its network evaluated once, at the fixed timestep t = T-1 = {t} on a zero "
            "noisy-mask input; the output is the mask's logit (probability: its sigmoid), trained with BCE + soft Dice "
            f"like the U-Nets; of {model}'s diffusion settings only timesteps is used")


def _one_evaluation(params: Mapping[str, Any]) -> int:
    """Network evaluations per mask of any direct control: its one pass."""
    return 1


def direct_control(spec: ModelSpec) -> ModelSpec:
    """The spec of `spec`'s direct control, "<name>:direct": the same presets, schema and training settings
    (so the same optimiser and budget), its factory wrapping `spec.factory`'s network, 1 network evaluation
    per mask, the default (mean) fusion. `spec` must be a conditional diffusion segmenter trained in one
    stage (see the module's docstring for what its segmenter provides)."""
    if spec.prefix or spec.stages != SINGLE_STAGE:
        raise SegbenchError(f"model {spec.name!r}: a direct control needs a model of one name trained in one "
                            "stage on the labelled pairs")
    return replace(
        spec,
        name=f"{spec.name}:{DIRECT}",
        factory=DirectFactory(spec.factory),
        family="control",
        description=f"Direct control of {spec.name}: its network and parameters, trained to give the mask in one pass",
        reference=f"{REFERENCE}; network: {spec.reference}" if spec.reference else REFERENCE,
        summary=partial(_summary, spec.name),
        network_evaluations=_one_evaluation,
        upper_bound=False,
        fusion="mean",  # one deterministic pass: its paper samples no ensemble to fuse
        plugin="",
    )
