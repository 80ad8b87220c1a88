"""Folder locks: an advisory lock on a folder's `.lock` file. A run directory is used by one `segbench run`
at a time (`run_lock`); a stored stage is made by one process at a time (`folder_lock`, which waits).

The lock is an flock on an open file, so the kernel drops it when the process ends however it
ends (kill -9 included): a killed process never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from segbench.errors import SegbenchError

try:
    import fcntl
except ImportError:  # Windows: no flock; folders there are not protected against a second process
    fcntl = None

LOCK_FILE = ".lock"


class RunLocked(SegbenchError):
    """Another process is using the run directory."""


@contextmanager
def folder_lock(folder: Path, busy: Callable[[str], None]) -> Iterator[None]:
    """Hold `folder`'s lock. While another process holds it, `busy(holder)` is called between tries ("pid N
    on HOST"): it waits (and may raise to give up). On entry, temporaries an interrupted writer left are
    removed: every writer of the folder holds its lock, so none is in use."""
    folder = Path(folder)
    with open(folder / LOCK_FILE, "a+") as handle:
        while fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            handle.seek(0)
            busy(handle.read().strip() or "another process")
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        for stale in folder.rglob(".*.tmp"):  # written by atomic_write, never renamed: its writer died
            stale.unlink(missing_ok=True)
        yield


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold run directory `folder`'s lock; another run holding it is an error that names it."""
    def refuse(holder: str) -> None:
        raise RunLocked(f"{folder} is in use by another segbench run ({holder}); wait for it to finish, "
                        "or choose another --out")

    with folder_lock(folder, refuse):
        yield
