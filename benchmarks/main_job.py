"""Wall time and quality of the main job (README's `make run`) and its lung counterpart.

    python benchmarks/main_job.py [--tasks infection,lung] [--models diff-add,unet] [--preset P] [--tag=-T]
    # results/main_job-<task>[-<preset>][-T].json (the preset's name when one is given)

Runs `segbench run` as a user would (fresh cache, so data generation is included)
and records wall time, and per model its parameters, training and prediction seconds and
per-image mean Dice with its CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from _common import write_json
from segbench.results import read_models


def run_task(task: str, models: str, workdir: Path, *options: str) -> dict[str, object]:
    """`segbench run --task T --models M [options]` in a fresh cache; wall time, Dice, training time, masks/s."""
    out = workdir / task
    env = {**os.environ, "SEGBENCH_CACHE": str(workdir / "cache")}
    command = [sys.executable, "-m", "segbench", "run", "--task", task, "--models", models, *options,
               "--out", str(out), "--quiet"]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env)
    seconds = time.perf_counter() - start
    summary = pd.read_csv(out / "summary.csv")
    dice = summary[summary["metric"] == "dice"].set_index("model")
    records = read_models(out)
    return {
        "task": task, "command": " ".join(["segbench", *command[3:-3]]), "wall_seconds": round(seconds, 1),
        "dice": {m: {k: round(float(dice.loc[m, k]), 4) for k in ("mean", "ci_low", "ci_high", "pooled")} for m in dice.index},
        "parameters": {m: record.parameters for m, record in records.items()},
        "train_seconds": {m: record.train_seconds for m, record in records.items()},
        "predict_seconds": {m: record.predict_seconds for m, record in records.items()},
        "masks_per_second": {m: record.masks_per_second for m, record in records.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="infection,lung")
    parser.add_argument("--models", default="diff-add,unet")
    parser.add_argument("--preset", default=None, help="a preset (default: the run's own, auto)")
    parser.add_argument("--keep", default=None, help="write the runs (and a fresh cache) into this new folder and keep them")
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name, e.g. --tag=-all-models")
    args = parser.parse_args()
    options = ("--preset", args.preset) if args.preset else ()
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            row = run_task(task, args.models, Path(args.keep or tmp), *options)
            print(row, flush=True)
            write_json(f"main_job-{task}" + (f"-{args.preset}" if args.preset else "") + args.tag, row)


if __name__ == "__main__":
    main()
