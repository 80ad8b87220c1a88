"""What a study costs beyond the runs it holds, and what the submitit executor adds per cell.

    python benchmarks/study.py [--models unet,diff-add] [--seeds 0,1] [--repeats 3]   # results/study.json

1. The same cells run by hand (one `segbench run` per model and seed, as a user would script them) and
   as one `segbench study run` (local executor, one process): wall time of each and their ratio; the
   cells' per_image.csv must equal the hand runs' byte for byte.
2. A one-cell study with the local executor and with submitit's local cluster (a job process per cell,
   pickled call, polling): the median difference over `--repeats` is submitit's overhead per cell.
Every command runs in a fresh process with a shared, warm data cache, so data preparation is not timed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

OPTIONS = {"preset": "tiny", "eval_samples": 16}


def _segbench(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "segbench", *args], check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _study_file(folder: Path, models: list[str], seeds: list[int], executor: str = "") -> Path:
    lines = [f"seeds = [{', '.join(map(str, seeds))}]", *(f"{k} = {v!r}".replace("'", '"') for k, v in OPTIONS.items()),
             "[datasets.lung]", 'task = "lung"', "[models]", *(f"{m} = {{}}" for m in models), executor]
    path = folder / f"study-{len(list(folder.glob('study-*')))}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,diff-add")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    models, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "SEGBENCH_CACHE": str(work / "cache")}
        _segbench("run", "--task", "lung", "--models", models[0], "--preset", "tiny", "--epochs", "1",
                  "--eval-samples", "2", "--quiet", "--out", str(work / "warm"), env=env)  # fills the data cache
        hand = 0.0
        for model in models:
            for seed in seeds:
                hand += _segbench("run", "--task", "lung", "--models", model, "--preset", "tiny", "--seed", str(seed),
                                  "--eval-samples", str(OPTIONS["eval_samples"]), "--quiet",
                                  "--out", str(work / "hand" / f"{model}-{seed}"), env=env)
        study = _segbench("study", "run", str(_study_file(work, models, seeds)), "--out", str(work / "study"), env=env)
        for cell in (work / "study" / "cells").iterdir():
            model, seed = next((m, s) for m in models for s in seeds if cell.name.startswith(f"lung-{m}-seed{s}-"))
            if (cell / "per_image.csv").read_bytes() != (work / "hand" / f"{model}-{seed}" / "per_image.csv").read_bytes():
                raise RuntimeError(f"{cell.name}: the study's cell differs from the same segbench run")
        one = {"local": [], "submitit": []}
        for repeat in range(args.repeats):
            for name, executor in (("local", ""), ("submitit", '[executor]\nname = "submitit"\ncluster = "local"')):
                path = _study_file(work, models[:1], seeds[:1], executor)
                one[name].append(_segbench("study", "run", str(path), "--out", str(work / f"{name}-{repeat}"), env=env))
    cells = len(models) * len(seeds)
    row = {
        "cells": cells, "models": models, "seeds": seeds, "options": OPTIONS,
        "by_hand_seconds": round(hand, 1), "study_seconds": round(study, 1), "study_over_hand": round(study / hand, 3),
        "one_cell_local_seconds": [round(s, 1) for s in one["local"]],
        "one_cell_submitit_seconds": [round(s, 1) for s in one["submitit"]],
        "submitit_overhead_per_cell_seconds": round(statistics.median(one["submitit"]) - statistics.median(one["local"]), 1),
    }
    print(row)
    write_json("study", row)


if __name__ == "__main__":
    main()
