"""folder: any `images/` + `masks/` pair of folders with matching file stems.

    root/images/<stem>.<ext>    any format PIL opens, any size, grey or RGB (read as grey)
    root/masks/<stem>.<ext>     values {0, 1} or {0, 255}; the extension may differ from the image's
    root/splits.json            optional: {"train": [stems], "val": [...], "test": [...]}

Without splits.json the stems are split 70/15/15 by a fixed seed, the same in
every run whatever `--seed` is. A sample id is "images/<stem>".
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from segbench import DatasetOptions, SegbenchError
from segbench.seeds import stable_digest
from segbench_cxr._files import FilePairSource, image_files, require_dir

SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.15  # each of val and test; train gets the rest


def seeded_split(stems: list[str], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """70/15/15 split of `stems`, each part sorted; val and test get at least one stem each.

    The order is a hash of (seed, stem), so it is the same on every machine and
    adding a file moves few others.
    """
    if len(stems) < 3:
        raise SegbenchError(
            f"the folder dataset needs at least 3 images to split, found {len(stems)}; or write splits.json"
        )
    order = sorted(stems, key=lambda stem: stable_digest(seed, stem, separator="/"))
    held_out = max(1, round(HELD_OUT_FRACTION * len(stems)))
    return {
        "train": sorted(order[2 * held_out :]),
        "val": sorted(order[:held_out]),
        "test": sorted(order[held_out : 2 * held_out]),
    }


class FolderSource(FilePairSource):
    """Image/mask pairs matched by stem; splits from splits.json or `seeded_split`."""

    name = "folder"

    def __init__(self, root: Path) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise SegbenchError(f"folder dataset root not found: {root}")
        super().__init__(root)
        self.images_dir = require_dir(root / "images", "folder dataset images")
        self.masks_dir = require_dir(root / "masks", "folder dataset masks")
        self.splits_file = root / "splits.json"

    @classmethod
    def from_options(cls, options: DatasetOptions) -> FolderSource:
        if options.root is None:
            raise SegbenchError("the folder dataset needs --data-root: a folder with images/ and masks/")
        return cls(options.root)

    @cached_property
    def _layout(self) -> tuple[dict[str, Path], dict[str, Path], dict[str, list[str]]]:
        """(images by stem, masks by stem, stems by split), listed once."""
        images = image_files(self.images_dir)
        if not images:
            raise SegbenchError(f"no images in {self.images_dir}; put the image files there, or check --data-root")
        stems = self._read_splits(images) if self.splits_file.exists() else seeded_split(list(images))
        return images, image_files(self.masks_dir), stems

    def _scan(self, split: str) -> dict[str, tuple[Path, Path]]:
        images, masks, stems = self._layout
        if split not in stems:
            raise SegbenchError(
                f"{self.splits_file} has no {split!r} list; it has: {', '.join(stems)}; add a {split!r} list of stems"
            )
        pairs = {}
        for stem in stems[split]:
            if stem not in masks:
                raise SegbenchError(f"image {images[stem]} has no mask: expected {self.masks_dir / stem}.<ext>")
            pairs[f"images/{stem}"] = (images[stem], masks[stem])
        return pairs

    def _read_splits(self, images: dict[str, Path]) -> dict[str, list[str]]:
        """The stems per split from splits.json, checked against images/."""
        try:
            listed = json.loads(self.splits_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SegbenchError(f"cannot read {self.splits_file}: {error}") from None
        if not isinstance(listed, dict) or not all(
            isinstance(stems, list) and all(isinstance(s, str) for s in stems) for stems in listed.values()
        ):
            raise SegbenchError(f"{self.splits_file} must map split names to lists of image stems")
        extra = sorted(set(listed) - set(self.splits))
        if extra:
            raise SegbenchError(f"{self.splits_file} has unknown splits {extra}; valid: {', '.join(self.splits)}")
        seen: dict[str, str] = {}
        for split, stems in listed.items():
            for stem in stems:
                if stem not in images:
                    raise SegbenchError(
                        f"{self.splits_file} lists {stem!r} under {split!r}, "
                        f"but there is no image {self.images_dir / stem}.*"
                    )
                if stem in seen:
                    raise SegbenchError(f"{self.splits_file} lists {stem!r} under both {seen[stem]!r} and {split!r}")
                seen[stem] = split
        return {split: sorted(stems) for split, stems in listed.items()}
