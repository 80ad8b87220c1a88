"""Seeds derived from names, so results never depend on order, batch size or process count."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (blake2b of their text; not Python's salted hash)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def sample_seed(run_seed: int, sample_id: str, member: int = 0) -> int:
    """The seed of every random draw for one sample's prediction (ensemble member `member`)."""
    return derive_seed("sample", run_seed, sample_id, member)


def sample_seeds(run_seed: int, sample_ids: list[str], member: int = 0) -> torch.Tensor:
    """int64 (N,) seeds for a list of sample ids."""
    return torch.tensor([sample_seed(run_seed, s, member) for s in sample_ids], dtype=torch.int64)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) for a model's training."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global generator's state (python, numpy, torch CPU and CUDA) as tensors and plain values,
    so a checkpoint holding it still loads with weights_only=True."""
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, torch.tensor(words, dtype=torch.int64), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured."""
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
