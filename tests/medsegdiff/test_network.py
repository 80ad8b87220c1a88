"""MedSegDiff's network pieces against direct computations: the FF-Parser against the DFT from its definition, the
dynamic conditional encoding against LayerNorm written out, both at every level of two image sizes; the
dual-encoder forward against the backbone U-Net's own when the image path is silenced."""

import math

import pytest
import torch

from segbench_medsegdiff.hyperparameters import PRESETS, MedSegDiffHyperparameters
from segbench_medsegdiff.network import DynamicConditionalEncoding, FFParser, MedSegDiffUNet


def hparams(size: int, preset: str = "tiny", **overrides) -> MedSegDiffHyperparameters:
    return MedSegDiffHyperparameters.from_mapping({**PRESETS[preset].model, "image_size": size, **overrides})


def randomise(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Perturb every parameter, so that identity or zero initialisations prove nothing."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def dft_filter(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """irfft2(A * rfft2(x)) from the DFT's definition, in complex128, without torch.fft:
    X[k, l] = sum_{m,n} x[m, n] e^{-2 pi i (km/H + ln/W)} for l <= W/2;
    y[m, n] = Re(1/(HW) sum_k sum_{l <= W/2} c_l A[k, l] X[k, l] e^{+2 pi i (km/H + ln/W)}), c_l = 2 for the
    interior columns the half spectrum stands for twice, 1 for l = 0 and (even W) l = W/2.
    The sums over m and n (k and l) are products with the matrices of the e^{...} terms."""
    *_, height, width = x.shape
    k = m = torch.arange(height, dtype=torch.float64)
    l = torch.arange(width // 2 + 1, dtype=torch.float64)
    n = torch.arange(width, dtype=torch.float64)
    rows = torch.exp(-2j * math.pi * k[:, None] * m[None, :] / height)  # e^{-2 pi i km/H}, (H, H), symmetric
    columns = torch.exp(-2j * math.pi * n[:, None] * l[None, :] / width)  # e^{-2 pi i ln/W}, (W, W/2+1)
    spectrum = rows @ x.to(torch.complex128) @ columns
    c = torch.where((l == 0) | (2 * l == width), 1.0, 2.0)
    filtered = c * weight.to(torch.complex128) * spectrum
    return (rows.conj() @ filtered @ columns.conj().T).real / (height * width)


@pytest.mark.parametrize("height, width", [(4, 6), (5, 5), (8, 8)])
def test_ff_parser_is_the_fourier_filter_computed_by_brute_force(height, width):
    parser = FFParser(3, height, width)
    randomise(parser)
    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    weight = torch.complex(parser.weight_real, parser.weight_imag).detach()
    assert torch.allclose(parser(x).double(), dft_filter(x, weight), atol=1e-5)


def test_ff_parser_starts_as_the_identity_and_a_dc_only_weight_gives_each_channels_mean():
    parser = FFParser(2, 8, 8)
    x = torch.randn(3, 2, 8, 8)
    assert torch.allclose(parser(x), x, atol=1e-6)
    with torch.no_grad():
        parser.weight_real.zero_()
        parser.weight_real[:, 0, 0] = 1
    assert torch.allclose(parser(x), x.mean(dim=(-2, -1), keepdim=True).expand_as(x), atol=1e-6)


def test_ff_parser_rejects_maps_of_another_size():
    with pytest.raises(ValueError, match="built for 8x8 maps"):
        FFParser(2, 8, 8)(torch.zeros(1, 2, 16, 16))


def layer_norm(x: torch.Tensor, norm: torch.nn.GroupNorm) -> torch.Tensor:
    """LN over (C, H, W) of each sample, then the per-channel affine, written out."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]


@pytest.mark.parametrize("image_size", [32, 64])
def test_dynamic_conditional_encoding_is_eq_4_at_every_scale_of_two_image_sizes(image_size):
    model = MedSegDiffUNet(hparams(image_size))
    shapes = hparams(image_size).fusion_shapes()
    assert [s for _, s, _ in shapes] == [image_size, image_size // 2, image_size // 4]
    g = torch.Generator().manual_seed(2)
    for fusion, (channels, size, _) in zip(model.fusions, shapes):
        randomise(fusion, seed=size)
        weight = torch.complex(fusion.ff_parser.weight_real, fusion.ff_parser.weight_imag).detach()
        assert weight.shape == (channels, size, size // 2 + 1)  # (C, H, W/2 + 1), from the size alone
        m_image = torch.randn(2, channels, size, size, generator=g)
        m_mask = torch.randn(2, channels, size, size, generator=g)
        filtered = dft_filter(m_mask, weight)
        assert torch.allclose(fusion.ff_parser(m_mask).double(), filtered, atol=1e-5)  # the FF-Parser alone
        expected = layer_norm(m_image, fusion.norm_image) * layer_norm(filtered.float(), fusion.norm_mask) * m_image
        assert torch.allclose(fusion(m_image, m_mask), expected, atol=1e-4)


def test_without_the_ff_parser_the_encoding_fuses_the_raw_mask_features():
    fusion = DynamicConditionalEncoding(4, 8, ff_parser=False)
    randomise(fusion)
    a, b = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert fusion.ff_parser is None
    assert torch.allclose(fusion(a, b), layer_norm(a, fusion.norm_image) * layer_norm(b, fusion.norm_mask) * a, atol=1e-5)


def silence_image_path(model: MedSegDiffUNet) -> None:
    with torch.no_grad():
        for module in (model.image_input, model.image_encoder):
            for p in module.parameters():
                p.zero_()


@pytest.mark.parametrize("dynamic", [True, False])
def test_with_the_image_path_silenced_the_network_is_its_mask_unet(dynamic):
    """E_I = 0 makes Eq. 3's sum E_x alone: the dual-encoder forward must then be the backbone NoiseUNet's."""
    model = MedSegDiffUNet(hparams(32, dynamic_encoding=dynamic, ff_parser=dynamic))
    randomise(model)
    silence_image_path(model)
    x_t, t = torch.randn(2, 1, 32, 32), torch.tensor([3, 700])
    condition = model.encode(torch.rand(2, 1, 32, 32))
    assert torch.allclose(model.network_output(x_t, t, condition), model.unet(x_t, t), atol=1e-5)


def test_the_image_encoding_depends_on_the_noisy_mask_only_with_dynamic_encoding():
    features = {}
    for dynamic in (True, False):
        torch.manual_seed(0)
        model = MedSegDiffUNet(hparams(32, dynamic_encoding=dynamic, ff_parser=dynamic))
        randomise(model)
        model.image_encoder[-1].register_forward_hook(lambda m, i, o, d=dynamic: features.setdefault(d, []).append(o))
        condition = model.encode(torch.rand(1, 1, 32, 32))
        for x_t in (torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32)):
            model.network_output(x_t, torch.tensor([10]), condition)
    assert not torch.allclose(*features[True])  # (LN(m_I) * LN(m_x)) * m_I changes with x_t
    assert torch.equal(*features[False])


@pytest.mark.parametrize("image_size", [32, 64])
def test_built_for_the_image_size_it_is_given(image_size):
    model = MedSegDiffUNet(hparams(image_size))
    x_t = torch.randn(2, 1, image_size, image_size)
    out = model.network_output(x_t, torch.tensor([0, 999]), model.encode(torch.rand(2, 1, image_size, image_size)))
    assert out.shape == x_t.shape
    sizes = [fusion.ff_parser.size for fusion in model.fusions]
    assert sizes == [(image_size // 2**k, image_size // 2**k) for k in range(3)]


def test_gradient_checkpointing_changes_nothing_but_memory():
    outputs = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = MedSegDiffUNet(hparams(16, gradient_checkpointing=checkpointing))
        randomise(model)
        x_t = torch.randn(2, 1, 16, 16)
        out = model.network_output(x_t, torch.tensor([5, 9]), model.encode(torch.rand(2, 1, 16, 16)))
        out.square().sum().backward()
        outputs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.allclose(outputs[0][0], outputs[1][0])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(outputs[0][1], outputs[1][1]))
