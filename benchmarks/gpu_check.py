"""GPU check of the paper preset (issues 3 and 7), everything in one go; results/gpu_check.json.

    python benchmarks/gpu_check.py [--masks 512] [--steps 50] [--reference-masks 8] [--no-compile]

On one CUDA device, for diff-add in the paper preset (218 M parameters):
- a user's run end to end, `segbench run --task lung --models diff-add --preset paper` on the
  phantom (in a subprocess, first, while this process holds no GPU memory): wall time, Dice,
  the micro-batches its batch of 512 needed and the EMA decay it used;
- with 2 or more GPUs, the same model trained and sampled by 1 GPU and by all of them under torchrun;
- the bf16 GEMM peak measured now (8192^3 matrix products), the yardstick for achieved FLOP/s;
- one training step at batch 64 (bf16 autocast, AdamW): seconds and peak memory;
- DDIM sampling of 64 masks and of `--masks` masks in bf16: masks/s, FLOP/s, fraction of peak, peak memory;
- masks/s by batch size (32 to 512), the evidence for `--eval-batch-size`'s CUDA default;
- the same with torch.compile (compile time reported apart), and with mode="reduce-overhead" (CUDA
  graphs) at 64 and 256 masks, unless --no-compile;
- a SegDiff-style reference loop (per sample, autograd on, condition re-encoded every step, fp32) on
  `--reference-masks` masks: the speed-up of segbench's path over it, same weights;
- bf16 against fp32 masks of the same seeds: the largest probability difference.
The JSON is rewritten after every section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import RESULTS, build, write_json
from diffusion_sampling import reference_sample
from main_job import run_task
from segbench.engine.compiling import compile_children
from segbench.plugins import load_plugins
from segbench.results import read_models


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cpu: a dry run of the script


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else float("nan")


def reset_peak_memory() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    return result, time.perf_counter() - start


def gemm_peak_tflops(n: int, repeats: int = 10) -> float:
    """bf16 (fp32 on the CPU) matrix-product rate on random data: mean of `repeats` after 3 warm-ups."""
    dtype = torch.bfloat16 if DEVICE.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=DEVICE, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    _, seconds = timed(lambda: [a @ b for _ in range(repeats)])
    return 2 * n**3 * repeats / seconds / 1e12


def flops_per_mask(model, steps: int) -> float:
    """Counted FLOP of one mask: the condition encoder once, the U-Net `steps` times."""
    image = torch.rand(1, 1, 64, 64, device=DEVICE)
    t = torch.tensor([500], device=DEVICE)
    with torch.no_grad(), FlopCounterMode(display=False) as encoder:
        condition = model.encode(image)
    with torch.no_grad(), FlopCounterMode(display=False) as unet:
        model.network_output(image[:, :1] * 0, t, condition)
    return encoder.get_total_flops() + steps * unet.get_total_flops()


def training_step(model, batch: int) -> dict[str, float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    images = torch.rand(batch, 1, 64, 64, device=DEVICE)
    masks = (torch.rand(batch, 1, 64, 64, device=DEVICE) > 0.5).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.training_loss(images, masks)
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(2):
        step()
    reset_peak_memory()
    times = [timed(step)[1] for _ in range(5)]
    model.eval()
    del optimizer
    return {"batch": batch, "seconds": sorted(times)[2], "peak_memory_gib": peak_memory_gib()}


def sample(model, masks: int, bf16: bool = True) -> tuple[torch.Tensor, float]:
    images = torch.rand(masks, 1, 64, 64, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    seeds = torch.arange(masks)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        return timed(lambda: model.sample(images, seeds))


def profile_step(model, masks: int, top: int = 12) -> list[dict[str, Any]]:
    """The kernels of one U-Net evaluation at batch `masks` (bf16), by share of device time."""
    x = torch.randn(masks, 1, 64, 64, device=DEVICE)
    t = torch.full((masks,), 500, device=DEVICE)
    condition = torch.randn(masks, model.hparams.cond_channels, 64, 64, device=DEVICE)
    activity = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if DEVICE.type == "cuda" else [])
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        model.network_output(x, t, condition)
        with torch.profiler.profile(activities=activity) as prof:
            model.network_output(x, t, condition)
            sync()
    key = "device_time_total" if DEVICE.type == "cuda" else "cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total = sum(getattr(e, key) for e in events if not e.key.startswith("aten::")) or 1
    return [{"name": e.key[:80], "ms": getattr(e, key) / 1e3, "share": getattr(e, key) / total}
            for e in events if not e.key.startswith("aten::")][:top]


def rates(masks: int, seconds: float, flop_per_mask: float, peak_tflops: float) -> dict[str, float]:
    achieved = masks * flop_per_mask / seconds / 1e12
    return {"masks": masks, "seconds": seconds, "masks_per_s": masks / seconds, "achieved_tflops": achieved,
            "fraction_of_peak": achieved / peak_tflops, "peak_memory_gib": peak_memory_gib()}


SECTIONS = ("paper_run", "distributed", "train", "sample", "batches", "agreement", "reference", "profile",
            "channels_last", "compile", "cudagraphs")


def distributed_scaling(preset: str, steps: int = 20, samples: int = 64) -> dict[str, Any]:
    """diff-add trained `steps` steps and sampled on `samples` masks by 1 GPU and by every GPU of the
    node under torchrun (segbench/engine/distributed.py): images/s, masks/s and their ratios."""
    import os
    import subprocess
    import sys

    gpus = torch.cuda.device_count()
    if gpus < 2:
        return {"skipped": f"{gpus} GPU(s) here; the section needs 2 or more"}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for processes in (1, gpus):
            out = Path(tmp) / str(processes)
            launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "-m",
                         "segbench"] if processes > 1 else [sys.executable, "-m", "segbench"])
            subprocess.run([*launcher, "run", "--task", "lung", "--models", "diff-add", "--preset", preset, "--steps",
                            str(steps), "--eval-samples", str(samples), "--quiet", "--out", str(out)], check=True,
                           env={**os.environ, "SEGBENCH_CACHE": str(Path(tmp) / "cache")})
            info = read_models(out)["diff-add"]
            rows[processes] = {"train_images_per_second": steps * 512 / info.train_seconds,
                               "masks_per_second": info.masks_per_second}
    return {"gpus": gpus, "by_processes": rows,
            "train_speedup": rows[gpus]["train_images_per_second"] / rows[1]["train_images_per_second"],
            "sampling_speedup": rows[gpus]["masks_per_second"] / rows[1]["masks_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--reference-masks", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--preset", default="paper", help="tiny: a quick dry run of the script")
    parser.add_argument("--copy-to", help="Also copy the JSON here (e.g. $OUT).")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"Comma-separated subset of {', '.join(SECTIONS)}.")
    parser.add_argument("--update", action="store_true", help="Keep the other sections of the existing JSON.")
    args = parser.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {"command": "python benchmarks/gpu_check.py", "model": "diff-add", "preset": args.preset,
                              "device": str(DEVICE)}
    if args.update and (RESULTS / "gpu_check.json").exists():
        previous = json.loads((RESULTS / "gpu_check.json").read_text())
        result = {**{k: v for k, v in previous.items() if k != "environment"}, **result}

    def save(section: str, value: Any) -> None:
        result[section] = value
        print(section, value, flush=True)
        path = write_json("gpu_check", result)
        if args.copy_to:
            shutil.copy(path, args.copy_to)

    if "paper_run" in only:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_task("lung", "diff-add", Path(tmp), "--preset", args.preset)
            info = read_models(Path(tmp) / "lung")["diff-add"]
            save("paper_run", {**row, "accumulation_parts": info.accumulation_parts, "ema_decay_used": info.ema_decay_used})
    if "distributed" in only and DEVICE.type == "cuda":
        save("distributed", distributed_scaling(args.preset))
    save("gemm_bf16_tflops", gemm_peak_tflops(8192 if DEVICE.type == "cuda" else 1024))
    model, _ = build(load_plugins(), "diff-add", args.preset, sets={"sampling_steps": str(args.steps)}, seed=0)
    model = model.to(DEVICE)
    flop = flops_per_mask(model, args.steps)
    save("model", {"parameters": sum(p.numel() for p in model.parameters()), "ddim_steps": args.steps,
                   "gflop_per_mask": flop / 1e9})
    if "train" in only:
        save("training_step_bf16", training_step(model, 64))
    else:  # a few steps anyway: zero-initialised output layers make an untrained network's output exactly 0
        training_step(model, 8)
    model.eval()
    peak = result["gemm_bf16_tflops"]
    if "sample" in only:
        for masks in (64, args.masks):
            sample(model, 8)  # warm-up: cuDNN autotuning, allocator
            reset_peak_memory()
            _, seconds = sample(model, masks)
            save(f"sample_bf16_{masks}", rates(masks, seconds, flop, peak))

    if "batches" in only:
        sample(model, 8)
        by_batch = {}
        for masks in (32, 64, 128, 256, 512):
            reset_peak_memory()
            by_batch[str(masks)] = rates(masks, sample(model, masks)[1], flop, peak)
        save("sample_bf16_by_batch", by_batch)

    probe = min(8, args.reference_masks)
    fp32, _ = sample(model, probe, bf16=False)
    if "agreement" in only:
        bf16, _ = sample(model, probe)
        to_prob = lambda x: ((x + 1) / 2).clamp(0, 1)  # noqa: E731
        save("bf16_vs_fp32", {"masks": probe,
                              "max_abs_probability_difference": float((to_prob(fp32) - to_prob(bf16)).abs().max()),
                              "thresholded_pixels_differing": float(((fp32 > 0) != (bf16 > 0)).float().mean())})

    if "reference" in only:
        images = torch.rand(args.reference_masks, 1, 64, 64, generator=torch.Generator().manual_seed(1)).to(DEVICE)
        reference, seconds = timed(lambda: reference_sample(model, images, torch.arange(args.reference_masks)))
        save("reference_fp32", {"masks": args.reference_masks, "seconds": seconds,
                                "masks_per_s": args.reference_masks / seconds,
                                "max_abs_difference_to_fp32_fast_path": float((reference[:probe] - fp32).abs().max()),
                                "speedup_bf16": result[f"sample_bf16_{args.masks}"]["masks_per_s"] * seconds
                                / args.reference_masks})
    ref_rate = result.get("reference_fp32", {}).get("masks_per_s")  # from this run, or kept by --update

    if "profile" in only:
        save("profile_one_step", profile_step(model, args.masks))

    if "channels_last" in only:
        model.to(memory_format=torch.channels_last)
        sample(model, 8)
        reset_peak_memory()
        _, seconds = sample(model, args.masks)
        save(f"sample_bf16_channels_last_{args.masks}", rates(args.masks, seconds, flop, peak))
        model.to(memory_format=torch.contiguous_format)

    if "compile" in only and not args.no_compile:
        compile_children(model)
        _, first = sample(model, args.masks)  # compiles for this batch shape
        reset_peak_memory()
        _, seconds = sample(model, args.masks)
        save(f"sample_bf16_compiled_{args.masks}", {**rates(args.masks, seconds, flop, peak),
                                                     "compile_seconds": first - seconds,
                                                     "speedup_vs_reference": args.masks / seconds / ref_rate
                                                     if ref_rate else None})

    if "cudagraphs" in only and not args.no_compile:
        compile_children(model, mode="reduce-overhead")  # CUDA graphs of the compiled U-Net (skipped on the CPU)
        for masks in (64, 256):
            _, first = sample(model, masks)
            reset_peak_memory()
            _, seconds = sample(model, masks)
            save(f"sample_bf16_cudagraphs_{masks}", {**rates(masks, seconds, flop, peak),
                                                     "compile_seconds": first - seconds})


if __name__ == "__main__":
    main()
