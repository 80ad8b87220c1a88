"""FID and KID of synthetic against real X-rays, through torchmetrics, with feature weights from disk only.

torchmetrics (and the torch-fidelity Inception it wraps) download Inception weights at run time when
none are given, and its KernelInceptionDistance takes no weights path at all; here one feature
extractor is built once, from a file the user names, and handed to both metrics as a custom module,
so nothing is ever downloaded. Grey images are repeated to three channels and given as uint8
(N, 3, H, W), the input torchmetrics' Inception takes (it resizes to 299 itself).

torchmetrics is an optional extra (`pip install torchmetrics`; the Inception extractor also needs
`pip install torch-fidelity`); the weights file is torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth`, the TF-FID Inception ported to PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from segbench.errors import SegbenchError


def inception_features(weights: str | Path) -> nn.Module:
    """torchmetrics' FID Inception (2048-d pool features) with weights read from `weights`; never downloads."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise SegbenchError(f"Inception weights {str(path)!r} not found; give the path of torch-fidelity's "
                            "weights-inception-2015-12-05-6726825d.pth (nothing is downloaded)")
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as exc:
        raise SegbenchError(f"FID/KID need torchmetrics ({exc}); pip install torchmetrics torch-fidelity") from None
    try:
        return NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                  feature_extractor_weights_path=str(path))
    except ModuleNotFoundError as exc:
        raise SegbenchError(f"the Inception feature extractor needs torch-fidelity ({exc}); "
                            "pip install torch-fidelity") from None


def as_rgb_uint8(images: Tensor) -> Tensor:
    """(N, 1, H, W) float in [0, 1] -> (N, 3, H, W) uint8, the grey channel repeated."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)


@torch.no_grad()
def fid_kid(real: Tensor, fake: Tensor, *, weights: str | Path | None = None, feature: nn.Module | None = None,
            kid_subset_size: int | None = None, kid_subsets: int = 100, batch_size: int = 64) -> dict[str, float]:
    """{"fid", "kid_mean", "kid_std"} of `fake` against `real`, both float (N, 1, H, W) in [0, 1].

    The features come from `feature` (a module taking uint8 (N, 3, H, W) and returning (N, d)) or, when
    it is None, from the Inception whose weights are the file `weights`. KID uses `kid_subsets` random
    subsets of `kid_subset_size` images (default: the smaller set's size), drawn by torchmetrics from the
    global torch RNG. FID needs more images than feature dimensions for a full-rank covariance (2,048
    with Inception): with fewer it is biased, as usual.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError as exc:
        raise SegbenchError(f"FID/KID need torchmetrics ({exc}); pip install torchmetrics") from None
    if feature is None:
        if weights is None:
            raise SegbenchError("fid_kid needs a feature module or the path of Inception weights")
        feature = inception_features(weights)
    feature = feature.eval()
    subset = kid_subset_size or min(len(real), len(fake))
    fid = FrechetInceptionDistance(feature=feature, reset_real_features=True)
    kid = KernelInceptionDistance(feature=feature, subsets=kid_subsets, subset_size=subset)
    device = next(feature.parameters(), torch.empty(0)).device
    fid, kid = fid.to(device), kid.to(device)
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            batch = as_rgb_uint8(images[start:start + batch_size]).to(device)
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}
