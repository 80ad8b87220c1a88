"""Load a dataset split at the run's size: validate once, cache, and reuse."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from segbench.data import cache
from segbench.data.resize import resize_image, resize_mask
from segbench.errors import SegbenchError
from segbench.specs import DatasetOptions, DatasetSpec, SegmentationSource


@dataclass(frozen=True)
class SplitData:
    """A prepared split: ids (N,), images and masks uint8 (N, size, size); masks in {0, 1}."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def tensors(self, index: np.ndarray | slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 images (n, 1, H, W) in [0, 1] and masks (n, 1, H, W) in {0, 1}."""
        images = torch.from_numpy(self.images[index]).unsqueeze(1).float().div_(255)
        masks = torch.from_numpy(self.masks[index]).unsqueeze(1).float()
        return images, masks

    def subset(self, index: np.ndarray) -> "SplitData":
        return SplitData([self.ids[i] for i in index], self.images[index], self.masks[index])


def binary_mask(mask: np.ndarray, where: str) -> np.ndarray:
    """A {0, 1} or {0, 255} mask as uint8 {0, 1}; anything else is an error naming `where`."""
    values = np.unique(mask)
    if np.isin(values, (0, 1)).all():
        return mask.astype(np.uint8)
    if np.isin(values, (0, 255)).all():
        return (mask == 255).astype(np.uint8)
    shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
    raise SegbenchError(f"mask of {where} is not binary (values {shown}); expected {{0, 1}} or {{0, 255}}")


def _decode(spec: DatasetSpec, source: SegmentationSource, split: str, size: int) -> SplitData:
    ids = list(source.sample_ids(split))
    if not ids:
        raise SegbenchError(f"split {split!r} of dataset {spec.name!r} is empty")
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise SegbenchError(f"dataset {spec.name!r} has duplicate sample id {dup!r} in split {split!r}")
    images = np.empty((len(ids), size, size), np.uint8)
    masks = np.empty((len(ids), size, size), np.uint8)
    for i, sample_id in enumerate(ids):
        image, mask = source.load(split, sample_id)
        where = f"{spec.name}:{sample_id}"
        if np.asarray(image).shape[:2] != np.asarray(mask).shape[:2]:
            raise SegbenchError(
                f"mask of {where} has size {np.asarray(mask).shape[:2]} but its image has "
                f"{np.asarray(image).shape[:2]}; they must match"
            )
        images[i] = resize_image(image, size)
        masks[i] = resize_mask(binary_mask(np.asarray(mask), where), size)
    return SplitData(ids, images, masks)


def load_split(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions, split: str) -> SplitData:
    """The split at options.size, from the cache when its sources are unchanged."""
    path = cache.cache_path(spec.name, options.task, split, options.size, source.fingerprint(split))
    cached = cache.read(path)
    if cached is not None:
        return SplitData([str(i) for i in cached["ids"]], cached["images"], cached["masks"])
    data = _decode(spec, source, split, options.size)
    try:
        cache.write(path, data.ids, data.images, data.masks)
    except SegbenchError as exc:  # a read-only cache slows the next run, it does not stop this one
        print(f"warning: not cached: {exc}", file=sys.stderr)
    return data
