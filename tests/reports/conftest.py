"""Report fixtures: a literal results table, synthetic run directories, and one real toy run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from segbench.metrics import EMPTY_MASK_POLICY, confusion_counts, summarise
from segbench.metrics.builtin import BUILTIN_METRICS
from segbench.metrics.statistics import per_image
from segbench.results import ModelRecord, RunRecord, RunResults, RunStore
from segbench.specs import MetricSpec

SAMPLES = [f"test/{i}" for i in range(6)]
DICE = {
    "unet": [0.91, 0.85, 0.78, 0.95, 0.88, 0.70],
    "diff-add": [0.93, 0.86, 0.81, 0.94, 0.90, 0.76],
    "smp:FPN:res_net": [0.80, 0.82, 0.75, 0.90, 0.86, 0.71],
}
# model -> metric -> (mean, ci_low, ci_high, pooled); diff-add and unet tie on pooled balanced_accuracy.
SUMMARY = {
    "unet": {"dice": (0.845, 0.7783, 0.9067, 0.8512), "jaccard": (0.7378, 0.6412, 0.8302, 0.7409),
             "balanced_accuracy": (0.9311, 0.9002, 0.9587, 0.93214)},
    "diff-add": {"dice": (0.8667, 0.8083, 0.9183, 0.87), "jaccard": (0.7695, 0.6801, 0.8493, 0.7701),
                 "balanced_accuracy": (0.9401, 0.9123, 0.9650, 0.93206)},
    "smp:FPN:res_net": {"dice": (0.8067, 0.7633, 0.8533, 0.8101), "jaccard": (0.6789, 0.6172, 0.7443, 0.6802),
                        "balanced_accuracy": (0.9012, 0.8750, 0.9275, 0.9020)},
}


def literal_results() -> RunResults:
    """A fixed small results table: three models with results and one that failed."""
    rows = []
    for model, dice in DICE.items():
        for sample_id, d in zip(SAMPLES, dice):
            rows.append({"model": model, "sample_id": sample_id, "tp": 100, "fp": 10, "fn": 8, "tn": 3978,
                         "dice": d, "jaccard": d / (2 - d), "balanced_accuracy": 0.5 + d / 2})
    summary = pd.DataFrame([{"model": model, "metric": metric, "mean": v[0], "ci_low": v[1], "ci_high": v[2],
                             "pooled": v[3]} for model, metrics in SUMMARY.items() for metric, v in metrics.items()])
    config = {
        "task": "infection", "dataset": "cxr-phantom", "models": ["unet", "diff-add", "smp:FPN:res_net", "ncsn-add"],
        "preset": "small", "preset_requested": "auto", "seed": 0, "train_samples": 480, "eval_samples_used": 6,
        "image_size": 64, "ensemble": 1, "threshold": 0.5, "empty_mask_policy": EMPTY_MASK_POLICY, "device": "cpu",
        "versions": {"segbench": "0.1.0", "torch": "2.4.0", "python": "3.11.7"},
        "hyperparameters": {
            "unet": {"decoder_channels": [256, 128, 64, 32, 16], "epochs": 20, "batch_size": 16, "lr": 0.001},
            "diff-add": {"base_channels": 32, "sampler": "ddim", "sampling_steps": 10, "epochs": 40,
                         "batch_size": 16, "lr": 0.002},
            "smp:FPN:res_net": {"epochs": 20, "batch_size": 16, "lr": 0.001},
            "ncsn-add": {"epochs": 40, "batch_size": 16, "lr": 0.002},
        },
    }
    models = {
        "unet": {"status": "done", "parameters": 14_330_000, "epochs": 20, "losses": [0.9, 0.5, 0.3],
                 "train_seconds": 121.4, "masks_per_second": 410.2},
        "diff-add": {"status": "done", "parameters": 2_150_000, "epochs": 40, "losses": [0.2, 0.08, 0.05],
                     "train_seconds": 812.9, "masks_per_second": 12.5},
        "smp:FPN:res_net": {"status": "done", "parameters": 23_100, "epochs": 20, "losses": [0.7, 0.4],
                            "train_seconds": 98.0, "masks_per_second": 388.0},
        "ncsn-add": {"status": "failed", "parameters": 2_150_000, "error": "training diverged: loss is nan"},
    }
    # config.json as segbench wrote it before format 2 (old run directories still report), with the note a
    # synthetic dataset gives today
    record = replace(RunRecord.from_json(config), dataset_synthetic="synthetic chest X-ray phantoms, not patient data")
    return RunResults(Path("runs/literal"), record, pd.DataFrame(rows), summary,
                      {name: ModelRecord.from_json(entry) for name, entry in models.items()})


def results_with(models: int) -> RunResults:
    """literal_results' unet, repeated under `models` long names (as a study's labels are)."""
    results = literal_results()
    names = [f"diff-add-ddim50-{i}" for i in range(models)]
    for frame in ("summary", "per_image"):
        table = getattr(results, frame)
        setattr(results, frame, pd.concat([table[table["model"] == "unet"].assign(model=n) for n in names],
                                          ignore_index=True))
    plan = results.record.plan
    unet = plan.model("unet")
    results.record = replace(results.record, plan=replace(plan, models=tuple(replace(unet, name=n) for n in names)))
    results.models = {n: results.models["unet"] for n in names}
    return results


def builtin_metrics() -> dict[str, MetricSpec]:
    return {fn.__name__: MetricSpec(fn.__name__, fn, "") for fn in BUILTIN_METRICS}


def write_run(path: Path, models: dict[str, float], *, dataset: str = "toy", seed: int = 0, n: int = 8,
              size: int = 16, reference: bool = True, uncertainty: bool = False) -> Path:
    """A synthetic run directory written the way `segbench run` writes one; models maps name -> noise level."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y, x = rng.integers(1, size // 2, 2)
        masks[i, y : y + size // 3, x : x + size // 3] = 1
    images = (60 + 120 * masks + rng.integers(0, 40, masks.shape)).astype(np.uint8)
    ids = [f"test/{i}" for i in range(n)]
    store = RunStore(path)
    metrics = builtin_metrics()
    for model, noise in models.items():
        probabilities = np.clip(masks + rng.normal(0, noise, masks.shape), 0, 1).astype(np.float32)
        counts = confusion_counts(torch.from_numpy(probabilities), torch.from_numpy(masks), 0.5)
        frame = pd.DataFrame({"model": model, "sample_id": ids, **{k: v.numpy() for k, v in counts._asdict().items()}})
        values = per_image(counts, metrics)
        for name, column in values.items():
            frame[name] = column
        summary = summarise(values, counts, metrics, seed=seed)
        store.write_model_results(model, frame, pd.DataFrame([{"model": model, "metric": m, **s}
                                                              for m, s in summary.items()]))
        store.write_predictions(model, ids, probabilities,
                                rng.uniform(0, noise, masks.shape).astype(np.float32) if uncertainty else None)
    if reference:
        store.write_reference(ids, images, masks)
    return _write_records(path, list(models), dataset=dataset, seed=seed, n=n, size=size)


def _write_records(path: Path, models: list[str], *, dataset: str, seed: int, n: int, size: int) -> Path:
    """config.json and models.json as segbench wrote them before format 2: old run directories still report."""
    (path / "config.json").write_text(json.dumps({
        "task": "lung", "dataset": dataset, "models": models, "preset": "tiny", "preset_requested": "tiny",
        "seed": seed, "train_samples": 24, "eval_samples_used": n, "image_size": size, "ensemble": 1,
        "threshold": 0.5, "empty_mask_policy": EMPTY_MASK_POLICY, "device": "cpu", "versions": {"segbench": "0.1.0"},
        "hyperparameters": {m: {"epochs": 2, "batch_size": 4, "lr": 0.01} for m in models},
    }))
    info = {m: {"status": "done", "parameters": 1000, "epochs": 2, "losses": [0.6, 0.3], "train_seconds": 1.5,
                "masks_per_second": 100.0} for m in models}
    (path / "models.json").write_text(json.dumps(info))
    return path


GROUPS = ("alpha", "beta", "gamma")


def scored_run(path: Path, models: dict[str, float], *, n: int = 30, size: int = 24, seed: int = 0,
               uncertainty: tuple[str, ...] = ()) -> Path:
    """A run directory scored as `segbench run` scores one now (segbench.protocol.score, every built-in
    metric): every third image has an empty reference, each image a metadata `group`; models maps name ->
    noise level; the models in `uncertainty` store an uncertainty map."""
    from segbench.plugins import load_plugins
    from segbench.protocol import bootstrap_seed, score

    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        if i % 3:
            y, x = rng.integers(1, size // 2, 2)
            masks[i, y : y + size // 3, x : x + size // 2] = 1
    images = (60 + 120 * masks + rng.integers(0, 40, masks.shape)).astype(np.uint8)
    ids = [f"test/{i}" for i in range(n)]
    registry = load_plugins()
    metrics = {name: registry.metric(name) for name in registry.names("metrics")}
    metadata = {"group": [GROUPS[i % 5 % 3] for i in range(n)]}
    store = RunStore(path)
    for model, noise in models.items():
        probabilities = np.clip(masks + rng.normal(0, noise, masks.shape), 0, 1).astype(np.float32)
        scores = score(model, ids, probabilities, masks, 0.5, metrics, bootstrap_seed(seed), metadata)
        store.write_model_results(model, scores.per_image, scores.summary)
        spread = np.abs(probabilities - 0.5) if model in uncertainty else None
        store.write_predictions(model, ids, probabilities, None if spread is None else (0.5 - spread).astype(np.float32))
    store.write_reference(ids, images, masks)
    return _write_records(path, list(models), dataset="toy", seed=seed, n=n, size=size)


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `segbench run` of the toy plugin's model (ensemble of 2, so it stores an uncertainty map)."""
    from typer.testing import CliRunner

    from segbench import cli

    out = tmp_path_factory.mktemp("reports") / "toy"
    result = CliRunner().invoke(cli.app, [
        "--plugin", "tests.toy_plugin", "run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn",
        "--quiet", "--image-size", "32", "--ensemble", "2", "--epochs", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
