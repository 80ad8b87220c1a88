"""Training (images/s) and evaluation (masks/s) in one process and in two under torchrun, on the CPU.

    python benchmarks/distributed.py [--models unet,diff-add] [--steps 40] [--eval-samples 64]
        # results/distributed.json

Each model trains `--steps` optimiser steps (small preset, phantom lung) and predicts `--eval-samples`
test images: in one process with every core's thread, in one process with one thread, and in two
torchrun processes (gloo) with one thread each, which is what two processes on this 2-core machine
get. Throughputs come from models.json (training seconds; masks per second of rank 0, which predicts
half the masks in the same wall time as the other rank), measured side by side in one run; the
ratios are what to read. Two processes on two cores can at best match one process using both cores:
the point of the comparison is the overhead of the process group, all-reduce and gathering.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import write_json
from segbench.results import read_models


def _run(work: Path, name: str, models: str, steps: int, samples: int, threads: int, processes: int) -> dict:
    out = work / name
    env = {**os.environ, "SEGBENCH_CACHE": str(work / "cache"), "OMP_NUM_THREADS": str(threads)}
    command = ["run", "--task", "lung", "--models", models, "--preset", "small", "--steps", str(steps),
               "--eval-samples", str(samples), "--quiet", "--out", str(out)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
                 "29631", "-m", "segbench"] if processes > 1 else [sys.executable, "-m", "segbench"])
    subprocess.run([*launcher, *command], check=True, env=env, stdout=subprocess.DEVNULL)
    result = {}
    for model, record in read_models(out).items():
        batch = 16  # the small presets' training batch
        result[model] = {"train_images_per_second": round(steps * batch / record.train_seconds, 2),
                         "masks_per_second": record.masks_per_second}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,diff-add")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-samples", type=int, default=64)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _run(work, "warm", args.models.split(",")[0], 2, 4, cores, 1)  # fills the data cache
        layouts = {"one_process_all_threads": (cores, 1), "one_process_one_thread": (1, 1),
                   "two_processes_one_thread_each": (1, 2)}
        results = {name: _run(work, name, args.models, args.steps, args.eval_samples, threads, processes)
                   for name, (threads, processes) in layouts.items()}
    ratios = {model: {f"{what}_two_over_one_all_threads": round(
        results["two_processes_one_thread_each"][model][what] / results["one_process_all_threads"][model][what], 3)
        for what in ("train_images_per_second", "masks_per_second")} for model in args.models.split(",")}
    row = {"cores": cores, "steps": args.steps, "eval_samples": args.eval_samples, "results": results, "ratios": ratios}
    print(row)
    write_json("distributed", row)


if __name__ == "__main__":
    main()
