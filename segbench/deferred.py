"""A factory that imports its module on first call, so registering a plugin does not pay for torch."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class deferred:  # noqa: N801 - used like a function: factory=deferred("pkg.module:function")
    """`deferred("pkg.module:name")(*args)` imports pkg.module when called and calls its `name` (a dotted
    name reaches an attribute, such as a classmethod: "pkg.module:Class.build"); picklable, so a spec holding
    it travels to other processes."""

    target: str

    def __post_init__(self) -> None:
        if self.target.count(":") != 1:
            raise ValueError(f"deferred target {self.target!r}: give 'module:name'")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, name = self.target.split(":")
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
        return found(*args, **kwargs)
