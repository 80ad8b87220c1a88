"""Load a dataset split at the run's size: validate once, cache, and reuse."""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from segbench.data import cache
from segbench.data.resize import resize_image, resize_mask
from segbench.errors import SegbenchError
from segbench.specs import DatasetOptions, DatasetSpec, SegmentationSource


METADATA_KEY = re.compile(r"[a-z][a-z0-9_]*")  # a dataset's metadata keys become per_image.csv columns


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
    return SplitData(ids, images, masks, _metadata(spec, source, split, ids))


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


def load_split(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions, split: str) -> SplitData:
    """The split at options.size, from the cache when its sources are unchanged."""
    fingerprint = source.fingerprint(split)
    if options.mask_threshold is not None:
        fingerprint += f"/mask>{options.mask_threshold}"
    path = cache.cache_path(spec.name, options.task, split, options.size, fingerprint)
    cached = cache.read(path, options.size)
    if cached is not None:
        return SplitData([str(i) for i in cached["ids"]], cached["images"], cached["masks"],
                         {str(key): [str(v) for v in column] for key, column in
                          zip(cached["metadata_keys"], cached["metadata"].T)})
    data = _decode(spec, source, split, options)
    try:
        cache.write(path, data.ids, data.images, data.masks, data.metadata)
    except SegbenchError as exc:  # a read-only cache slows the next run, it does not stop this one
        print(f"warning: not cached: {exc}", file=sys.stderr)
    return data
