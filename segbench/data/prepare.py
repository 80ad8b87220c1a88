"""Load a dataset split at the run's size: validate once, cache, and reuse."""

from __future__ import annotations

import sys
from collections import Counter
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


def _decode(spec: DatasetSpec, source: SegmentationSource, split: str, options: DatasetOptions) -> SplitData:
    size = options.size
    ids = list(source.sample_ids(split))
    if not ids:
        raise SegbenchError(f"split {split!r} of dataset {spec.name!r} is empty; check the data it reads")
    if len(set(ids)) != len(ids):
        dup = next(i for i, count in Counter(ids).items() if count > 1)
        raise SegbenchError(
            f"dataset {spec.name!r} has duplicate sample id {dup!r} in split {split!r}; every sample needs its "
            f"own id (plugin {spec.plugin!r} must list each sample once)"
        )
    images = np.empty((len(ids), size, size), np.uint8)
    masks = np.empty((len(ids), size, size), np.uint8)
    for i, sample_id in enumerate(ids):
        image, mask = source.load(split, sample_id)
        where = f"{spec.name}:{sample_id}" + (f" (under {options.root})" if options.root else "")
        if np.asarray(image).shape[:2] != np.asarray(mask).shape[:2]:
            raise SegbenchError(
                f"mask of {where} has size {np.asarray(mask).shape[:2]} but its image has "
                f"{np.asarray(image).shape[:2]}; they must match (fix or remove that sample)"
            )
        images[i] = resize_image(image, size)
        masks[i] = resize_mask(binary_mask(np.asarray(mask), where, options.mask_threshold), size)
    return SplitData(ids, images, masks)


def load_split(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions, split: str) -> SplitData:
    """The split at options.size, from the cache when its sources are unchanged."""
    fingerprint = source.fingerprint(split)
    if options.mask_threshold is not None:
        fingerprint += f"/mask>{options.mask_threshold}"
    path = cache.cache_path(spec.name, options.task, split, options.size, fingerprint)
    cached = cache.read(path, options.size)
    if cached is not None:
        return SplitData([str(i) for i in cached["ids"]], cached["images"], cached["masks"])
    data = _decode(spec, source, split, options)
    try:
        cache.write(path, data.ids, data.images, data.masks)
    except SegbenchError as exc:  # a read-only cache slows the next run, it does not stop this one
        print(f"warning: not cached: {exc}", file=sys.stderr)
    return data
