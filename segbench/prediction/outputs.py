"""What `segbench predict` writes for one input, beside the input's id under the output folder:

    <id>.mask.png           the mask at the input's own size: 0 or 255 (probabilities resized back, then
                            thresholded at the run's threshold)
    <id>.probability.png    the probability map at the input's own size, 16-bit grey: value / 65535
    <id>.uncertainty.png    where the model or the ensemble gives one, the per-pixel uncertainty (`segbench.fusion`),
                            16-bit: value / 65535
    <id>.overlay.png        the image in grey with the mask in red
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segbench.data.resize import resample, to_gray_float
from segbench.io import atomic_write

UINT16_MAX = 65535
OVERLAY_OPACITY = 0.45
RED = np.array([255.0, 0.0, 0.0], dtype=np.float32)


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_write(path) as handle:
        Image.fromarray(array).save(handle, format="PNG")


def _as_uint16(values: np.ndarray) -> np.ndarray:
    return np.round(np.clip(values, 0.0, 1.0) * UINT16_MAX).astype(np.uint16)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image (H, W) in grey, the mask's pixels tinted red."""
    grey = np.repeat(to_gray_float(image)[..., None] * 255.0, 3, axis=-1)
    tinted = np.where(mask[..., None], (1 - OVERLAY_OPACITY) * grey + OVERLAY_OPACITY * RED, grey)
    return np.round(tinted).astype(np.uint8)


def write_outputs(out: Path, sample_id: str, image: np.ndarray, probabilities: np.ndarray,
                  uncertainty: np.ndarray | None, threshold: float) -> dict[str, str]:
    """Write one input's files (see the module's docstring); returns each kind's path relative to `out`,
    and the mask's foreground fraction. image: (H, W) as read; probabilities, uncertainty: (S, S) float32."""
    shape = image.shape[:2]
    full = resample(probabilities.astype(np.float32), shape)
    mask = full >= threshold
    files = {"mask": f"{sample_id}.mask.png", "probability": f"{sample_id}.probability.png",
             "overlay": f"{sample_id}.overlay.png", "uncertainty": ""}
    _save_png(out / files["mask"], mask.astype(np.uint8) * 255)
    _save_png(out / files["probability"], _as_uint16(full))
    _save_png(out / files["overlay"], overlay(image, mask))
    if uncertainty is not None:
        files["uncertainty"] = f"{sample_id}.uncertainty.png"
        _save_png(out / files["uncertainty"], _as_uint16(resample(uncertainty.astype(np.float32), shape)))
    return {**files, "foreground": f"{mask.mean():.6f}"}
