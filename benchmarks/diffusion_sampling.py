"""Sampling throughput of diff-add and diff-concat: segbench's path against a SegDiff-style loop
on the same weights, side by side in one process.

segbench: torch.inference_mode, the image condition encoded once per sampling run,
the whole batch at once. Reference (as SegDiff/MedSegDiff sample): autograd on, the
condition encoder recomputed at every step, one sample at a time, fp32.

    python benchmarks/diffusion_sampling.py [--presets small,paper] [--masks 8] [--paper-steps 5]

The paper preset costs ~1.5 s per forward on 2 CPU cores, so it runs with
--paper-steps DDIM steps (default 5); both paths scale linearly in steps, so the
ratio holds for DDIM-50, and masks/s at 50 steps is reported scaled.
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import build, write_json
from segbench.noise import randn_per_sample, sample_generators
from segbench.plugins import load_plugins
from segbench_backbone.samplers import ddim_sample


def reference_sample(model, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """SegDiff-style: per sample, autograd enabled, condition recomputed at every step."""
    outputs = []
    for image, seed in zip(images, seeds):
        image = image[None]
        generators = sample_generators(seed.view(1))
        x_T = randn_per_sample(image.shape[1:], generators, image.device)

        def eps_fn(x_t, t):
            return model.noise_prediction(x_t, t, model.encode(image)).float()

        outputs.append(ddim_sample(eps_fn, x_T, model.alphas_cumprod, model.hparams.sampling_steps,
                                   model.hparams.eta, generators, model.hparams.clip_x0).detach())
    return torch.cat(outputs)


def measure(model_name: str, preset: str, masks: int, steps: int | None) -> dict[str, float]:
    sets = {"sampling_steps": str(steps)} if steps is not None else None
    model, plan = build(load_plugins(), model_name, preset, sets=sets, seed=0)
    model.eval()
    images = torch.rand(masks, 1, 64, 64)
    seeds = torch.arange(masks)
    model.sample(images[:1], seeds[:1])  # warm-up
    start = time.perf_counter()
    fast = model.sample(images, seeds)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = reference_sample(model, images, seeds)
    slow_s = time.perf_counter() - start
    used_steps = plan.hyperparameters["sampling_steps"]
    return {
        "preset": preset, "masks": masks, "ddim_steps": used_steps,
        "segbench_masks_per_s": masks / fast_s, "reference_masks_per_s": masks / slow_s,
        "speedup": slow_s / fast_s, "max_abs_difference": float((fast - slow).abs().max()),
        "segbench_masks_per_s_at_50_steps": masks / fast_s * used_steps / 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,paper")
    parser.add_argument("--masks", type=int, default=8)
    parser.add_argument("--paper-steps", type=int, default=5)
    args = parser.parse_args()
    results = []
    for preset in args.presets.split(","):
        for name in ("diff-add", "diff-concat"):
            masks = args.masks if preset != "paper" else max(1, args.masks // 4)
            row = {"model": name, **measure(name, preset, masks, args.paper_steps if preset == "paper" else 50)}
            print(row, flush=True)
            results.append(row)
    write_json("diffusion_sampling", {"threads": torch.get_num_threads(), "rows": results})


if __name__ == "__main__":
    main()
