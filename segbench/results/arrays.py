"""Reading back the arrays of a run directory: a model's predictions and the evaluated reference."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from segbench.errors import SegbenchError
from segbench.results.store import REFERENCE_FILE, prediction_file, synthetic_file


class StoredPredictions(NamedTuple):
    """ids (N,); probabilities float16 (N, H, W) in [0, 1]; uncertainty (N, H, W) per pixel, or None."""

    ids: list[str]
    probabilities: np.ndarray
    uncertainty: np.ndarray | None

    @property
    def has_uncertainty(self) -> bool:
        """Whether an uncertainty map with any non-zero value is stored (an all-zero map carries nothing)."""
        return self.uncertainty is not None and bool(self.uncertainty.any())


class Reference(NamedTuple):
    """ids (N,); images and masks uint8 (N, H, W), masks in {0, 1}: the evaluated samples."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray


def _load(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SegbenchError(f"{what} {path} cannot be read: {exc}") from exc


def read_predictions(run_dir: Path, model: str) -> StoredPredictions:
    """`model`'s saved probabilities (and uncertainty) in `run_dir`; a missing file is a clear error."""
    path = Path(run_dir) / prediction_file(model)
    if not path.is_file():
        raise SegbenchError(f"model {model!r} has no saved predictions ({path} is missing)")
    arrays = _load(path, "predictions")
    uncertainty = arrays["uncertainty"]
    return StoredPredictions([str(i) for i in arrays["sample_id"]], arrays["probabilities"],
                             uncertainty if uncertainty.size else None)


def read_reference(run_dir: Path) -> Reference:
    """The evaluated images and ground-truth masks; runs made before they were saved get a clear error."""
    path = Path(run_dir) / REFERENCE_FILE
    if not path.is_file():
        raise SegbenchError(
            f"{run_dir} has no {REFERENCE_FILE} (the evaluated images and ground-truth masks, saved by runs "
            "made with a newer segbench): re-scoring and the qualitative figure need it; rerun the models to get it"
        )
    arrays = _load(path, "reference")
    return Reference([str(i) for i in arrays["sample_id"]], arrays["images"], arrays["masks"])


def align(ids: list[str], wanted: list[str], what: str) -> np.ndarray:
    """Indices into `ids` of every id in `wanted`, in that order; a missing id is a clear error."""
    position = {sample_id: i for i, sample_id in enumerate(ids)}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise SegbenchError(f"{what} lacks sample {missing[0]!r} ({len(missing)} missing)")
    return np.array([position[w] for w in wanted], dtype=np.int64)


def read_synthetic(run_dir: Path, model: str) -> np.ndarray | None:
    """The images `model` synthesised after training, uint8 (N, H, W), or None when it made none."""
    path = Path(run_dir) / synthetic_file(model)
    return _load(path, "synthetic images")["images"] if path.is_file() else None
