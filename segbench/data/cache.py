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
    for part in parts(path):
        part.unlink(missing_ok=True)


def part_path(path: Path, start: int) -> Path:
    """Where a build of `path` keeps the samples decoded from `start` on, until the whole split is cached."""
    return path.with_name(f"{path.stem}.part-{start:08d}.npz")


def parts(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.stem}.part-*.npz"))


def read_part(path: Path, start: int, ids: list[str], size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The images and masks of `ids` (samples `start`... of the split) that an interrupted build of `path`
    saved, or None (absent, damaged, or of other samples: decoded again)."""
    try:
        with np.load(part_path(path, start), allow_pickle=False) as data:
            images, masks = data["images"], data["masks"]
            if [str(i) for i in data["ids"]] == ids and images.shape == masks.shape == (len(ids), size, size):
                return images, masks
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        pass
    return None


def write_part(path: Path, start: int, ids: list[str], images: np.ndarray, masks: np.ndarray) -> None:
    arrays = {"format": np.array(CACHE_FORMAT), "ids": np.array(ids, dtype=str), "images": images, "masks": masks}
    atomic_save(part_path(path, start), lambda f: write_npz(f, arrays))
