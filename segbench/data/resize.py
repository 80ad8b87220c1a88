"""Resize native images and masks to the run's square size, as uint8 (and maps back to an image's own size)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_gray_float(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3|4) uint8 / float in [0, 1] -> (H, W) float32 in [0, 1]."""
    img = np.asarray(image)
    scale = 255.0 if img.dtype == np.uint8 else 1.0
    img = img.astype(np.float32) / scale
    if img.ndim == 3:
        # ITU-R 601 luma, as PIL's convert("L").
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


def resample(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 (H, W) -> `shape`: area averaging when shrinking (no aliasing), bilinear when enlarging."""
    if array.shape == shape:
        return array
    t = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    if array.shape[0] >= shape[0] and array.shape[1] >= shape[1]:
        out = F.interpolate(t, size=shape, mode="area")
    else:
        out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def resize_nearest(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) -> `shape` by nearest neighbour: each output pixel is the input pixel under its centre (as PIL's
    NEAREST), so a mask keeps its values and gains none."""
    rows = ((np.arange(shape[0]) + 0.5) * array.shape[0] / shape[0]).astype(np.int64)
    cols = ((np.arange(shape[1]) + 0.5) * array.shape[1] / shape[1]).astype(np.int64)
    return array[rows[:, None], cols]


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Any image -> (size, size) uint8."""
    return np.round(resample(to_gray_float(image), (size, size)) * 255).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary (H, W) mask in {0, 1} -> (size, size) uint8 {0, 1}: area average, then >= 0.5."""
    return (resample(mask.astype(np.float32), (size, size)) >= 0.5).astype(np.uint8)
