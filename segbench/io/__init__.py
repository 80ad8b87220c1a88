"""Atomic file writes: a reader never sees a half-written file."""

from segbench.io.atomic import atomic_save, atomic_write, atomic_write_text

__all__ = ["atomic_save", "atomic_write", "atomic_write_text"]
