"""Resize native images and masks to the run's square size, as uint8."""

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


def _resample(array: np.ndarray, size: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging."""
    if array.shape == (size, size):
        return array
    t = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    if array.shape[0] >= size and array.shape[1] >= size:
        out = F.interpolate(t, size=(size, size), mode="area")
    else:
        out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Any image -> (size, size) uint8."""
    return np.round(_resample(to_gray_float(image), size) * 255).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary (H, W) mask in {0, 1} -> (size, size) uint8 {0, 1}: area average, then >= 0.5."""
    return (_resample(mask.astype(np.float32), size) >= 0.5).astype(np.uint8)
