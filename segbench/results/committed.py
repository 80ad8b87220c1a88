"""Committed prediction batches (partial/ in the run directory): an interrupted evaluation resumes without computing a batch twice."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from segbench.io import atomic_save, write_npz

Key = tuple[str, int]  # (sample id, ensemble member)


class CommittedBatches:
    """One model's finished prediction batches, `folder`/batch-<first item>.npz, keyed by sample id.

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

    def lookup(self, keys: list[Key]) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """(probabilities, own uncertainty or None) of a batch whose items are all committed, else None."""
        if not all(key in self._done for key in keys):
            return None
        probs = torch.from_numpy(np.stack([self._done[key][0] for key in keys]))
        own = [self._done[key][1] for key in keys]
        return probs, None if any(u is None for u in own) else torch.from_numpy(np.stack(own))

    def commit(self, first: int, keys: list[Key], probabilities: torch.Tensor, uncertainty: torch.Tensor | None) -> None:
        """Durably record one batch (`first`: its first item's position in the evaluation order)."""
        arrays = {
            "sample_id": np.array([key[0] for key in keys], dtype=str),
            "member": np.array([key[1] for key in keys], dtype=np.int64),
            "probabilities": probabilities.numpy(),
            "uncertainty": uncertainty.numpy() if uncertainty is not None else np.empty((0,), np.float32),
        }
        atomic_save(self.folder / f"batch-{first:08d}.npz", lambda f: write_npz(f, arrays))
