"""Load a dataset split at the run's size: validate once, cache, and reuse."""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segbench.data import cache
from segbench.data.resize import resize_image, resize_mask
from segbench.errors import SegbenchError
from segbench.progress import Progress
from segbench.specs import DatasetOptions, DatasetSpec, SegmentationSource


METADATA_KEY = re.compile(r"[a-z][a-z0-9_]*")  # a dataset's metadata keys become per_image.csv columns
SOURCE_SPLITS = ("train", "val", "test")
PART = 2048  # samples a cache build decodes between two saved parts (images and masks: 17 MB at 64x64)


@dataclass(frozen=True)
class SplitData:
    """A prepared split: ids (N,), images and masks uint8 (N, size, size); masks in {0, 1}; the dataset's
    metadata per key, one text value per sample (empty when the dataset gives none)."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray
    metadata: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def tensors(self, index: np.ndarray | slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 images (n, 1, H, W) in [0, 1] and masks (n, 1, H, W) in {0, 1}."""
        images = torch.from_numpy(self.images[index]).unsqueeze(1).float().div_(255)
        masks = torch.from_numpy(self.masks[index]).unsqueeze(1).float()
        return images, masks

    def subset(self, index: np.ndarray) -> "SplitData":
        return SplitData([self.ids[i] for i in index], self.images[index], self.masks[index],
                         {key: [values[i] for i in index] for key, values in self.metadata.items()})


def binary_mask(mask: np.ndarray, where: str, threshold: int | None = None) -> np.ndarray:
    """A {0, 1} or {0, 255} mask as uint8 {0, 1}; with `threshold`, any mask, foreground above it.

    Without a threshold, other values are an error naming `where` and the option that helps.
    """
    if threshold is not None:
        return (mask > threshold).astype(np.uint8)
    values = np.unique(mask)
    if np.isin(values, (0, 1)).all():
        return mask.astype(np.uint8)
    if np.isin(values, (0, 255)).all():
        return (mask == 255).astype(np.uint8)
    shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
    raise SegbenchError(
        f"mask of {where} is not binary (values {shown}); expected {{0, 1}} or {{0, 255}}: fix the mask, "
        "or pass --mask-threshold T to make values above T foreground"
    )


def _check_ids(spec: DatasetSpec, split: str, ids: list[str]) -> None:
    if not ids:
        raise SegbenchError(f"split {split!r} of dataset {spec.name!r} is empty; check the data it reads")
    if len(set(ids)) != len(ids):
        dup = next(i for i, count in Counter(ids).items() if count > 1)
        raise SegbenchError(
            f"dataset {spec.name!r} has duplicate sample id {dup!r} in split {split!r}; every sample needs its "
            f"own id (plugin {spec.plugin!r} must list each sample once)"
        )


