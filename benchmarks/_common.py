"""Shared helpers for benchmark scripts: building a model at a preset, timing, environment facts, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

import segbench
from segbench.plan.build import plan_model
from segbench.plan.run_plan import ModelPlan
from segbench.plugins import Registry

RESULTS = Path(__file__).parent / "results"


def build(registry: Registry, name: str, preset: str, image_size: int = 64, sets: Mapping[str, str] | None = None,
          *, task: str | None = None, seed: int | None = None) -> tuple[Any, ModelPlan]:
    """Model `name` at `preset` as a run plans it: (the network its factory builds, its plan).

    `sets` are `--set`-style overrides as text (model hyperparameters and training settings, e.g.
    {"sampling_steps": "50", "epochs": "12"}); `task` picks the preset's task layer (None: none);
    with `seed`, torch.manual_seed(seed) before the factory (a run uses derive_seed("init", run seed, name)).
    """
    spec = registry.model(name)
    plan = plan_model(spec, name, preset, task, image_size, sets=sets)
    if seed is not None:
        torch.manual_seed(seed)
    return spec.factory(plan.factory_input(image_size)), plan


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def environment() -> dict[str, object]:
    return {
        "segbench": segbench.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "date": time.strftime("%Y-%m-%d"),
    }


def write_json(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **data}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
