"""A downloaded dataset's files, read from a folder or from a bare git repository's tree (with `git`, no
work tree), and placed under a data root: hard links where the filesystem allows, else atomic copies."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from segbench.errors import SegbenchError
from segbench.io import atomic_link, atomic_write


@dataclass
class Placed:
    """How many files were hard-linked and how many written (copied, or read out of git)."""

    linked: int = 0
    written: int = 0

    def add(self, linked: bool) -> None:
        if linked:
            self.linked += 1
        else:
            self.written += 1


class SourceTree(Protocol):
    """The files of a downloaded copy; `where` names it in messages."""

    where: str

    def files(self) -> list[str]:
        """Paths of its regular files relative to its top, "/"-separated, sorted; hidden names skipped."""
        ...

    def place(self, targets: Mapping[str, Path]) -> Placed:
        """Put each file `targets` names (a path from `files()`) at its target path."""
        ...


class FolderTree:
    """The files under a folder (symbolic links followed)."""

    def __init__(self, top: Path) -> None:
        self.top, self.where = top, str(top)

    def files(self) -> list[str]:
        found = []
        for folder, folders, names in os.walk(self.top, followlinks=True):
            folders[:] = [name for name in folders if not name.startswith(".")]
            found += [(Path(folder) / name).relative_to(self.top).as_posix()
                      for name in names if not name.startswith(".")]
        return sorted(found)

    def place(self, targets: Mapping[str, Path]) -> Placed:
        placed = Placed()
        for path, target in targets.items():
            placed.add(atomic_link(self.top / path, target))
        return placed


class GitTree:
    """The blobs under `path` of a bare git repository's HEAD, read with `git cat-file --batch`; files
    with one content are written once and hard-linked."""

    def __init__(self, git_dir: Path, path: str) -> None:
        if shutil.which("git") is None:
            raise SegbenchError(f"{git_dir} is a git repository; reading it needs git on PATH")
        self.git_dir, self.path = git_dir, path.strip("/")
        self.where = f"{git_dir} (HEAD:{self.path})" if self.path else f"{git_dir} (HEAD)"
        kind = self._git("cat-file", "-t", f"HEAD:{self.path}", what=f"--path {self.path!r}").strip()
        if kind != b"tree":
            raise SegbenchError(f"--path {self.path!r} is a {kind.decode()} in {git_dir}, not a folder")
        self._blobs: dict[str, str] = {}

    def _git(self, *args: str, what: str) -> bytes:
        done = subprocess.run(["git", "--git-dir", str(self.git_dir), *args], capture_output=True, check=False)
        if done.returncode:
            reason = done.stderr.decode(errors="replace").strip().splitlines() or [f"exit {done.returncode}"]
            raise SegbenchError(f"cannot read {what} from the git repository {self.git_dir}: {reason[-1]}")
        return done.stdout

    def files(self) -> list[str]:
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", "HEAD", *([self.path] if self.path else []),
                            what="the file listing")
        prefix = f"{self.path}/" if self.path else ""
        for entry in filter(None, listing.split(b"\0")):
            meta, name = entry.split(b"\t", 1)
            mode, kind, blob = meta.decode().split()
            path = os.fsdecode(name)[len(prefix):]
            if kind == "blob" and mode != "120000" and not any(part.startswith(".") for part in path.split("/")):
                self._blobs[path] = blob
        return sorted(self._blobs)

    def place(self, targets: Mapping[str, Path]) -> Placed:
        if not self._blobs:
            self.files()
        by_blob: dict[str, list[Path]] = {}
        for path, target in targets.items():
            by_blob.setdefault(self._blobs[path], []).append(target)
        placed = Placed()
        for blob, content in self._contents(list(by_blob)):
            first, *others = by_blob[blob]
            with atomic_write(first) as handle:
                handle.write(content)
            placed.add(False)
            for target in others:
                placed.add(atomic_link(first, target))
        return placed

    def _contents(self, blobs: list[str]) -> Iterator[tuple[str, bytes]]:
        """(blob id, content) of each blob, in order, from one `git cat-file --batch`."""
        with tempfile.TemporaryFile() as wanted:
            wanted.write("".join(f"{blob}\n" for blob in blobs).encode())
            wanted.seek(0)
            with subprocess.Popen(["git", "--git-dir", str(self.git_dir), "cat-file", "--batch"], stdin=wanted,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as reader:
                try:
                    for blob in blobs:
                        header = reader.stdout.readline().split()
                        if len(header) != 3:
                            raise SegbenchError(f"git cannot read blob {blob} of {self.where}")
                        yield blob, reader.stdout.read(int(header[2]))
                        reader.stdout.read(1)  # the newline after each blob
                finally:
                    reader.kill()  # done, or stopped early: git has nothing more to say


def is_bare_git(path: Path) -> bool:
    """Whether `path` looks like a git directory (HEAD, objects/, refs/) rather than a work tree."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def open_tree(source: Path, path: str = "") -> SourceTree:
    """The folder `source`/`path`, or the folder `path` of a bare git repository `source`'s HEAD."""
    source = Path(source).expanduser()
    if is_bare_git(source):
        return GitTree(source, path)
    if not source.is_dir():
        raise SegbenchError(f"source not found: {source} is neither a folder nor a bare git repository")
    top = source / path
    if not top.is_dir():
        raise SegbenchError(f"--path {path!r}: no folder {top}")
    return FolderTree(top)
