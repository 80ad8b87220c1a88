"""Tracker overhead per training step, measured side by side.

End to end: `segbench run` (phantom lungs, two epochs) in alternating rounds, without the trackers plugin
(no on_train_step implementation: what the runner does when no plugin listens), with it but no --track
(the default), and with --track tensorboard, mlflow and both; the median of each variant's training
seconds per step (models.json, which times the training loop only), as a ratio to the run without the
plugin. And the hook alone: microseconds per on_train_step call with each variant's trackers active, over
an epoch of many calls, and that epoch's end (where MLflow waits for the metrics its sender thread has not
stored yet).

    python benchmarks/trackers.py [--rounds 3] [--calls 3000] [--small]   # writes benchmarks/results/trackers.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import write_json
from segbench.engine.training import TrainingStep
from segbench.plan.request import RunRequest
from segbench.plugins import load_plugins
from segbench.progress import Progress
from segbench.reports.compose import write_run_report
from segbench.results import read_models, read_record
from segbench.runner import run

VARIANTS = {"no hook": None, "off": (), "tensorboard": ("tensorboard",), "mlflow": ("mlflow",),
            "both": ("tensorboard", "mlflow")}
# (model, preset, image size). diff-add tiny (0.09 M parameters, batch 8) has a fast step, so the trackers'
# share is near its largest; `--small` adds the U-Net baseline of the small preset (24 M parameters, batch
# 16), a step of the CPU default.
WORKLOADS = {"diff-add tiny 32x32": ("diff-add", "tiny", 32)}
SMALL = {"unet small 64x64": ("unet", "small", 64)}


def registries():
    """(the registry without the trackers plugin, the registry with it)."""
    os.environ["SEGBENCH_DISABLE_PLUGINS"] = "trackers"
    without = load_plugins()
    del os.environ["SEGBENCH_DISABLE_PLUGINS"]
    return without, load_plugins()


def step_seconds(registry, model: str, preset: str, size: int, track: tuple[str, ...], out: Path) -> float:
    """Training seconds per optimiser step of a two-epoch run (models.json times the training loop only)."""
    request = RunRequest(task="lung", models=[model], preset=preset, image_size=size, epochs=2, eval_samples=1,
                         device="cpu", out=str(out), track=list(track))
    run(request, registry, Progress(quiet=True), write_run_report)
    trained = read_models(out)[model]
    return trained.train_seconds / trained.steps


def end_to_end(rounds: int, work: Path, workloads: dict[str, tuple[str, str, int]]) -> dict[str, dict]:
    without, with_plugin = registries()
    results = {}
    for workload, (model, preset, size) in workloads.items():
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for r in range(rounds):
            for name, track in VARIANTS.items():
                out = work / f"{model}-{preset}-{name}-{r}"
                registry = without if track is None else with_plugin
                times[name].append(step_seconds(registry, model, preset, size, track or (), out))
                shutil.rmtree(out)
                print(f"{workload}, round {r + 1}, {name}: {times[name][-1] * 1e3:.2f} ms/step")
        base = statistics.median(times["no hook"])
        results[workload] = {name: {"ms_per_step": statistics.median(t) * 1e3, "ratio": statistics.median(t) / base,
                                    "rounds_ms": [x * 1e3 for x in t]} for name, t in times.items()}
    return results


def hook_alone(calls: int, work: Path) -> dict[str, dict[str, float]]:
    """Per variant, microseconds per on_train_step notification (the runner's call) over an epoch of `calls`
    steps, and the epoch's end (where MLflow waits for its sends) in milliseconds."""
    _, registry = registries()
    model, preset, size = WORKLOADS["diff-add tiny 32x32"]
    template = work / "template"
    step_seconds(registry, model, preset, size, (), template)  # a finished run the trackers can start on
    record = read_record(template)
    result = {"no hook": {"us_per_step": 0.0, "epoch_end_ms": 0.0}}
    for name, track in VARIANTS.items():
        if track is None:
            continue
        run_dir = work / f"hook-{name}"
        shutil.copytree(template, run_dir)
        registry.notify("on_run_start", run_dir=str(run_dir), record=replace(record, plan=replace(record.plan,
                                                                                                   track=track)))
        registry.notify("on_train_step", model_name=model, step=TrainingStep(0, 0, 1, calls, 0.5, 1e-3))  # opens
        start = time.perf_counter()
        for i in range(1, calls + 1):
            registry.notify("on_train_step", model_name=model, step=TrainingStep(0, i, i + 1, calls, 0.5, 1e-3))
        steps_done = time.perf_counter()
        registry.notify("on_epoch_end", model_name=model, epoch=1, metrics={"loss": 0.5})
        result[name] = {"us_per_step": (steps_done - start) / calls * 1e6,
                        "epoch_end_ms": (time.perf_counter() - steps_done) * 1e3}
        registry.notify("on_run_end", run_dir=str(run_dir))
        print(f"hook alone, {name}: {result[name]['us_per_step']:.1f} µs/step, epoch end "
              f"{result[name]['epoch_end_ms']:.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--small", action="store_true", help="also the small preset's unet (minutes per round)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        hook = hook_alone(args.calls, work)
        runs = end_to_end(args.rounds, work, {**WORKLOADS, **(SMALL if args.small else {})})
    write_json("trackers", {"rounds": args.rounds, "calls": args.calls, "hook_alone": hook, "end_to_end": runs})


if __name__ == "__main__":
    main()
