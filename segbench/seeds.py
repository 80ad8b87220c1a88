"""Seeds derived from names, so results never depend on order, batch size or process count (no torch here).

One derivation serves everything random in segbench: the blake2b digest of a text key made of parts.
segbench's own seeds (model init, training, data order, per-sample draws, bootstrap, evaluation subset,
figures) join their parts with the unit separator, which no part can contain by accident; the phantom's
images and the folder dataset's split keep the "/"-joined keys they were generated with, so their data,
and every result computed on them, stay as they were.
"""

from __future__ import annotations

import hashlib

SEPARATOR = "\x1f"


def stable_digest(*parts: object, size: int = 8, separator: str = SEPARATOR) -> bytes:
    """blake2b digest (`size` bytes) of the parts' text: the same in every process (unlike `hash()`)."""
    text = separator.join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts."""
    return int.from_bytes(stable_digest(*parts), "little") >> 1


def sample_seed(run_seed: int, sample_id: str, member: int = 0) -> int:
    """The seed of every random draw for one sample's prediction (ensemble member `member`)."""
    return derive_seed("sample", run_seed, sample_id, member)
