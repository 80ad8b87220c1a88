"""Reading image files for the file-based datasets: listing, decoding, fingerprints.

Listing and fingerprinting only stat files; nothing is decoded until `read_image`
(segbench.data.images, shared with `segbench predict`) / `read_mask`, so a run whose arrays are cached
decodes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from segbench import SegbenchError
from segbench.data.images import DECODE_ERRORS, broken_link, image_extensions, read_image
from segbench.data.resize import resize_nearest
from segbench.errors import unknown


def require_dir(path: Path, what: str) -> Path:
    """`path` if it is a folder, else a SegbenchError naming the full expected path."""
    if not path.is_dir():
        raise SegbenchError(f"{what} not found: expected folder {path}")
    return path


def image_files(folder: Path) -> dict[str, Path]:
    """Image files directly in `folder`, by stem, sorted by stem.

    Hidden files (macOS "._x.png" resource forks) and other suffixes are skipped; symbolic links are
    followed, and one to a missing file is an error naming it, as are two images with one stem (a.png, a.jpg).
    """
    extensions = image_extensions()
    found: dict[str, Path] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or path.suffix.lower() not in extensions:
                continue
            if broken := broken_link(path):
                raise SegbenchError(f"{broken}; fix or remove the link")
            if not entry.is_file():
                continue
            if path.stem in found:
                first, second = sorted([found[path.stem].name, entry.name])
                raise SegbenchError(f"two files with the stem {path.stem!r} in {folder}: {first} and {second}")
            found[path.stem] = path
    return dict(sorted(found.items()))


def read_mask(path: Path) -> np.ndarray:
    """(H, W) uint8 as stored ({0, 1} or {0, 255}; the core validates and binarises).

    Palette masks keep their indices: converting them to grey would turn a
    coloured label 1 into an arbitrary luminance.
    """
    try:
        with Image.open(path) as mask:
            return np.array(mask if mask.mode == "P" else mask.convert("L"), dtype=np.uint8)
    except DECODE_ERRORS as error:
        raise SegbenchError(f"cannot read mask {path}: {error}; replace or remove that file") from None


def stat_fingerprint(root: Path, paths: Iterable[Path]) -> str:
    """Hash of each file's path under `root`, size and mtime; no decoding."""
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class FilePairSource:
    """A `SegmentationSource` over (image file, mask file) pairs under `root`.

    Subclasses implement `_scan(split)`: {sample_id: (image path, mask path)},
    sorted by id; it runs once per split and only lists files.
    """

    name = "files"
    splits = ("train", "val", "test")

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pairs: dict[str, dict[str, tuple[Path, Path]]] = {}

    def _scan(self, split: str) -> dict[str, tuple[Path, Path]]:
        raise NotImplementedError

    def _split(self, split: str) -> dict[str, tuple[Path, Path]]:
        if split not in self.splits:
            raise unknown("split", split, self.splits)
        if split not in self._pairs:
            self._pairs[split] = self._scan(split)
        return self._pairs[split]

    def sample_ids(self, split: str) -> list[str]:
        return list(self._split(split))

    def _pair(self, split: str, sample_id: str) -> tuple[Path, Path]:
        """(image path, mask path) of a sample; an unknown id is a clear error."""
        try:
            return self._split(split)[sample_id]
        except KeyError:
            raise SegbenchError(
                f"{self.name} has no sample {sample_id!r} in its {split} split under {self.root}"
            ) from None

    def load(self, split: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image (H, W) uint8 or float32 in [0, 1], mask (H, W) uint8) at the image file's own size: a mask
        of another size (public sets ship some) is resized to its image's by nearest neighbour."""
        image_path, mask_path = self._pair(split, sample_id)
        image, mask = read_image(image_path), read_mask(mask_path)
        return image, mask if mask.shape == image.shape else resize_nearest(mask, image.shape)

    def fingerprint(self, split: str) -> str:
        return stat_fingerprint(self.root, (path for pair in self._split(split).values() for path in pair))
