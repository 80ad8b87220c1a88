"""Atomic file writes: a reader never sees a half-written file."""

from segbench.io.atomic import WriteError, atomic_link, atomic_save, atomic_write, atomic_write_text
from segbench.io.npz import write_npz

__all__ = ["WriteError", "atomic_link", "atomic_save", "atomic_write", "atomic_write_text", "write_npz"]