def _decode_one(spec: DatasetSpec, source: SegmentationSource, split: str, options: DatasetOptions,
                sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    image, mask = source.load(split, sample_id)
    where = f"{spec.name}:{sample_id}" + (f" (under {options.root})" if options.root else "")
    if np.asarray(image).shape[:2] != np.asarray(mask).shape[:2]:
        raise SegbenchError(
            f"mask of {where} has size {np.asarray(mask).shape[:2]} but its image has "
            f"{np.asarray(image).shape[:2]}; they must match (fix or remove that sample)"
        )
    return (resize_image(image, options.size),
            resize_mask(binary_mask(np.asarray(mask), where, options.mask_threshold), options.size))


def _decode(spec: DatasetSpec, source: SegmentationSource, split: str, options: DatasetOptions, path: Path,
            progress: Progress) -> SplitData:
    """Every sample at options.size. A split of more than PART samples is decoded PART at a time, each part
    saved beside the cache file, so a killed build goes on from its last part; with a progress bar."""
    ids = list(source.sample_ids(split))
    _check_ids(spec, split, ids)
    images = np.empty((len(ids), options.size, options.size), np.uint8)
    masks = np.empty_like(images)
    chunked = len(ids) > PART
    with progress.task(f"decoding {split}", total=len(ids)) if chunked else nullcontext(None) as bar:
        for start in range(0, len(ids), PART):
            part = slice(start, min(start + PART, len(ids)))
            found = cache.read_part(path, start, ids[part], options.size) if chunked else None
            if found is None:
                for i in range(part.start, part.stop):
                    images[i], masks[i] = _decode_one(spec, source, split, options, ids[i])
                if chunked:
                    _cache_quietly(cache.write_part, path, start, ids[part], images[part], masks[part])
            else:
                images[part], masks[part] = found
            if bar is not None:
                bar.step(part.stop)
    return SplitData(ids, images, masks, _metadata(spec, source, split, ids))


def _cache_quietly(write: Callable[..., None], *args: Any) -> None:
    """Write to the cache; a read-only cache slows the next run, it does not stop this one."""
    try:
        write(*args)
    except SegbenchError as exc:
        print(f"warning: not cached: {exc}", file=sys.stderr)


def _metadata(spec: DatasetSpec, source: SegmentationSource, split: str, ids: list[str]) -> dict[str, list[str]]:
    """The source's optional `metadata(split, id)` as columns; bad keys or values name the sample."""
    if not hasattr(source, "metadata"):
        return {}
    columns: dict[str, list[str]] = {}
    for i, sample_id in enumerate(ids):
        facts = dict(source.metadata(split, sample_id))
        where = f"metadata of {spec.name}:{sample_id} (plugin {spec.plugin!r})"
        if i == 0:
            bad = [k for k in facts if not (isinstance(k, str) and METADATA_KEY.fullmatch(k))]
            if bad:
                raise SegbenchError(f"{where} has the key {bad[0]!r}; keys must be lower-case letters, digits and _")
            columns = {key: [] for key in facts}
        if facts.keys() != columns.keys():
            raise SegbenchError(f"{where} has the keys {sorted(facts)}, other samples {sorted(columns)}; every "
                                "sample of a split needs the same keys")
        for key, value in facts.items():
            if not isinstance(value, str):
                raise SegbenchError(f"{where}: the value of {key!r} is {type(value).__name__}, not text")
            columns[key].append(value)
    return columns


def load_split(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions, split: str,
               progress: Progress | None = None) -> SplitData:
    """The split at options.size, from the cache when its sources are unchanged; a build shows a bar on
    `progress`."""
    fingerprint = source.fingerprint(split)
    if options.mask_threshold is not None:
        fingerprint += f"/mask>{options.mask_threshold}"
    path = cache.cache_path(spec.name, options.task, split, options.size, fingerprint)
    cached = cache.read(path, options.size)
    if cached is not None:
        return SplitData([str(i) for i in cached["ids"]], cached["images"], cached["masks"],
                         {str(key): [str(v) for v in column] for key, column in
                          zip(cached["metadata_keys"], cached["metadata"].T)})
    data = _decode(spec, source, split, options, path, progress or Progress(silent=True))
    _cache_quietly(cache.write, path, data.ids, data.images, data.masks, data.metadata)
    return data


def load_all(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions,
             progress: Progress | None = None) -> SplitData:
    """Every image of the dataset: its splits (each prepared and cached as `load_split` does) together, in
    sample-id order; the metadata keys every split has."""
    parts = [load_split(spec, source, options, split, progress) for split in SOURCE_SPLITS]
    ids = [sample_id for part in parts for sample_id in part.ids]
    _check_ids(spec, "all", ids)
    keys = [key for key in parts[0].metadata if all(key in part.metadata for part in parts)]
    together = SplitData(ids, np.concatenate([part.images for part in parts]),
                         np.concatenate([part.masks for part in parts]),
                         {key: [value for part in parts for value in part.metadata[key]] for key in keys})
    return together.subset(np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64))
