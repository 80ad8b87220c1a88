"""Write to a temporary file in the target's folder, fsync, then rename over the target."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from segbench.errors import SegbenchError


class WriteError(SegbenchError):
    """A file could not be written (full disk, read-only folder); the old file, if any, is intact."""


def _file_mode() -> int:
    """The mode open() gives a new file under the process's umask (mkstemp's files are 0600 whatever it is)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing; on success it replaces `path` atomically."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            if os.name == "posix":
                os.fchmod(handle.fileno(), _file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
        raise


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened for this on Windows."""
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace `path` with `text` (UTF-8)."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_save(path: str | os.PathLike, save: Callable[[IO], None]) -> None:
    """Atomically write a binary file produced by `save(handle)` (np.savez, torch.save)."""
    with atomic_write(path, "wb") as handle:
        save(handle)


def atomic_link(source: str | os.PathLike, target: str | os.PathLike) -> bool:
    """Make `target` a hard link to `source`, atomically replacing any file there; where the filesystem
    cannot link (another device, no hard links) an atomic copy instead. True if it linked."""
    source, target = Path(source), Path(target)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, tmp)
    except OSError:
        try:
            original = open(source, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise SegbenchError(f"cannot read {source}: {exc.strerror or exc}") from exc
        with original, atomic_write(target) as handle:
            shutil.copyfileobj(original, handle)
        return False
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return True
