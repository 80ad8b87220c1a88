"""The images `segbench predict` is given, and the sample id of each.

A file's id is its path relative to the id root, without its extension: by default the folder above the
file's own folder, so `data/images/case7.png` is "images/case7", the id the `folder` dataset gives that
file; `--ids-relative-to ROOT` names the root (for COVID-QU-Ex, its data root). Paths are taken as given,
symbolic links not followed, so a folder of links to images gives the ids a folder of copies would. The id seeds every
random draw of the prediction (`segbench.seeds.sample_seed`), so a run's own test images get the run's masks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segbench.data.images import broken_link, image_extensions


@dataclass(frozen=True)
class InputImage:
    """One image to predict: its sample id and file."""

    sample_id: str
    path: Path


def _files(given: Path) -> list[Path]:
    """The image files directly in a folder (hidden files and folders skipped; links to missing files kept,
    so that they are reported), or a file itself."""
    if given.is_dir():
        extensions = image_extensions()
        return sorted(p for p in given.iterdir()
                      if not p.is_dir() and not p.name.startswith(".") and p.suffix.lower() in extensions)
    return [given]


def _absolute(path: Path) -> Path:
    """`path` made absolute, with "." and ".." taken out and symbolic links kept: the path as given."""
    return Path(os.path.abspath(path))


def sample_id(path: Path, root: Path | None) -> str:
    """`path` relative to `root` (default: the folder above its folder), without its extension.

    The path is taken as given, links kept, so a folder of links to images elsewhere gives the links' ids.
    A path not under `root` as given is compared where both folders really are (a root, or the file's
    folder, reached through a link); a path under neither is a ValueError.
    """
    given = _absolute(path)
    if root is None:
        return given.relative_to(given.parent.parent).with_suffix("").as_posix()
    base = _absolute(root)
    for file, folder in ((given, base), (given.parent.resolve() / given.name, base.resolve())):
        if file.is_relative_to(folder):
            return file.relative_to(folder).with_suffix("").as_posix()
    raise ValueError(f"input {path} is not under --ids-relative-to {root}")


def collect(paths: Sequence[str], root: str | None) -> tuple[list[InputImage], list[str]]:
    """(the images, sorted by id; one line for each input that cannot be used). Files and folders' images;
    a file listed twice counts once, two files with one id are a problem."""
    id_root = Path(root).expanduser() if root else None
    problems: list[str] = []
    found: dict[str, InputImage] = {}
    for text in paths:
        given = Path(text).expanduser()
        if not given.exists():
            problems.append(f"input {broken_link(given) or f'{given} does not exist'}")
            continue
        files = _files(given)
        if not files:
            problems.append(f"folder {given} holds no image files (PNG, JPEG or another format PIL opens)")
        for path in files:
            if broken := broken_link(path):
                problems.append(f"input {broken}")
                continue
            try:
                key = sample_id(path, id_root)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            other = found.get(key)
            if other is not None and other.path.resolve() != path.resolve():
                problems.append(f"input {path} has the id {key!r} of {other.path} (same name without extension); "
                                "rename one, or predict them apart")
            elif other is None:
                found[key] = InputImage(key, path)
    return [found[key] for key in sorted(found)], problems
