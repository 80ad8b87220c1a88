"""How the small diffusion preset was chosen: diff-add variants trained on the phantom, Dice per variant.

    python benchmarks/preset_sweep.py [--jobs 8] [--only bce,bce_e16]   # results/preset_sweep.json

Each variant is `--set`-style overrides of the small preset, trained on the 480
training images (seed 0) and scored by per-image Dice on the validation split (the
selection criterion) and on the test split (for information). Variants run in
parallel processes (`--jobs`), several at a time on one GPU where there is one;
on 2 CPU cores use `--jobs 1` and a few `--only` variants (~5 min each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import build, write_json

# The small preset before this sweep: x0-prediction trained with MSE for 12 epochs.
BEFORE = ["loss=mse", "epochs=12"]
BCE = ["loss=bce_dice", "epochs=12"]
DEEP = ["channel_mult=(1,2,4,4)", "attention_resolutions=(8,)"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "base": ("infection", BEFORE),
    "e24": ("infection", [*BEFORE, "epochs=24"]),
    "deep": ("infection", [*BEFORE, *DEEP]),
    "bce": ("infection", BCE),
    "bce_e16": ("infection", [*BCE, "epochs=16"]),
    "bce_e24": ("infection", [*BCE, "epochs=24"]),
    "bce_deep": ("infection", [*BCE, *DEEP]),
    "bce_deep_e16": ("infection", [*BCE, *DEEP, "epochs=16"]),
    "bce_deep_e24": ("infection", [*BCE, *DEEP, "epochs=24"]),
    "bce_deep5": ("infection", [*BCE, "channel_mult=(1,2,4,4,4)", "attention_resolutions=(8,)"]),
    "bce_w24": ("infection", [*BCE, "base_channels=24", "head_channels=24"]),
    "bce_w32_deep": ("infection", [*BCE, "base_channels=32", "channel_mult=(1,2,2,4)", "attention_resolutions=(8,)"]),
    "bce_rrdb32": ("infection", [*BCE, "rrdb_nf=32", "rrdb_gc=16"]),
    "bce_lr1e-3": ("infection", [*BCE, "lr=1e-3"]),
    "bce_lr4e-3": ("infection", [*BCE, "lr=4e-3"]),
    "bce_res2": ("infection", [*BCE, "num_res_blocks=2"]),
    "bce_steps5": ("infection", [*BCE, "sampling_steps=5"]),
    "bce_steps20": ("infection", [*BCE, "sampling_steps=20"]),
    "lung_base": ("lung", BEFORE),
    "lung_bce": ("lung", BCE),
    "lung_bce_deep": ("lung", [*BCE, *DEEP]),
}


def one(task: str, overrides: list[str]) -> dict[str, Any]:
    """Train one variant in this process; per-image Dice on validation and test."""
    import time

    import torch

    from segbench import DatasetOptions
    from segbench.data.prepare import load_split
    from segbench.engine.device import Runtime, resolve_precision
    from segbench.engine.evaluation import predict_split
    from segbench.engine.random_state import seed_everything
    from segbench.engine.training import train
    from segbench.plan.run_plan import THRESHOLD, EvaluationPlan
    from segbench.plugins import load_plugins
    from segbench.protocol import bootstrap_seed, score
    from segbench.seeds import derive_seed

    registry = load_plugins()
    sets = dict(item.split("=", 1) for item in overrides)
    model, plan = build(registry, "diff-add", "small", sets=sets, task=task, seed=derive_seed("init", 0, "diff-add"))
    dataset = registry.dataset("cxr-phantom")
    options = DatasetOptions(task=task, root=None, size=64, seed=0)
    source = dataset.factory(options)
    data = {split: load_split(dataset, source, options, split) for split in ("train", "val", "test")}
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runtime = Runtime(device, resolve_precision("auto", device))
    seed = derive_seed("model", 0, "diff-add")
    start = time.perf_counter()
    train(model, data["train"], plan.training, seed=seed, runtime=runtime)
    row: dict[str, Any] = {"train_seconds": round(time.perf_counter() - start, 1), "device": str(device)}
    evaluation = EvaluationPlan(samples=None, batch_size=64, ensemble=1, threshold=THRESHOLD)
    for split in ("val", "test"):
        seed_everything(seed)
        preds = predict_split(model, data[split], evaluation, run_seed=0, runtime=runtime)
        _, masks = data[split].tensors()
        dice = score("diff-add", data[split].ids, preds.probabilities, masks, THRESHOLD,
                     {"dice": registry.metric("dice")}, bootstrap_seed(0)).by_metric["dice"]
        row[split] = round(dice["mean"], 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.variant:
        task, overrides = VARIANTS[args.variant]
        print(json.dumps(one(task, overrides)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}

    def worker(name: str) -> dict[str, Any]:
        done = subprocess.run([sys.executable, __file__, "--variant", name], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return {"name": name, "error": done.stderr.strip().splitlines()[-1:]}
        task, overrides = VARIANTS[name]
        row = {"name": name, "task": task, "overrides": overrides, **json.loads(done.stdout.strip().splitlines()[-1])}
        print(row, flush=True)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(worker, args.only.split(",")))
    write_json("preset_sweep", {"command": "python benchmarks/preset_sweep.py", "rows": rows})


if __name__ == "__main__":
    main()
