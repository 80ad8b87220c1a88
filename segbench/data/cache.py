"""On-disk cache of prepared splits: plain .npz of uint8 arrays, never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from segbench.io import atomic_save, write_npz

CACHE_FORMAT = 2  # stored in every file too: a file of another format is rebuilt, never misread


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


def read(path: Path, size: int) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent. A file that is damaged, holds pickles, or comes from
    another segbench version is reported in one line and rebuilt (the caller writes it anew)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("format", "ids", "images", "masks")}
        n = len(arrays["ids"])
        if int(arrays["format"]) != CACHE_FORMAT:
            problem = f"is from another segbench version (cache format {int(arrays['format'])}, this one reads {CACHE_FORMAT})"
        elif arrays["images"].shape != (n, size, size) or arrays["masks"].shape != (n, size, size):
            problem = "does not hold the arrays it should"
        else:
            return arrays
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        problem = f"cannot be read ({type(exc).__name__}: {exc})"
    print(f"warning: cache file {path} {problem}; rebuilding it from the data", file=sys.stderr)
    return None


def write(path: Path, ids: list[str], images: np.ndarray, masks: np.ndarray) -> None:
    arrays = {"format": np.array(CACHE_FORMAT), "ids": np.array(ids, dtype=str), "images": images, "masks": masks}
    atomic_save(path, lambda f: write_npz(f, arrays))
