"""On-disk cache of prepared splits: plain .npz of uint8 arrays, never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segbench.io import atomic_save, write_npz

CACHE_FORMAT = 3  # stored in every file too: a file of another format is rebuilt, never misread (3: metadata)
ARRAYS = ("format", "ids", "images", "masks", "metadata_keys", "metadata")


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
            found = int(data["format"])
            arrays = {k: data[k] for k in ARRAYS} if found == CACHE_FORMAT else {}
        n = len(arrays.get("ids", ()))
        if found != CACHE_FORMAT:
            problem = f"is from another segbench version (cache format {found}, this one reads {CACHE_FORMAT})"
        elif (arrays["images"].shape != (n, size, size) or arrays["masks"].shape != (n, size, size)
              or arrays["metadata"].shape != (n, len(arrays["metadata_keys"]))):
            problem = "does not hold the arrays it should"
        else:
            return arrays
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        problem = f"cannot be read ({type(exc).__name__}: {exc})"
    print(f"warning: cache file {path} {problem}; rebuilding it from the data", file=sys.stderr)
    return None


def write(path: Path, ids: list[str], images: np.ndarray, masks: np.ndarray,
          metadata: Mapping[str, Sequence[str]]) -> None:
    """One split's arrays; `metadata` (key -> one text per sample) as its keys and an (N, keys) text array."""
    table = np.array([list(metadata[key]) for key in metadata], dtype=str).T.reshape(len(ids), len(metadata))
    arrays = {"format": np.array(CACHE_FORMAT), "ids": np.array(ids, dtype=str), "images": images, "masks": masks,
              "metadata_keys": np.array(list(metadata), dtype=str), "metadata": table}
    atomic_save(path, lambda f: write_npz(f, arrays))
