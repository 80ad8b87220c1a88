"""Committed prediction batches (partial/ in the run directory): an interrupted evaluation resumes without computing a batch twice."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from segbench.io import atomic_save, write_npz
from segbench.seeds import stable_digest

Key = tuple[str, int]  # (sample id, ensemble member)


class CommittedBatches:
    """One model's finished prediction batches, `folder`/batch-<digest of first item>.npz, keyed by item.

    Each file holds sample_id and member (b,), probabilities float32 (b, 1, H, W) exactly as
    predicted, and the model's own uncertainty (same shape) or an empty array.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._done: dict[Key, tuple[np.ndarray, np.ndarray | None]] = {}
        for path in sorted(self.folder.glob("batch-*.npz")):
            self._read(path)

    def _read(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as npz:
                ids, members, probs, own = (npz[k] for k in ("sample_id", "member", "probabilities", "uncertainty"))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return  # never half-written (atomic); a foreign file is ignored and its batch recomputed
        for j, key in enumerate(zip(ids.tolist(), members.tolist())):
            self._done[key] = (probs[j], own[j] if own.size else None)

    def __len__(self) -> int:
        return len(self._done)

    def get(self, key: Key) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(probabilities (1, H, W), own uncertainty or None) of a committed item, else None."""
        return self._done.get(key)

    def commit(self, keys: list[Key], probabilities: torch.Tensor, uncertainty: torch.Tensor | None) -> None:
        """Durably record one batch of items (named after its first item, which no other batch file starts
        with: a batch is formed from uncommitted items only)."""
        arrays = {
            "sample_id": np.array([key[0] for key in keys], dtype=str),
            "member": np.array([key[1] for key in keys], dtype=np.int64),
            "probabilities": probabilities.numpy(),
            "uncertainty": uncertainty.numpy() if uncertainty is not None else np.empty((0,), np.float32),
        }
        name = stable_digest(*keys[0], size=8).hex()
        atomic_save(self.folder / f"batch-{name}.npz", lambda f: write_npz(f, arrays))
        for j, key in enumerate(keys):
            self._done[key] = (arrays["probabilities"][j], arrays["uncertainty"][j] if uncertainty is not None else None)
