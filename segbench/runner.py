"""`segbench run`: train every model, evaluate them on identical samples, write the run directory."""

from __future__ import annotations

import contextlib
import json
import math
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import segbench
from segbench.config import model_params, parse_sets, resolve_preset
from segbench.data import SplitData, load_split
from segbench.engine.compiling import compile_children, compile_seconds
from segbench.engine.device import describe, eval_batch_cap, resolve_device, resolve_precision
from segbench.engine.evaluation import predict_split
from segbench.engine.seeding import derive_seed, seed_everything
from segbench.engine.training import TrainConfig, TrainingDiverged, train
from segbench.errors import SegbenchError
from segbench.io import WriteError, atomic_write_text
from segbench.io.lock import run_lock
from segbench.metrics import EMPTY_MASK_POLICY, confusion_counts
from segbench.metrics.statistics import per_image, summarise
from segbench.plugins import Registry
from segbench.progress import Progress
from segbench.results import RunStore, load_run
from segbench.results.chunks import PredictionLog
from segbench.results.rescore import bootstrap_seed
from segbench.results.store import COUNT_COLUMNS

THRESHOLD = 0.5
MAX_IMAGE_SIZE = 4096  # a typo such as 64000 would otherwise end in an out-of-memory error


@dataclass
class RunRequest:
    """Everything `segbench run` was asked for (the CLI's options, unresolved)."""

    task: str
    models: list[str]
    dataset: str = "cxr-phantom"
    data_root: str | None = None
    preset: str = "auto"
    seed: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    eval_samples: int | None = None
    eval_batch_size: int | None = None  # None: eval_batch_cap(device)
    ensemble: int = 1
    image_size: int = 64
    device: str = "auto"
    out: str | None = None
    resume: bool = False
    sets: list[str] = field(default_factory=list)
    compile: bool = False
    precision: str = "auto"
    checkpoint_every: float = 300.0
    mask_threshold: int | None = None


