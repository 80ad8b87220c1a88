"""FID/KID of synthetic vs real images through torchmetrics, with a small custom feature module checked
against the formulas; Inception weights only from a file (nothing downloaded)."""

import importlib.util

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from segbench import SegbenchError

pytest.importorskip("torchmetrics")

from segbench.metrics.fidelity import as_rgb_uint8, fid_kid, inception_features  # noqa: E402


class GreyStatistics(nn.Module):
    """uint8 (N, 3, H, W) -> (N, 5): the grey channel's means over a 2x2 grid and its standard deviation."""

    num_features = 5

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        grey = images[:, :1].float() / 255
        return torch.cat([nn.functional.adaptive_avg_pool2d(grey, 2).flatten(1), grey.flatten(1).std(1, keepdim=True)], 1)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (Heusel et al. 2017)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    d = a.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    n = len(a)
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    off = lambda m: (m.sum() - np.trace(m)) / (n * (n - 1))  # noqa: E731
    return float(off(kaa) + off(kbb) - 2 * kab.mean())


def images(n: int, brightness: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (brightness + 0.2 * torch.rand(n, 1, 16, 16, generator=generator)).clamp(0, 1)


def test_fid_and_kid_match_their_formulas_on_custom_features():
    real, fake = images(40, 0.3, 0), images(40, 0.4, 1)
    torch.manual_seed(0)
    scores = fid_kid(real, fake, feature=GreyStatistics(), kid_subsets=1, kid_subset_size=40, batch_size=16)
    features = GreyStatistics()
    a = features(as_rgb_uint8(real)).double().numpy()
    b = features(as_rgb_uint8(fake)).double().numpy()
    assert scores["fid"] == pytest.approx(frechet(a, b), rel=1e-4)
    assert scores["kid_mean"] == pytest.approx(kid(a, b), rel=1e-4)
    same = fid_kid(real, real, feature=GreyStatistics(), kid_subsets=1)
    assert abs(same["fid"]) < 1e-6 and scores["fid"] > 1e-3


def test_grey_images_become_uint8_rgb():
    out = as_rgb_uint8(torch.tensor([0.0, 0.5, 1.0, 1.2]).view(1, 1, 2, 2))
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 1].tolist() == [128, 128, 128] and out[0, 0].flatten().tolist() == [0, 128, 255, 255]


def test_inception_weights_come_from_a_file_only(tmp_path):
    with pytest.raises(SegbenchError, match="not found.*nothing is downloaded"):
        inception_features(tmp_path / "missing.pth")
    with pytest.raises(SegbenchError, match="needs a feature module or the path"):
        fid_kid(images(4, 0.3, 0), images(4, 0.3, 1))


@pytest.mark.skipif(importlib.util.find_spec("torch_fidelity") is not None, reason="torch-fidelity is installed")
def test_without_torch_fidelity_the_inception_path_says_what_to_install(tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    with pytest.raises(SegbenchError, match="torch-fidelity"):
        inception_features(weights)
