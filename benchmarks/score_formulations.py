"""Diffusion (DDIM), NCSN and score-SDE segmenters side by side at an equal budget of network evaluations.

    python benchmarks/score_formulations.py [--tasks lung,infection] [--models diff-add,ncsn-add,sde-add]
    # results/score_formulations-<task>.json

Runs `segbench run` in the small preset (fresh cache) with every model at its
default sampler, which in `small` costs about 10 U-Net evaluations per mask
(DDIM 10 steps: 10; annealed Langevin 3 levels x 3 steps + denoising: 10;
probability-flow ODE 5 Heun steps, the last Euler: 9), and records per-image
mean Dice with its CI, pooled Dice, training seconds and masks/s per model.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import main_job
from _common import write_json
from segbench.plugins import load_plugins


def network_evaluations(name: str) -> int:
    """Per mask, at the small preset: from the model's config."""
    params = {**load_plugins().model(name).hyperparameters("small"), "image_size": 64}
    if name.startswith("diff-"):
        return params["timesteps"] if params["sampler"] == "ddpm" else params["sampling_steps"]
    from segbench_score.config import NCSNConfig, SDEConfig

    return (NCSNConfig if name.startswith("ncsn-") else SDEConfig).from_mapping(params).network_evaluations


def run_task(task: str, models: str, workdir: Path) -> dict[str, object]:
    row = main_job.run_task(task, models, workdir, "--preset", "small")
    return {**row, "network_evaluations_per_mask": {m: network_evaluations(m) for m in row["dice"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="lung,infection")
    parser.add_argument("--models", default="diff-add,ncsn-add,sde-add")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            row = run_task(task, args.models, Path(tmp))
            print(row, flush=True)
            write_json(f"score_formulations-{task}", row)


if __name__ == "__main__":
    main()
