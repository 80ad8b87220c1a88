"""Speed suite (issue 7): segbench against its peers and the hardware limit, in one command.

    python benchmarks/speed.py [--paper-steps 2] [--quality-epochs 16] [--only SECTIONS [--update]]
    # writes results/speed.json, results/speed.md and speed_scaling.png

Sections, each measured side by side in this one process:
- hardware: the GEMM peak measured now (fp32 on the CPU, bf16 on CUDA), the yardstick;
- sampling: per diffusion model and preset, masks/s at its default sampler, network
  evaluations per mask, counted FLOP per mask, achieved FLOP/s and its fraction of the
  peak; a SegDiff-style reference loop on the same weights and the speed-up over it;
  channels_last (NHWC) against NCHW; bf16 autocast (`--precision bf16`) and its speed-up over
  the float32 reference, with the largest change in x_0 it makes. The paper preset runs --paper-steps steps
  on the CPU (both paths scale linearly in steps);
- training: steps/s of diff-add training in float32 and in bf16 autocast, per preset;
- compile: `--compile` (torch.compile of each child module) against eager sampling in the
  small preset's default path: masks/s, compile time, largest change in x_0;
- quality against steps: diff-add (small preset) trained on the phantom lungs, test Dice
  with DDIM-50 against DDIM-20/10 and DPM-Solver++(2M)-20/10, on the same weights;
- metrics: confusion counts and the 8 metrics of 10,000 masks against scikit-learn per image;
- data: cache build and cached loading;
- scaling: masks/s of the small preset against batch size and image size (figure).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import RESULTS, build, environment, median_seconds, write_json
from core import data_throughput
from diffusion_sampling import reference_sample
from segbench import DatasetOptions
from segbench.data.prepare import load_split
from segbench.engine.compiling import compile_children, compile_seconds
from segbench.engine.device import Runtime, autocast, resolve_precision
from segbench.engine.evaluation import predict_split
from segbench.engine.training import train
from segbench.metrics.confusion import confusion_counts
from segbench.metrics.statistics import per_image
from segbench.plan.run_plan import EvaluationPlan
from segbench.plugins import load_plugins
from segbench.plan.run_plan import THRESHOLD
from segbench.protocol import bootstrap_seed, score
from segbench.seeds import derive_seed

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
RUNTIME = Runtime(DEVICE, resolve_precision("auto", DEVICE))  # what `segbench run` trains and predicts in here
MODELS = ("diff-add", "diff-concat")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def gemm_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Matrix-product rate on random data (fp32 CPU, bf16 CUDA): the best of `repeats` after a warm-up."""
    dtype = torch.bfloat16 if DEVICE.type == "cuda" else torch.float32
    n = 8192 if DEVICE.type == "cuda" else n
    a, b = (torch.randn(n, n, dtype=dtype, device=DEVICE) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def perturbed(registry, name: str, preset: str, size: int = 64, sets: dict[str, str] | None = None):
    """`name` at `preset` with `--set`-style `sets` (text), seeded, on DEVICE in eval mode, its weights perturbed."""
    model, _ = build(registry, name, preset, size, sets, seed=0)
    model = model.to(DEVICE).eval()
    with torch.no_grad():  # move the zero-initialised output layers off zero, so outputs depend on the input
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    return model


def flop_per_mask(model, size: int = 64) -> float:
    """Counted FLOP for one mask: condition encoder once, U-Net once per network evaluation."""
    image = torch.rand(1, 1, size, size, device=DEVICE)
    with torch.no_grad(), FlopCounterMode(display=False) as encoder:
        condition = model.encode(image)
    with torch.no_grad(), FlopCounterMode(display=False) as unet:
        model.network_output(image, torch.tensor([500], device=DEVICE), condition)
    return encoder.get_total_flops() + model.hparams.sampling_steps * unet.get_total_flops()


def sampling_row(registry, name: str, preset: str, masks: int, steps: int | None, peak: float) -> dict[str, Any]:
    overrides = {"sampling_steps": str(steps)} if steps else {}
    # NCHW here; NHWC measured below
    model = perturbed(registry, name, preset, sets={"channels_last": "false", **overrides})
    images = torch.rand(masks, 1, 64, 64, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    seeds = torch.arange(masks)
    model.sample(images[:1], seeds[:1])  # warm-up
    fast = median_seconds(lambda: model.sample(images, seeds), repeats=3 if preset != "paper" else 1, warmup=0)
    start = time.perf_counter()
    reference = reference_sample(model, images, seeds)
    slow = time.perf_counter() - start
    fp32_masks = model.sample(images, seeds)
    difference = float((reference - fp32_masks).abs().max())

    def sample_bf16() -> torch.Tensor:  # `--precision bf16` (the CUDA default), NCHW like the first column
        with autocast(DEVICE, "bf16"):
            return model.sample(images, seeds)

    bf16 = median_seconds(sample_bf16, repeats=3 if preset != "paper" else 1)
    bf16_difference = float((sample_bf16() - fp32_masks).abs().max())
    model.to(memory_format=torch.channels_last)
    channels_last = median_seconds(lambda: model.sample(images, seeds), repeats=3 if preset != "paper" else 1)
    flop = flop_per_mask(model)
    achieved = masks * flop / fast / 1e9
    return {
        "model": name, "preset": preset, "sampler": model.hparams.sampler, "evaluations_per_mask": model.hparams.sampling_steps,
        "masks": masks, "max_abs_difference_to_reference": difference, "masks_per_s": masks / fast, "reference_masks_per_s": masks / slow, "speedup": slow / fast,
        "channels_last_masks_per_s": masks / channels_last, "gflop_per_mask": flop / 1e9,
        "bf16_masks_per_s": masks / bf16,
        "bf16_speedup": slow / bf16, "bf16_max_abs_difference": bf16_difference,
        "achieved_gflops": achieved, "fraction_of_peak": achieved / peak,
    }


def compiled_sampling(registry, masks: int = 8) -> list[dict[str, Any]]:
    """Per diffusion model in the small preset (its default channels_last path): eager against compiled."""
    rows = []
    for name in MODELS:
        model = perturbed(registry, name, "small")
        images = torch.rand(masks, 1, 64, 64, generator=torch.Generator().manual_seed(1)).to(DEVICE)
        seeds = torch.arange(masks)
        eager_masks = model.sample(images, seeds)  # also the warm-up
        eager = median_seconds(lambda: model.sample(images, seeds), repeats=3, warmup=0)
        compile_children(model)
        before, start = compile_seconds(), time.perf_counter()
        compiled_masks = model.sample(images, seeds)  # compiles the encoder and the U-Net for this batch
        first, after = time.perf_counter() - start, compile_seconds()
        compiled = median_seconds(lambda: model.sample(images, seeds), repeats=3, warmup=0)
        rows.append({"model": name, "preset": "small", "masks": masks, "eager_masks_per_s": masks / eager,
                     "compiled_masks_per_s": masks / compiled, "speedup": eager / compiled,
                     "first_call_seconds": first,
                     "compile_seconds": after - before if before is not None and after is not None else None,
                     "max_abs_difference": float((compiled_masks - eager_masks).abs().max())})
    return rows


def quality_against_steps(registry, epochs: int) -> dict[str, Any]:
    """Train diff-add (small) on the phantom lungs once; test Dice of several samplers on the same weights."""
    dataset = registry.dataset("cxr-phantom")
    options = DatasetOptions("lung", None, 64, 0)
    source = dataset.factory(options)
    train_data, test_data = (load_split(dataset, source, options, split) for split in ("train", "test"))
    model, plan = build(registry, "diff-add", "small", sets={"epochs": str(epochs)}, seed=derive_seed("init", 0, "diff-add"))
    start = time.perf_counter()
    train(model, train_data, plan.training, seed=derive_seed("model", 0, "diff-add"), runtime=RUNTIME)
    rows = {"epochs": epochs, "train_seconds": time.perf_counter() - start, "samplers": []}
    _, masks = test_data.tensors()
    evaluation = EvaluationPlan(samples=None, batch_size=32, ensemble=1, threshold=THRESHOLD)
    for sampler, steps in (("ddim", 50), ("ddim", 20), ("ddim", 10), ("dpmpp2m", 20), ("dpmpp2m", 10)):
        model.hparams = replace(model.hparams, sampler=sampler, sampling_steps=steps)  # the same trained weights
        preds = predict_split(model, test_data, evaluation, run_seed=0, runtime=RUNTIME)
        dice = score("diff-add", test_data.ids, preds.probabilities, masks, THRESHOLD,
                     {"dice": registry.metric("dice")}, bootstrap_seed(0)).by_metric["dice"]
        rows["samplers"].append({"sampler": sampler, "steps": steps, "dice": dice["mean"],
                                 "masks_per_s": len(test_data) / preds.seconds})
    best = rows["samplers"][0]["dice"]
    for row in rows["samplers"]:
        row["gap_to_ddim50"] = row["dice"] - best
    return rows


def training_precision(registry, steps: int = 6) -> list[dict[str, Any]]:
    """Training steps/s of diff-add per preset (small: its batch 16; paper: batch 2), float32 against
    bf16 autocast (`--precision bf16`): forward, backward and AdamW step, median over `steps` after one."""
    rows = []
    for preset, batch in (("small", 16), ("paper", 2)):
        model = perturbed(registry, "diff-add", preset).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(batch, 1, 64, 64, generator=generator).to(DEVICE)
        masks = (torch.rand(batch, 1, 64, 64, generator=generator) > 0.7).float().to(DEVICE)
        row: dict[str, Any] = {"model": "diff-add", "preset": preset, "batch": batch}
        for precision in ("fp32", "bf16"):
            def step() -> None:
                with autocast(DEVICE, precision):
                    loss = model.training_loss(images, masks)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sync()

            row[f"{precision}_steps_per_s"] = 1 / median_seconds(step, repeats=steps if preset == "small" else 2)
        row["bf16_speedup"] = row["bf16_steps_per_s"] / row["fp32_steps_per_s"]
        rows.append(row)
    return rows


def metrics_against_sklearn(registry, n: int = 10_000, sklearn_subset: int = 500) -> dict[str, float]:
    """segbench: counts and 8 metrics for n masks at once. scikit-learn: one call per metric per image,
    timed on a subset and scaled to n (it is linear in the number of images)."""
    from sklearn import metrics as skm

    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(n, 1, 64, 64, generator=generator)
    masks = (torch.rand(n, 1, 64, 64, generator=generator) > 0.7).to(torch.uint8)
    names = [m for m in registry.names("metrics") if registry.metric(m).kind == "counts"]
    specs = {m: registry.metric(m) for m in names}
    ours = median_seconds(lambda: per_image(confusion_counts(probs, masks), specs), repeats=3)
    y_true, y_pred = masks[:sklearn_subset].flatten(1).numpy(), (probs[:sklearn_subset] >= 0.5).flatten(1).numpy()

    def sklearn_all() -> None:
        for t, p in zip(y_true, y_pred):
            skm.f1_score(t, p, zero_division=1.0), skm.jaccard_score(t, p, zero_division=1.0)
            skm.accuracy_score(t, p), skm.recall_score(t, p, zero_division=1.0)
            skm.recall_score(t, p, pos_label=0, zero_division=1.0), skm.balanced_accuracy_score(t, p)
            skm.precision_score(t, p, zero_division=1.0), skm.matthews_corrcoef(t, p)

    theirs = median_seconds(sklearn_all, repeats=1, warmup=0) * n / sklearn_subset
    return {"masks": n, "metrics": len(names), "segbench_seconds": ours, "sklearn_seconds_scaled": theirs,
            "sklearn_subset": sklearn_subset, "speedup": theirs / ours}


def scaling(registry) -> dict[str, list[dict[str, float]]]:
    """masks/s of diff-add (small preset, its default sampler) against batch size (64x64) and image size (batch 8;
    attention at the lowest level, which is 16x16 for 64x64 as in the preset)."""
    out: dict[str, list[dict[str, float]]] = {"batch": [], "size": []}
    model = perturbed(registry, "diff-add", "small")
    for batch in (1, 2, 4, 8, 16, 32):
        images, seeds = torch.rand(batch, 1, 64, 64, device=DEVICE), torch.arange(batch)
        seconds = median_seconds(lambda: model.sample(images, seeds), repeats=3)
        out["batch"].append({"batch": batch, "masks_per_s": batch / seconds})
    for size in (32, 64, 128):
        # attention at the last level, wherever that is for this size
        model = perturbed(registry, "diff-add", "small", size=size, sets={"attention_resolutions": f"({size // 4},)"})
        images, seeds = torch.rand(8, 1, size, size, device=DEVICE), torch.arange(8)
        seconds = median_seconds(lambda: model.sample(images, seeds), repeats=3)
        out["size"].append({"size": size, "masks_per_s": 8 / seconds})
    return out


def plot_scaling(data: dict[str, list[dict[str, float]]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot([r["batch"] for r in data["batch"]], [r["masks_per_s"] for r in data["batch"]], "o-")
    left.set(xscale="log", xlabel="batch size (64x64)", ylabel="masks/s", title="diff-add small: batch")
    right.plot([r["size"] for r in data["size"]], [r["masks_per_s"] for r in data["size"]], "o-")
    right.set(xscale="log", yscale="log", xlabel="image size (batch 8)", ylabel="masks/s", title="diff-add small: size")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.suptitle(f"{environment()['device']}, {torch.get_num_threads()} threads, 10 DDIM steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [f"Device: {env['device']}, torch {env['torch']}, {env['torch_threads']} threads; "
             f"GEMM peak {result['gemm_peak_gflops']:.0f} GFLOP/s ({'bf16' if DEVICE.type == 'cuda' else 'fp32'}).", "",
             "| model | preset | sampler | evals/mask | masks/s (NCHW) | reference masks/s | speed-up | channels_last masks/s "
             "| GFLOP/mask | achieved GFLOP/s | of peak | bf16 masks/s (NCHW) | bf16 speed-up | bf16 max abs diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["sampling"]:
        lines.append(f"| {r['model']} | {r['preset']} | {r['sampler']} | {r['evaluations_per_mask']} | {r['masks_per_s']:.3g} "
                     f"| {r['reference_masks_per_s']:.3g} | {r['speedup']:.2f}x | {r['channels_last_masks_per_s']:.3g} "
                     f"| {r['gflop_per_mask']:.1f} | {r['achieved_gflops']:.1f} | {r['fraction_of_peak']:.0%} "
                     f"| {r['bf16_masks_per_s']:.3g} | {r['bf16_speedup']:.2f}x "
                     f"| {r['bf16_max_abs_difference']:.3g} |")
    if "compile" in result:
        lines += ["", "`--compile` (torch.compile of each child module) against eager sampling, small preset "
                  "(channels_last, its default):", "",
                  "| model | masks | eager masks/s | compiled masks/s | speed-up | compile s | max abs diff of x_0 |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['masks']} | {r['eager_masks_per_s']:.3g} | {r['compiled_masks_per_s']:.3g} "
                  f"| {r['speedup']:.2f}x | {_seconds(r['compile_seconds'])} | {r['max_abs_difference']:.2g} |"
                  for r in result["compile"]]
    q = result["quality"]
    lines += ["", f"Quality against steps (diff-add small, phantom lungs, {q['epochs']} epochs, 96 test images):", "",
              "| sampler | evaluations | Dice | gap to DDIM-50 | masks/s |", "|---|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['steps']} | {r['dice']:.4f} | {r['gap_to_ddim50']:+.4f} | {r['masks_per_s']:.2f} |"
              for r in q["samplers"]]
    if "training" in result:
        lines += ["", "Training steps/s (diff-add, forward + backward + AdamW), float32 against bf16 autocast:", "",
                  "| preset | batch | fp32 steps/s | bf16 steps/s | bf16 speed-up |", "|---|---|---|---|---|"]
        lines += [f"| {r['preset']} | {r['batch']} | {r['fp32_steps_per_s']:.3g} | {r['bf16_steps_per_s']:.3g} "
                  f"| {r['bf16_speedup']:.2f}x |" for r in result["training"]]
    m, d = result["metrics"], result["data"]
    lines += ["", f"Metrics: {m['masks']:,} masks, {m['metrics']} metrics: segbench {m['segbench_seconds']:.2f} s, "
              f"scikit-learn per image {m['sklearn_seconds_scaled']:.0f} s (timed on {m['sklearn_subset']}, scaled): "
              f"{m['speedup']:.0f}x.",
              f"Data: cache build {d['cache_build_images_per_s']:.0f} images/s, cached loading "
              f"{d['cached_load_images_per_s']:,.0f} images/s."]
    return "\n".join(lines) + "\n"


SECTIONS = ("sampling", "training", "compile", "metrics", "data", "quality", "scaling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper-steps", type=int, default=2, help="DDIM steps of the paper preset on the CPU")
    parser.add_argument("--quality-epochs", type=int, default=16)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"Comma-separated subset of {', '.join(SECTIONS)}.")
    parser.add_argument("--update", action="store_true", help="Keep the other sections of the existing JSON.")
    args = parser.parse_args()
    only = set(args.only.split(","))
    registry = load_plugins()
    path = RESULTS / "speed.json"
    result: dict[str, Any] = {}
    if args.update and path.exists():
        result = {k: v for k, v in json.loads(path.read_text()).items() if k != "environment"}
    result.update(command="python benchmarks/speed.py", gemm_peak_gflops=gemm_peak_gflops())

    def save(section: str, value: Any) -> None:
        result[section] = value
        print(section, value, flush=True)
        write_json("speed", result)

    if "sampling" in only:
        rows = []
        for preset, masks in (("small", 8), ("paper", 2)):
            for name in MODELS:
                steps = args.paper_steps if preset == "paper" and DEVICE.type == "cpu" else None
                rows.append(sampling_row(registry, name, preset, masks, steps, result["gemm_peak_gflops"]))
        save("sampling", rows)
    if "training" in only:
        save("training", training_precision(registry))
    if "compile" in only:
        save("compile", compiled_sampling(registry))
    if "metrics" in only:
        save("metrics", metrics_against_sklearn(registry))
    if "data" in only:
        save("data", data_throughput(registry))  # in a cache folder of its own
    if "quality" in only:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SEGBENCH_CACHE"] = cache
            save("quality", quality_against_steps(registry, args.quality_epochs))
    if "scaling" in only:
        save("scaling", scaling(registry))
        plot_scaling(result["scaling"], RESULTS.parent / "speed_scaling.png")
    (RESULTS / "speed.md").write_text(markdown({**result, "environment": environment()}))
    print((RESULTS / "speed.md").read_text())


if __name__ == "__main__":
    main()
