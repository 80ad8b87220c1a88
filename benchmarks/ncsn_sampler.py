"""Annealed Langevin settings on a trained NCSN, at equal budgets of network evaluations.

    python benchmarks/ncsn_sampler.py RUN_DIR [--model ncsn-add] [--images 64]
        [--grids 20:2,40:1,20:1,80:1] [--betas 0.5,1,1.5]     # results/ncsn_sampler-<RUN_DIR name>.json

RUN_DIR is a `segbench run` directory that trained the NCSN model. Each grid L:T
samples its test images with L geometric levels from sigma_1 to sigma_L (levels the
network was not trained on are between its own: the noise label is continuous) and
T Langevin steps per level, with beta = alpha_i / sigma_i^2 (the preset's is
eps / sigma_L^2 = 1: each step goes half-way to the denoised mask). Reported per
setting: per-image mean Dice and the predicted area over the true area. For the
preset's own sampler it also follows the trajectory: at the start of each level,
the distance of x from the network's denoised mask in units of sigma_i (1 if x
carried exactly the level's noise) and the Dice and area ratio of that denoised mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _common import write_json
from score_formulations import whole_test_split
from segbench import protocol
from segbench.plan.run_plan import THRESHOLD
from segbench.noise import randn_per_sample, sample_generators
from segbench.plugins import load_plugins
from segbench.results.trained import load_trained
from segbench.specs import MetricSpec
from segbench_score.samplers import annealed_langevin
from segbench_score.schedules import geometric_sigmas


def dice_and_area(x: torch.Tensor, masks: torch.Tensor, ids: list[str], dice_metric: MetricSpec,
                  run_seed: int) -> tuple[float, float]:
    """Per-image mean Dice of the mask x_0 as `segbench run` scores it, and predicted / true foreground."""
    scores = protocol.score("x0", ids, ((x + 1) / 2).clamp(0, 1), masks, THRESHOLD, {"dice": dice_metric},
                            protocol.bootstrap_seed(run_seed))
    tp, fp, fn = (torch.tensor(int(scores.per_image[column].sum())) for column in ("tp", "fp", "fn"))
    return round(scores.by_metric["dice"]["mean"], 4), round(float((tp + fp) / (tp + fn)), 3)  # float32, as before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", default="ncsn-add")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--grids", default="20:2,40:1,20:1,80:1")
    parser.add_argument("--betas", default="0.5,1,1.5")
    args = parser.parse_args()
    registry = load_plugins()
    model, _, record = load_trained(args.run_dir, args.model, registry)
    dice_metric, run_seed = registry.metric("dice"), record.plan.seed
    test = whole_test_split(args.run_dir).subset(np.arange(args.images))
    images, masks = test.tensors()
    c = model.hparams
    generators = lambda: sample_generators(torch.arange(len(images)))  # noqa: E731
    rows: list[dict[str, Any]] = []
    with torch.inference_mode():
        condition = model.encode(images)

        def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return model.score(x, t, condition)

        def denoised(x: torch.Tensor, sigma: float) -> torch.Tensor:
            return x + sigma**2 * score(x, torch.full((len(x),), sigma))

        settings = [(g, 1.0) for g in args.grids.split(",")] + [("20:2", float(b)) for b in args.betas.split(",")]
        for grid, beta in dict.fromkeys(settings):
            levels, steps = map(int, grid.split(":"))
            sigmas = geometric_sigmas(c.sigma_max, c.sigma_min, levels).tolist()
            g = generators()
            x = annealed_langevin(score, c.sigma_max * randn_per_sample(images.shape[1:], g, images.device), sigmas,
                                  steps, beta * c.sigma_min**2, g)
            dice, area = dice_and_area(x, masks, test.ids, dice_metric, run_seed)
            rows.append({"levels": levels, "steps_per_level": steps, "beta": beta, "nfe": levels * steps + 1,
                         "dice": dice, "area_ratio": area})
            print(rows[-1], flush=True)
        # the preset's sampler, level by level (annealed_langevin's loop, with a look at x on entry)
        trajectory = []
        g = generators()
        x = c.sigma_max * randn_per_sample(images.shape[1:], g, images.device)
        for sigma in model.sigmas.tolist():
            d = denoised(x, sigma)
            dice, area = dice_and_area(d, masks, test.ids, dice_metric, run_seed)
            trajectory.append({"sigma": round(sigma, 3), "noise_over_sigma": round(float((x - d).std() / sigma), 3),
                               "denoised_dice": dice, "denoised_area_ratio": area})
            print(trajectory[-1], flush=True)
            x = annealed_langevin(score, x, [sigma], c.steps_per_level, c.step_size * (sigma / c.sigma_min) ** 2,
                                  g, denoise=False)
    write_json(f"ncsn_sampler-{args.run_dir.name}", {"command": "python benchmarks/ncsn_sampler.py " + " ".join(
        [str(args.run_dir), "--model", args.model, "--images", str(args.images), "--grids", args.grids, "--betas", args.betas]),
        "images": len(images), "settings": rows, "trajectory": trajectory})


if __name__ == "__main__":
    main()
