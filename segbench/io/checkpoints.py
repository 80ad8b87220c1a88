"""Checkpoints: plain state dicts, written atomically, loaded with weights_only=True."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from segbench.errors import SegbenchError
from segbench.io import atomic_save


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_save(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load without unpickling arbitrary objects; anything else is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise SegbenchError(
            f"checkpoint {path} holds objects other than tensors and plain containers; refused "
            "(segbench loads checkpoints with weights_only=True, so a file cannot run code): delete it "
            "to train that model from scratch"
        ) from exc
    except (OSError, RuntimeError, EOFError) as exc:
        raise SegbenchError(f"checkpoint {path} cannot be read ({exc}); delete it to train that model from scratch") from exc
