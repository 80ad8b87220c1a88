"""folder: any `images/` + `masks/` pair of folders with matching file stems.

    root/images/<stem>.<ext>    any format PIL opens, any size, grey or RGB (read as grey)
    root/masks/<stem>.<ext>     values {0, 1} or {0, 255}; the extension may differ from the image's
    root/splits.json            optional: {"train": [stems], "val": [...], "test": [...]}
    root/metadata.csv           optional: a `stem` column (the image's file stem), then any columns
                                named like `age` or `site_2` (lower-case letters, digits, _)

Without splits.json the stems are split 70/15/15 by a fixed seed, the same in
every run whatever `--seed` is. A sample id is "images/<stem>". A mask of
another size than its image is resized to the image's (nearest neighbour).
metadata.csv needs a row per image; its columns become per-sample metadata
(per_image.csv columns, groups of `segbench report --by COLUMN`).
"""

from __future__ import annotations

import csv
import json
from functools import cached_property
from pathlib import Path

from segbench import DatasetOptions, SegbenchError
from segbench.data.prepare import METADATA_KEY
from segbench.seeds import stable_digest
from segbench_cxr._files import FilePairSource, image_files, require_dir, stat_fingerprint

SPLIT_SEED = 0
STEM_COLUMN = "stem"  # metadata.csv's column naming each row's image
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
        self.metadata_file = root / "metadata.csv"

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

    def fingerprint(self, split: str) -> str:
        """The split's files, and metadata.csv where there is one."""
        listed = super().fingerprint(split)
        if not self.metadata_file.exists():
            return listed
        return f"{listed}/{stat_fingerprint(self.root, [self.metadata_file])}"

    def metadata(self, split: str, sample_id: str) -> dict[str, str]:
        """The sample's row of metadata.csv without its stem ({} without the file)."""
        image, _ = self._pair(split, sample_id)
        if not self._table:
            return {}
        if image.stem not in self._table:
            raise SegbenchError(f"{self.metadata_file} has no row for the image {image.name}; add a row whose "
                                f"{STEM_COLUMN!r} is {image.stem!r}")
        return self._table[image.stem]

    @cached_property
    def _table(self) -> dict[str, dict[str, str]]:
        """metadata.csv's rows by stem, checked once ({} without the file)."""
        if not self.metadata_file.exists():
            return {}
        try:
            with self.metadata_file.open(newline="", encoding="utf-8-sig") as handle:
                header, *rows = list(csv.reader(handle)) or [[]]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise SegbenchError(f"cannot read {self.metadata_file}: {error}") from None
        if STEM_COLUMN not in header:
            raise SegbenchError(f"{self.metadata_file} has no {STEM_COLUMN!r} column (each row's image file name "
                                f"without its extension); its columns: {', '.join(header) or 'none'}")
        columns = [name for name in header if name != STEM_COLUMN]
        for name in columns:
            if not METADATA_KEY.fullmatch(name) or header.count(name) > 1:
                raise SegbenchError(f"{self.metadata_file}: column {name!r} is not a valid metadata name (lower-case "
                                    "letters, digits and _, starting with a letter, each once), e.g. 'site' or 'age_2'")
        table: dict[str, dict[str, str]] = {}
        for line, row in enumerate(rows, 2):
            if len(row) != len(header):
                raise SegbenchError(f"{self.metadata_file} line {line} has {len(row)} fields; the header has "
                                    f"{len(header)}")
            values = dict(zip(header, row))
            stem = values.pop(STEM_COLUMN)
            if stem in table:
                raise SegbenchError(f"{self.metadata_file} line {line}: the stem {stem!r} has a row already")
            table[stem] = values
        return table

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
