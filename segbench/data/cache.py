"""On-disk cache of prepared splits: plain .npz of uint8 arrays, never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from segbench.io import atomic_save

CACHE_FORMAT = 1


def cache_dir() -> Path:
    """`$SEGBENCH_CACHE`, else `$XDG_CACHE_HOME/segbench`, else `~/.cache/segbench`."""
    if os.environ.get("SEGBENCH_CACHE"):
        return Path(os.environ["SEGBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "segbench"


def cache_path(dataset: str, task: str, split: str, size: int, fingerprint: str) -> Path:
    key = json.dumps([CACHE_FORMAT, dataset, task, split, size, fingerprint])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return cache_dir() / f"{dataset}-{task}-{split}-{size}-{digest}.npz"


def read(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or unreadable (a stale or broken file is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in ("ids", "images", "masks")}
    except (OSError, ValueError, KeyError):
        return None


def write(path: Path, ids: list[str], images: np.ndarray, masks: np.ndarray) -> None:
    atomic_save(path, lambda f: np.savez(f, ids=np.array(ids, dtype=str), images=images, masks=masks))
