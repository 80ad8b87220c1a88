"""Decoding image files as every file-based dataset and `segbench predict` read them (PIL)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from segbench.errors import SegbenchError

# Modes whose values do not fit 8 bits (16-bit and float X-rays).
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case suffixes (".png", ".tif", ...) of the formats PIL can open."""
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def broken_link(path: Path) -> str | None:
    """"PATH is a symbolic link to TARGET, which does not exist" where `path` is such a link, else None."""
    if path.is_symlink() and not path.exists():
        return f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
    return None


def read_image(path: Path) -> np.ndarray:
    """(H, W) grayscale: uint8 for 8-bit files (RGB and palette via PIL's "L"),
    float32 in [0, 1] (min-max scaled) for 16-bit and float files."""
    try:
        with Image.open(path) as image:
            if image.mode in WIDE_MODES:
                values = np.asarray(image, dtype=np.float32)
                low, high = float(values.min()), float(values.max())
                return (values - low) / (high - low) if high > low else np.zeros_like(values)
            return np.array(image.convert("L"))
    except DECODE_ERRORS as error:
        raise SegbenchError(f"cannot read image {path}: {error}; replace or remove that file") from None
