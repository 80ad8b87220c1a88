"""The settings block of a report: run-wide settings, and per model its preset, key hyperparameters and cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segbench.results import RunResults

MODEL_COLUMNS = ("Model", "Preset", "Epochs", "Batch size", "LR", "Parameters", "Training (s)", "Masks/s", "Status")
SYNTHETIC = {"cxr-phantom": "synthetic chest X-ray phantoms, not patient data"}


def _setting(results: RunResults, value: Callable[[dict[str, Any]], str]) -> str:
    """One setting across merged runs: its value, or each value with the models it applies to."""
    configs = {m: results.config_of(m) for m in results.model_names} or {"": results.config}
    by_value: dict[str, list[str]] = {}
    for model, config in configs.items():
        by_value.setdefault(value(config), []).append(model)
    if len(by_value) == 1:
        return next(iter(by_value))
    return "; ".join(f"{v} ({', '.join(models)})" for v, models in by_value.items())


def header_items(results: RunResults) -> list[tuple[str, str]]:
    """The settings a reader needs to interpret the numbers, as (label, value)."""
    c = results.config
    dataset = c.get("dataset", "")
    if dataset in SYNTHETIC:
        dataset += f" ({SYNTHETIC[dataset]})"

    def key(name: str) -> Callable[[dict[str, Any]], str]:
        return lambda config: str(config.get(name, ""))

    items = [
        ("Task", c.get("task", "")),
        ("Dataset", dataset),
        ("Preset", _setting(results, lambda x: f"{x.get('preset', '')} (requested: {x.get('preset_requested', '')})")),
        ("Seed", _setting(results, key("seed"))),
        ("Training images", _setting(results, key("train_samples"))),
        ("Evaluation images", _setting(results, key("eval_samples_used"))),
        ("Image size", _setting(results, lambda x: f"{x.get('image_size', '')}x{x.get('image_size', '')}")),
        ("Ensemble size", _setting(results, key("ensemble"))),
        ("Threshold", _setting(results, key("threshold"))),
        ("Empty-mask policy", _setting(results, key("empty_mask_policy"))),
        ("Device", _setting(results, key("device"))),
        ("Versions", _setting(results, lambda x: ", ".join(f"{k} {v}" for k, v in x.get("versions", {}).items()))),
    ]
    if "precision" in c:  # runs before --precision existed ran fp32 on the CPU, bf16 on CUDA
        items.insert(-1, ("Precision", _setting(
            results, lambda x: f"{x['precision']} (requested: {x['precision_requested']})" if "precision" in x
            else "not recorded")))
    if c.get("compile") or any(results.config_of(m).get("compile") for m in results.model_names):
        items.append(("torch.compile", _compile_setting(results)))
    capped = _recorded(results, "ema_decay_used")
    if capped:
        items.append(("EMA decay", ", ".join(f"{m}: {decay:.4g}" for m, decay in capped.items())
                      + " (the preset's, capped so that at most 1 % of the initial weights remain after training)"))
    split = _recorded(results, "accumulation_parts")
    if split:
        items.append(("Gradient accumulation", ", ".join(
            f"{m}: each training batch in {parts} micro-batches (GPU memory)" for m, parts in split.items())))
    if c.get("timings_omitted"):
        items.append(("Timings", "left out (--no-timings), so the report is reproducible byte for byte"))
    runs = list(dict.fromkeys(str(results.run_dir(m)) for m in results.model_names))
    if len(runs) > 1:
        items.append(("Runs", ", ".join(runs)))
    return items


def _recorded(results: RunResults, key: str) -> dict[str, Any]:
    """Per model, its models.json value for `key`, where it has one."""
    return {m: results.models[m][key] for m in results.model_names if key in results.models.get(m, {})}


def _compile_setting(results: RunResults) -> str:
    """"on"/"off" per run, and how long compiling took per model where recorded."""
    value = _setting(results, lambda x: "on" if x.get("compile") else "off")
    seconds = _recorded(results, "compile_seconds")
    if seconds:
        value += ("; compiling took " + ", ".join(f"{s:.1f} s ({m})" for m, s in seconds.items())
                  + ", included in the training time and masks/s")
    return value


def _count(n: int | None) -> str:
    """A parameter count: 1.23 M, 45.6 k or 789."""
    if not n:
        return "–"
    return f"{n / 1e6:.2f} M" if n >= 1e6 else (f"{n / 1e3:.1f} k" if n >= 1e3 else str(n))


def model_rows(results: RunResults) -> list[tuple[str, ...]]:
    """Per model, the MODEL_COLUMNS as text."""
    rows = []
    for name in results.model_names:
        info = results.models.get(name, {})
        config = results.config_of(name)
        params = config.get("hyperparameters", {}).get(name, {})
        count = info.get("parameters")
        rows.append((
            name,
            str(config.get("preset", "–")),
            str(info.get("epochs", params.get("epochs", "–"))),
            str(params.get("batch_size", "–")),
            f"{params['lr']:g}" if isinstance(params.get("lr"), (int, float)) else "–",
            _count(count),
            f"{info['train_seconds']:.1f}" if info.get("train_seconds") is not None else "–",
            f"{info['masks_per_second']:.2f}" if info.get("masks_per_second") else "–",
            "done" if info.get("status") == "done" else f"failed: {info.get('error', '')}",
        ))
    return rows


def hyperparameter_items(results: RunResults) -> list[tuple[str, str]]:
    """Per model, every resolved hyperparameter as "key=value, ..." (config.json "hyperparameters")."""
    items = []
    for name in results.model_names:
        params = results.config_of(name).get("hyperparameters", {}).get(name)
        if params:
            items.append((name, ", ".join(f"{k}={v}" for k, v in params.items())))
    return items
