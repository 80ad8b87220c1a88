"""Diffusion (DDIM), NCSN and score-SDE segmenters side by side at equal budgets of network evaluations.

    python benchmarks/score_formulations.py [--tasks lung,infection] [--seeds 0,1,2]
        [--models diff-add,ncsn-add,sde-add] [--set KEY=VALUE] [--tag=-SUFFIX] [--update]
        # results/score_formulations-<task><tag>.json

Per task and seed: one `segbench run` in the small preset (fresh cache) trains the
models and scores them at their default samplers. Each model's trained weights
(the run's checkpoints) are then sampled at two budgets of U-Net evaluations per
mask (NFE, `BUDGETS`), about 10 and about 50: DDIM 10 and 50 steps; annealed
Langevin over 20 levels with 1 or 2 steps each + the denoising step (21, 41);
probability-flow ODE with 5 or 25 Heun steps, the last Euler (9, 49). The
budget that is the model's default must reproduce the run's Dice. Training
decides most of the infection score and varies with the seed, so the
comparison is over several run seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import main_job
from _common import RESULTS, write_json
from segbench.data.prepare import SplitData, load_split
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.plugins import load_plugins
from segbench.protocol import bootstrap_seed, eval_subset, score
from segbench.results import RunResults, load_run, read_record
from segbench.results.trained import load_trained

# Two sampler settings per formulation, about 10 and about 50 NFE in the small preset ({}: the
# preset's own), as `--set` text. They change the sampler only: both sample the same trained network.
BUDGETS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "diff": ({}, {"sampling_steps": "50"}),  # DDIM: 10, 50
    "ncsn": ({"steps_per_level": "1"}, {}),  # 20 levels x n + 1: 21, 41 (fewer levels fail: see hyperparameters.py)
    "sde": ({}, {"sampling_steps": "25"}),  # Heun, 2 n - 1: 9, 49
}


def network_evaluations(hparams: Any) -> int:
    """Per mask, for a model's typed hyperparameters (its network's `hparams`)."""
    if hasattr(hparams, "network_evaluations"):  # NCSN, score-SDE
        return hparams.network_evaluations
    return hparams.timesteps if hparams.sampler == "ddpm" else hparams.sampling_steps  # diffusion


def resample(run_dir: Path, name: str, sets: dict[str, str], test: SplitData) -> dict[str, Any]:
    """Dice of `name`'s trained weights in `run_dir` sampled with the hyperparameter overrides `sets`
    (`--set` text) on the run's `test` split, as `segbench run` scores it."""
    registry = load_plugins()
    model, _, record = load_trained(run_dir, name, registry, sets)
    plan, cpu = record.plan, Runtime(torch.device("cpu"), "fp32")
    preds = predict_split(model, test, plan.evaluation, run_seed=plan.seed, runtime=cpu, model_name=name)
    dice = score(name, test.ids, preds.probabilities, test.tensors()[1], plan.evaluation.threshold,
                 {"dice": registry.metric("dice")}, bootstrap_seed(plan.seed)).by_metric["dice"]
    masks = len(test) * plan.evaluation.ensemble
    return {"nfe": network_evaluations(model.hparams), "dice": {k: round(float(v), 4) for k, v in dice.items()},
            "masks_per_second": round(masks / preds.seconds, 3)}


def whole_test_split(run_dir: Path) -> SplitData:
    """The whole test split of the run in `run_dir`, from the data cache."""
    plan = read_record(run_dir).plan
    dataset = load_plugins().dataset(plan.data.dataset)
    options = plan.data.options(plan.seed)
    return load_split(dataset, dataset.factory(options), options, "test")


def scored_split(run_dir: Path) -> SplitData:
    """The test images the run in `run_dir` scored (all, or its seeded `--eval-samples` subset), from the
    data cache."""
    plan = read_record(run_dir).plan
    test = whole_test_split(run_dir)
    index = eval_subset(len(test), plan.evaluation.samples, plan.seed)
    return test if index is None else test.subset(index)


def run_seed(task: str, models: str, seed: int, workdir: Path, sets: list[str]) -> dict[str, Any]:
    """One run at the default samplers (hyperparameters KEY=VALUE in `sets` for every model),
    then every model at both of its budgets."""
    workdir = workdir / f"seed{seed}"
    os.environ["SEGBENCH_CACHE"] = str(workdir / "cache")  # the run's data cache, read again by `scored_split`
    start = time.perf_counter()
    options = [option for key in sets for name in models.split(",") for option in ("--set", f"{name}.{key}")]
    row = main_job.run_task(task, models, workdir, "--preset", "small", "--seed", str(seed), *options)
    run = load_run(workdir / task)
    test = scored_split(run.path)
    results = {}
    for name, overrides in ((name, BUDGETS[name.split("-")[0]]) for name in models.split(",")):
        budgets = [resample(run.path, name, budget, test) for budget in overrides]
        default = budgets[overrides.index({})]  # the preset's sampler: as the run scored it
        if default["dice"] != run_dice(run, name):
            raise RuntimeError(f"{name}: the checkpoint sampled again does not give the run's Dice")
        results[name] = {"train_seconds": run.models[name].train_seconds, "budgets": budgets}
    return {"seed": seed, "command": row["command"], "wall_seconds": round(time.perf_counter() - start, 1),
            "models": results}


def run_dice(run: RunResults, name: str) -> dict[str, float]:
    """`name`'s Dice as the run scored it (its summary row), rounded as `resample` rounds."""
    dice = next(row for row in run.summary.itertuples(index=False) if row.model == name and row.metric == "dice")
    return {"mean": round(dice.mean, 4), "ci_low": round(dice.ci_low, 4), "ci_high": round(dice.ci_high, 4),
            "pooled": round(dice.pooled, 4)}


def across_seeds(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per model and budget: NFE and the per-image mean Dice of each seed, their mean, min and max."""
    summary = {}
    for name, first in runs[0]["models"].items():
        summary[name] = []
        for b, budget in enumerate(first["budgets"]):
            means = [run["models"][name]["budgets"][b]["dice"]["mean"] for run in runs]
            summary[name].append({"nfe": budget["nfe"], "dice_by_seed": means, "dice_mean": round(sum(means) / len(means), 4),
                                  "dice_min": min(means), "dice_max": max(means)})
    return summary


def write_task(task: str, runs: list[dict[str, Any]], update: bool, tag: str) -> None:
    """results/score_formulations-<task><tag>.json; with `update`, models not in `runs` are kept from the file."""
    models = {name: {"summary": summary, "runs": [{"seed": run["seed"], "command": run["command"], **run["models"][name]}
                                                  for run in runs]}
              for name, summary in across_seeds(runs).items()}
    path = RESULTS / f"score_formulations-{task}{tag}.json"
    if update and path.exists():
        models = {**json.loads(path.read_text())["models"], **models}
    write_json(path.stem, {"task": task, "models": models})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="lung,infection")
    parser.add_argument("--models", default="diff-add,ncsn-add,sde-add")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a hyperparameter for every model (repeatable), e.g. lr=1e-3")
    parser.add_argument("--tag", default="", help="suffix of the JSON file's name, e.g. --tag=-lr1e-3")
    parser.add_argument("--update", action="store_true", help="keep the file's results of other models")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            runs = []
            for seed in map(int, args.seeds.split(",")):
                runs.append(run_seed(task, args.models, seed, Path(tmp), args.set))
                print(json.dumps(runs[-1]), flush=True)
            write_task(task, runs, args.update, args.tag)


if __name__ == "__main__":
    main()
