"""Resolve what a run uses: presets, per-model hyperparameters and `--set` overrides."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from segbench.errors import SegbenchError
from segbench.specs import PRESETS, ModelSpec

PRESET_CHOICES = ("auto", *PRESETS)


def resolve_preset(preset: str, device_type: str) -> str:
    """`auto` is `paper` on CUDA and `small` elsewhere."""
    if preset not in PRESET_CHOICES:
        raise SegbenchError(f"unknown preset {preset!r}; valid: {', '.join(PRESET_CHOICES)}")
    if preset == "auto":
        return "paper" if device_type == "cuda" else "small"
    return preset


def parse_value(text: str, default: Any) -> Any:
    """Parse `text` as the type of `default` (bool, int, float, tuple, str)."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, (tuple, list)):
        value = ast.literal_eval(text if text.strip().startswith(("(", "[")) else f"({text},)")
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if default is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


def parse_sets(items: Sequence[str], model_names: Sequence[str]) -> dict[str, dict[str, str]]:
    """`["diff-add.sampling_steps=25"]` -> {"diff-add": {"sampling_steps": "25"}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = item.partition("=")
        model, dot, key = target.rpartition(".")
        if not sep or not dot or not model or not key:
            raise SegbenchError(f"--set {item!r} is not of the form MODEL.KEY=VALUE (e.g. diff-add.sampling_steps=25)")
        if model not in model_names:
            raise SegbenchError(f"--set {item!r} names model {model!r}, which is not in --models ({', '.join(model_names)})")
        out.setdefault(model, {})[key] = value
    return out


def model_params(
    spec: ModelSpec,
    name: str,
    preset: str,
    task: str,
    overrides: Mapping[str, Any],
    sets: Mapping[str, str],
) -> dict[str, Any]:
    """Hyperparameters of one model: preset (and preset/task), then global overrides, then `--set`.

    `--set` may also change an engine setting the preset leaves at its default (e.g. explode_factor).
    """
    from segbench.engine.training import TrainConfig

    params = spec.hyperparameters(preset, task)
    params.update({k: v for k, v in overrides.items() if v is not None})
    engine = TrainConfig().as_dict()
    for key, text in sets.items():
        if key not in params and key not in engine:
            valid = ", ".join(sorted({*params, *engine}))
            raise SegbenchError(f"--set {name}.{key}: {name} has no hyperparameter {key!r}; valid: {valid}")
        try:
            params[key] = parse_value(text, params.get(key, engine.get(key)))
        except (ValueError, SyntaxError) as exc:
            raise SegbenchError(
                f"--set {name}.{key}={text!r}: expected a value like {params.get(key, engine.get(key))!r} ({exc})"
            ) from None
    problem = TrainConfig.from_params(params).problem()
    if problem:
        raise SegbenchError(f"hyperparameter {name}.{problem}; change it with --set {name}.KEY=VALUE")
    if spec.prefix:
        params["variant"] = name.split(":", 1)[1]
    return params