def _git_sha() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(segbench.__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _versions() -> dict[str, str]:
    return {"segbench": segbench.__version__, "torch": torch.__version__, "python": platform.python_version()}


def _check_request(request: RunRequest, registry: Registry) -> None:
    """Fail fast, before any work, on anything the user can fix."""
    if not request.models:
        raise SegbenchError(f"--models is empty; valid: {', '.join(registry.names('models'))}")
    if len(set(request.models)) != len(request.models):
        raise SegbenchError(f"--models lists a model twice: {','.join(request.models)}")
    for name in request.models:
        registry.model(name)
    spec = registry.dataset(request.dataset)
    if request.task not in spec.tasks:
        raise SegbenchError(f"dataset {spec.name!r} does not serve task {request.task!r}; valid: {', '.join(spec.tasks)}")
    if spec.needs_root:
        if not request.data_root:
            raise SegbenchError(f"dataset {spec.name!r} needs --data-root (the folder holding the data)")
        if not Path(request.data_root).expanduser().is_dir():
            raise SegbenchError(f"--data-root {request.data_root} is not a folder")
    for option, value in (("--eval-samples", request.eval_samples), ("--epochs", request.epochs),
                          ("--batch-size", request.batch_size), ("--eval-batch-size", request.eval_batch_size)):
        if value is not None and value < 1:
            raise SegbenchError(f"{option} must be at least 1, got {value}")
    if request.ensemble < 1:
        raise SegbenchError(f"--ensemble must be at least 1, got {request.ensemble}")
    if request.lr is not None and not (request.lr > 0 and math.isfinite(request.lr)):
        raise SegbenchError(f"--lr must be a positive finite number, got {request.lr}")
    if not (request.checkpoint_every >= 0 and math.isfinite(request.checkpoint_every)):
        raise SegbenchError(f"--checkpoint-every must be a number of seconds >= 0, got {request.checkpoint_every}")
    if request.mask_threshold is not None and not 0 <= request.mask_threshold < 255:
        raise SegbenchError(f"--mask-threshold must be a mask value from 0 to 254, got {request.mask_threshold}")
    if not 16 <= request.image_size <= MAX_IMAGE_SIZE:
        raise SegbenchError(f"--image-size must be from 16 to {MAX_IMAGE_SIZE}, got {request.image_size}")


def _prepare_out(request: RunRequest, held: contextlib.ExitStack) -> RunStore:
    """The run directory, created and locked (the lock is released when `held` closes)."""
    out = Path(request.out or f"runs/{request.task}-{time.strftime('%Y%m%d-%H%M%S')}")
    store = RunStore(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        held.enter_context(run_lock(out))  # creating the lock file also proves the folder writable
    except OSError as exc:
        raise SegbenchError(f"--out {out} is not writable: {exc.strerror or exc}") from None
    if store.file("config.json").exists() and not request.resume:
        raise SegbenchError(f"{out} already holds a run; add --resume to continue it, or choose another --out")
    return store


def _starts_fresh(request: RunRequest, store: RunStore, progress: Progress) -> bool:
    """Whether --resume found nothing to continue (a requeued job killed before config.json): it starts the run,
    as nnU-Net's --c does."""
    if request.resume and not store.file("config.json").exists():
        progress.log(f"--resume: {store.path} holds no run yet; starting it")
        return True
    return False


def _eval_subset(test: SplitData, request: RunRequest) -> SplitData:
    """The whole test split, or a seeded subset of --eval-samples (same for every model)."""
    if request.eval_samples is None or request.eval_samples >= len(test):
        return test
    rng = np.random.default_rng(derive_seed("eval-subset", request.seed) % 2**63)
    return test.subset(np.sort(rng.choice(len(test), size=request.eval_samples, replace=False)))


def run(request: RunRequest, registry: Registry, progress: Progress) -> Path:
    """Execute a run; returns its directory. Models that fail are recorded and the others go on.

    The run directory is locked while the run uses it. Everything is committed as it is made
    (checkpoints, prediction batches, each model's results), so after a kill or a failed write
    the same command with --resume finishes the run with the results an uninterrupted one gives.
    """
    with contextlib.ExitStack() as held:
        try:
            return _run(request, registry, progress, held)
        except WriteError as exc:
            raise WriteError(f"{exc}; what was written before is kept: free space (or make the folder "
                             "writable), then rerun the same command with --resume") from exc


def _run(request: RunRequest, registry: Registry, progress: Progress, held: contextlib.ExitStack) -> Path:
    _check_request(request, registry)
    device = resolve_device(request.device)
    if request.eval_batch_size is None:  # recorded resolved in config.json
        request = replace(request, eval_batch_size=eval_batch_cap(device))
    precision = resolve_precision(request.precision, device)
    preset = resolve_preset(request.preset, device.type)
    sets = parse_sets(request.sets, request.models)
    overrides = {"epochs": request.epochs, "batch_size": request.batch_size, "lr": request.lr}
    params = {
        name: model_params(registry.model(name), name, preset, request.task, overrides, sets.get(name, {}))
        for name in request.models
    }
    models = {name: _build(registry, name, params[name], request) for name in request.models}

    dataset = registry.dataset(request.dataset)
    options = segbench.DatasetOptions(
        task=request.task,
        root=Path(request.data_root).expanduser() if request.data_root else None,
        size=request.image_size,
        seed=request.seed,
        mask_threshold=request.mask_threshold,
    )
    store = _prepare_out(request, held)
    if _starts_fresh(request, store, progress):
        request = replace(request, resume=False)
    progress.log(f"preparing {dataset.name} ({request.task}, {request.image_size}x{request.image_size})")
    source = dataset.factory(options)
    train_data = load_split(dataset, source, options, "train")
    test_data = _eval_subset(load_split(dataset, source, options, "test"), request)

    config = {
        "command": " ".join(sys.argv) if sys.argv else "",
        **{k: v for k, v in asdict(request).items() if k not in ("preset", "precision")},
        "preset_requested": request.preset,
        "preset": preset,
        "precision_requested": request.precision,
        "precision": precision,
        "device": describe(device),
        "threshold": THRESHOLD,
        "empty_mask_policy": EMPTY_MASK_POLICY,
        "train_samples": len(train_data),
        "eval_samples_used": len(test_data),
        "hyperparameters": params,
        "plugins": {name: registry.model(name).plugin for name in request.models},
        "versions": _versions(),
        "git_sha": _git_sha(),
    }
    if request.resume:
        _check_resume(store, config)
    store.write_json("config.json", config)
    registry.notify("on_run_start", run_dir=str(store.path), config=config)

    status = store.read_json("models.json")
    metrics = {name: registry.metric(name) for name in registry.names("metrics")}
    for name, model in models.items():
        if request.resume and status.get(name, {}).get("status") == "done":
            progress.log(f"{name}: already done, skipped")
            continue
        status[name] = _run_model(name, model, params[name], train_data, test_data, request, device,
                                  store, metrics, registry, progress)
        if status[name]["status"] != "done":
            store.mark_failed(name, status[name]["error"], list(metrics))
        store.write_json("models.json", status)
        if status[name]["status"] == "done":  # only now: a kill before this reuses the committed batches
            shutil.rmtree(_partial_dir(store, name), ignore_errors=True)
            with contextlib.suppress(OSError):  # partial/ goes once no model has batches there
                store.file("partial").rmdir()
    higher = {name: spec.higher_is_better for name, spec in metrics.items()}
    report = registry.format("md").render(load_run(store.path), {"higher_is_better": higher})
    atomic_write_text(store.file("report.md"), report)
    registry.notify("on_run_end", run_dir=str(store.path))
    return store.path


def _partial_dir(store: RunStore, name: str) -> Path:
    """Where `name`'s committed prediction batches wait until its results are written."""
    return store.file(f"partial/{name.replace(':', '_')}")


RESUME_KEYS = ("task", "dataset", "models", "seed", "preset", "precision", "image_size", "ensemble",
               "hyperparameters", "eval_samples", "mask_threshold")


def as_json(value: Any) -> Any:
    """`value` as config.json holds it once read back (tuples become lists): the one form settings compare in."""
    return json.loads(json.dumps(value, default=str))


def first_difference(old: Any, new: Any, path: str) -> str | None:
    """The first key path at which two JSON values differ, as "path: old -> new"; None when equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            found = first_difference(old.get(key), new.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if old == new else f"{path}: {json.dumps(old)} -> {json.dumps(new)}"


def _check_resume(store: RunStore, config: dict[str, Any]) -> None:
    """--resume continues the same run: the settings that shape results must match (compared as JSON)."""
    old, new = store.read_json("config.json"), as_json(config)
    changed = [found for k in RESUME_KEYS if k in old and (found := first_difference(old[k], new.get(k), k))]
    if changed:
        raise SegbenchError(
            f"--resume: {store.path} was run with different settings ({'; '.join(changed)}); "
            "use the same options or another --out"
        )


def _build(registry: Registry, name: str, params: dict[str, Any], request: RunRequest) -> torch.nn.Module:
    spec = registry.model(name)
    torch.manual_seed(derive_seed("init", request.seed, name))
    try:
        model = spec.factory({**params, "image_size": request.image_size})
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is reported with its name
        raise SegbenchError(f"model {name!r} (plugin {spec.plugin!r}) failed to build: {type(exc).__name__}: {exc}") from exc
    if request.compile:
        compile_children(model)
    return model


def _run_model(
    name: str,
    model: torch.nn.Module,
    params: dict[str, Any],
    train_data: SplitData,
    test_data: SplitData,
    request: RunRequest,
    device: torch.device,
    store: RunStore,
    metrics: dict,
    registry: Registry,
    progress: Progress,
) -> dict[str, Any]:
    """Train, predict and score one model; returns its models.json entry."""
    config = TrainConfig.from_params(params)
    info: dict[str, Any] = {"status": "failed", "parameters": sum(p.numel() for p in model.parameters())}
    seed = derive_seed("model", request.seed, name)
    safe_name = name.replace(":", "_")
    log = PredictionLog(_partial_dir(store, name))
    plugin = registry.model(name).plugin
    compiled_before = compile_seconds() if request.compile else None
    try:
        with progress.task(f"{name} train", total=config.epochs) as bar:
            state = train(
                model, train_data, config, seed=seed, device=device,
                checkpoint_dir=store.file(f"checkpoints/{safe_name}"), resume=request.resume,
                checkpoint_seconds=request.checkpoint_every, precision=request.precision,
                on_step=lambda e, s, n, loss: bar.step(e + (s + 1) / n, loss=loss),
                on_epoch=lambda e, loss: registry.notify("on_epoch_end", model=name, epoch=e + 1, metrics={"loss": loss}),
            )
        info.update(epochs=state.epoch, losses=state.losses, train_seconds=round(state.seconds, 3))
        if (decay := config.ema_decay_used(len(train_data))) != config.ema_decay:
            info["ema_decay_used"] = decay
        if state.parts > 1:
            info["accumulation_parts"] = state.parts
            progress.log(f"{name}: training batches of {config.batch_size} did not fit GPU memory; gradients were "
                         f"accumulated over {state.parts} micro-batches (the same effective batch)")
        seed_everything(seed)
        with progress.task(f"{name} predict", total=len(test_data) * request.ensemble) as bar:
            preds = predict_split(
                model, test_data, run_seed=request.seed, ensemble=request.ensemble,
                batch_size=request.eval_batch_size, device=device, model_name=name,
                on_batch=lambda done, total: bar.step(done), log=log, precision=request.precision,
            )
        if compiled_before is not None and (compiled_after := compile_seconds()) is not None:
            info["compile_seconds"] = round(compiled_after - compiled_before, 3)  # inside train/predict seconds
    except TrainingDiverged as exc:
        progress.log(f"[red]model {name} failed[/]: training diverged: {exc}; its last good checkpoint "
                     f"checkpoints/{safe_name}/last.pt is kept, the run goes on")
        return {**info, "error": f"training diverged: {exc}"}
    except SegbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's bug must not lose the others' results
        error = f"plugin {plugin!r} raised {type(exc).__name__}: {exc}"
        progress.log(f"[red]model {name} failed[/]: {error}; the run goes on")
        return {**info, "error": error}
    _, masks = test_data.tensors()
    counts = confusion_counts(preds.probabilities, masks, THRESHOLD)
    per_image_frame = pd.DataFrame({"model": name, "sample_id": test_data.ids})
    for column, values in zip(COUNT_COLUMNS, counts):
        per_image_frame[column] = values.numpy()
    for metric, values in per_image(counts, metrics).items():
        per_image_frame[metric] = values
    summary = summarise(counts, metrics, seed=bootstrap_seed(asdict(request)))
    summary_frame = pd.DataFrame([{"model": name, "metric": m, **s} for m, s in summary.items()])
    store.write_predictions(
        name, test_data.ids, preds.probabilities[:, 0].numpy(),
        None if preds.uncertainty is None else preds.uncertainty[:, 0].numpy(),
    )
    store.write_reference(test_data.ids, test_data.images, test_data.masks)
    store.write_model_results(name, per_image_frame, summary_frame)
    registry.notify("on_evaluation_end", model=name, summary=summary)
    masks_sampled = len(test_data) * request.ensemble
    return {**info, "status": "done", "predict_seconds": round(preds.seconds, 3),
            "masks_per_second": round(masks_sampled / preds.seconds, 3) if preds.seconds > 0 else None}
