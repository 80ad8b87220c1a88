"""A model's hyperparameters: declared with a type once, parsed once from `--set` text, and read back
from config.json by that type (JSON turns tuples into lists).

A plugin declares them as the fields of a dataclass (`ModelSpec.schema`, e.g. the diffusion plugin's
`DiffusionHyperparameters`); without one, each key's type is the type of its preset value, as llm's
`Options` infer nothing but segbench must still parse `--set`. Types: bool, int, float, str,
tuple[int, ...], `X | None` of those, and Any (a Python literal, or else text).
"""

from __future__ import annotations

import ast
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

RUN_FIELDS = ("image_size",)  # schema fields the run fills in, not hyperparameters a preset or --set sets


def schema_kinds(schema: type) -> dict[str, Any]:
    """Hyperparameter name -> declared type, in the dataclass's field order (run fields left out)."""
    hints = typing.get_type_hints(schema)
    return {f.name: hints[f.name] for f in fields(schema) if f.name not in RUN_FIELDS}


def inferred_kinds(values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameter name -> the type of its preset value (None and other values: Any)."""
    def kind(value: Any) -> Any:
        if isinstance(value, (bool, int, float, str)):
            return type(value)
        if isinstance(value, tuple):
            return tuple[Any, ...]
        return Any

    return {key: kind(value) for key, value in values.items()}


def _optional(kind: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the type without None)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(rest) == 1:
            return True, rest[0]
    return False, kind


def describe(kind: Any) -> str:
    """What a value of `kind` looks like, in words."""
    optional, inner = _optional(kind)
    if typing.get_origin(inner) is tuple:
        text = "a comma-separated list of integers" if typing.get_args(inner)[0] is int else "a comma-separated list"
    else:
        text = {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(inner, "a Python literal")
    return f"{text}, or none" if optional else text


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "2.00" and "1e3" are integers too
        if not number.is_integer():
            raise ValueError("not an integer") from None
        return int(number)


def parse(text: str, kind: Any) -> Any:
    """`--set` text as a value of `kind`; ValueError when it is not one."""
    optional, inner = _optional(kind)
    stripped = text.strip()
    if optional and stripped.lower() in ("none", "null"):
        return None
    if inner is bool:
        lowered = stripped.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if inner is int:
        return _integer(stripped)
    if inner is float:
        return float(stripped)
    if inner is str:
        return text
    if typing.get_origin(inner) is tuple:
        element = typing.get_args(inner)[0]
        body = stripped[1:-1] if stripped[:1] in "([" and stripped[-1:] in ")]" else stripped
        return tuple(parse(part, element) for part in body.split(",") if part.strip())
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError):
        return text


def coerce(value: Any, kind: Any) -> Any:
    """A preset's or config.json's value as `kind` (lists become tuples); ValueError when it is not one."""
    optional, inner = _optional(kind)
    if value is None and (optional or inner is Any):
        return None
    if inner is bool and isinstance(value, bool):
        return value
    if inner is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if inner is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if inner is str and isinstance(value, str):
        return value
    if typing.get_origin(inner) is tuple and isinstance(value, (list, tuple)):
        element = typing.get_args(inner)[0]
        return tuple(coerce(v, element) for v in value)
    if inner is Any:
        return tuple(value) if isinstance(value, list) else value
    raise ValueError(f"expected {describe(kind)}, got {value!r}")
