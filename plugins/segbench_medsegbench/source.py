"""medsegbench:<flag>: one MedSegBench dataset, read from the files the `medsegbench` package downloads.

The format, from the package's own source (`medsegbench` 1.0.0 on PyPI, the same code as
github.com/zekikus/MedSegBench at 54fde02: medsegbench/dataset.py and info.py):

    <root>/<flag>_<size>.npz          size 128, 256 or 512; the package's default root is ~/.medsegbench
        <split>_images                uint8 (N, H, W) grey or (N, H, W, 3) RGB; split train, val, test
        <split>_label                 uint8 (N, H, W): {0, 1} (binary) or class values (multi-class)
        <split>_images_C<k>, <split>_label_C<k>    category subsets (idrib: labels only, same images)

The file read is the one whose size is the smallest at least the run's --image-size (nothing is
upsampled), else the largest there is. A sample id is "<split>/<index>", the index in <split>_images.
Images come back grey uint8 (RGB through PIL's "L", as the folder dataset reads RGB files); masks {0, 1}
as the task's target takes them (segbench_medsegbench.catalog). Nothing is downloaded here.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from segbench import DatasetOptions, SegbenchError
from segbench.errors import unknown
from segbench.samples import numbered_ids, numbered_index
from segbench_medsegbench.catalog import BY_NAME, SIZES, Flag, targets

READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npz_files(root: Path, flag: str) -> dict[int, Path]:
    """The `<flag>_<size>.npz` files in `root`, by size, smallest first."""
    pattern = re.compile(rf"{re.escape(flag)}_(\d+)\.npz")
    found = {int(match[1]): path for path in root.glob(f"{flag}_*.npz") if (match := pattern.fullmatch(path.name))}
    return dict(sorted(found.items()))


def choose(files: dict[int, Path], size: int) -> Path:
    """The file of the smallest size at least `size`, else of the largest."""
    return next((path for file_size, path in files.items() if file_size >= size), files[max(files)])


class MedSegBenchSource:
    """One flag's file, one task; a split's arrays are loaded on first use, one split at a time."""

    splits = ("train", "val", "test")

    def __init__(self, flag: Flag, task: str, path: Path) -> None:
        self.name = f"medsegbench:{flag.name}"
        served = targets(flag)
        if task not in served:
            raise SegbenchError(f"{self.name} does not serve task {task!r}; valid: {', '.join(served)}")
        self.target, self.path = served[task], path
        self._counts: dict[str, int] = {}
        self._loaded: tuple[str, np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_options(cls, flag: str, options: DatasetOptions) -> MedSegBenchSource:
        name, python_class = f"medsegbench:{flag}", BY_NAME[flag].python_class
        if options.root is None:
            raise SegbenchError(f"{name} needs --data-root: the folder holding {flag}_<size>.npz")
        if options.mask_threshold is not None:
            raise SegbenchError(f"{name} makes its masks binary itself (see `segbench list datasets` for its "
                                "tasks); drop --mask-threshold")
        root = Path(options.root).expanduser()
        if not root.is_dir():
            raise SegbenchError(f"{name}: --data-root {root} is not a folder")
        files = npz_files(root, flag)
        if not files:
            raise SegbenchError(
                f"no {flag}_<size>.npz in {root} (MedSegBench's sizes: {', '.join(map(str, SIZES))}); the medsegbench "
                f"package downloads one: {python_class}(split='train', size=128, root='{root}', download=True)"
            )
        return cls(BY_NAME[flag], options.task, choose(files, options.size))

    def sample_ids(self, split: str) -> list[str]:
        return numbered_ids(split, self._count(split))

    def load(self, split: str, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image (H, W) uint8, mask (H, W) uint8 {0, 1}) at the file's size."""
        index = numbered_index(sample_id, split, self._count(split), f"{self.name} ({self.path})")
        images, labels = self._arrays(split)
        image, label = images[index], labels[index]
        if image.ndim == 3:
            image = np.asarray(Image.fromarray(image).convert("L"))
        mask = label != 0 if self.target.value is None else label == self.target.value
        return image, mask.astype(np.uint8)

    def fingerprint(self, split: str) -> str:
        """The file read (name, bytes, modification time) and what the task takes from it; no decoding."""
        stat = self.path.stat()
        return f"{self.path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\t{self.target.suffix}\t{self.target.value}"

    def _keys(self, split: str) -> tuple[str, str]:
        return f"{split}_images", f"{split}_label{self.target.suffix}"

    @contextmanager
    def _archive(self) -> Iterator[zipfile.ZipFile]:
        try:
            with zipfile.ZipFile(self.path) as archive:
                yield archive
        except READ_ERRORS as error:
            raise SegbenchError(f"cannot read {self.path} as an npz file: {error}; download it again") from None

    def _count(self, split: str) -> int:
        """The split's image count from the arrays' headers (nothing decompressed), their format checked."""
        if split not in self.splits:
            raise unknown("split", split, self.splits)
        if split not in self._counts:
            images_key, labels_key = self._keys(split)
            with self._archive() as archive:
                images, image_type = self._header(archive, images_key)
                labels, label_type = self._header(archive, labels_key)
            if image_type != np.uint8 or not (len(images) == 3 or (len(images) == 4 and images[3] == 3)):
                raise SegbenchError(f"{self.path}: {images_key} is {image_type} {images}; MedSegBench images are "
                                    "uint8 (N, H, W) or (N, H, W, 3)")
            if label_type.kind not in "biu" or labels != images[:3]:
                raise SegbenchError(f"{self.path}: {labels_key} is {label_type} {labels}; expected integers "
                                    f"{images[:3]}, one (H, W) label per image of {images_key}")
            self._counts[split] = images[0]
        return self._counts[split]

    def _header(self, archive: zipfile.ZipFile, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of the array `key` of the archive."""
        names = [name.removesuffix(".npy") for name in archive.namelist()]
        if key not in names:
            raise SegbenchError(f"{self.path} has no array {key!r}; it has: {', '.join(names) or 'none'}")
        with archive.open(f"{key}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            if version not in HEADER_READERS:
                raise SegbenchError(f"{self.path}: {key} is a .npy of version {version}; MedSegBench's are 1.0 or 2.0")
            shape, _, dtype = HEADER_READERS[version](stream)
        return shape, dtype

    def _arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The split's images and labels, loaded once; only the last split used stays in memory."""
        if self._loaded is None or self._loaded[0] != split:
            self._loaded = None
            try:
                with np.load(self.path) as npz:
                    self._loaded = (split, *(npz[key] for key in self._keys(split)))
            except READ_ERRORS as error:
                raise SegbenchError(f"cannot read {self.path}: {error}; download it again") from None
        return self._loaded[1], self._loaded[2]
