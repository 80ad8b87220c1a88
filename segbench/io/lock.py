"""A run directory is used by one `segbench run` at a time: an advisory lock on its `.lock` file.

The lock is an flock on an open file, so the kernel drops it when the process ends however it
ends (kill -9 included): a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from segbench.errors import SegbenchError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected against a second one
    fcntl = None

LOCK_FILE = ".lock"


class RunLocked(SegbenchError):
    """Another process is using the run directory."""


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock; on entry, remove temporaries an interrupted writer left (none is in use)."""
    folder = Path(folder)
    with open(folder / LOCK_FILE, "a+") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunLocked(
                    f"{folder} is in use by another segbench run ({holder}); wait for it to finish, "
                    "or choose another --out"
                ) from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        for stale in folder.rglob(".*.tmp"):  # written by atomic_write, never renamed: its writer died
            stale.unlink(missing_ok=True)
        yield
