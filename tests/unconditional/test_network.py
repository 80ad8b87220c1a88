"""The X-ray DDPM's pieces against direct computations: linear attention, partial DDIM, the training
loss, decoder activations, per-sample synthesis; and a short learning check."""

import math

import pytest
import torch

from segbench_backbone.schedules import q_sample
from segbench_backbone.unet import AttentionBlock, LinearAttentionBlock, NoiseUNet, timestep_embedding
from segbench_unconditional.network import ddim_from, partial_ddim_timesteps
from tests.unconditional.helpers import perturb, tiny_features


def test_linear_attention_is_shen_et_al_per_head():
    """out = x + W_o [per head: sum_l softmax_L(k)_l v_l^T ... ] computed position by position."""
    torch.manual_seed(0)
    block = LinearAttentionBlock(channels=8, head_channels=4, norm_groups=2)
    perturb(block)
    x = torch.randn(2, 8, 3, 5)
    qkv = block.qkv(block.norm(x).flatten(2))  # (B, 3C, L)
    q, k, v = qkv[:, :8], qkv[:, 8:16], qkv[:, 16:]
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        qh = q[:, sl].softmax(dim=1) / math.sqrt(4)  # over the head's channels, scaled
        kh = k[:, sl].softmax(dim=2)  # over the positions
        context = torch.einsum("bdl,bel->bde", kh, v[:, sl])  # sum_l k_l v_l^T
        heads.append(torch.einsum("bde,bdl->bel", context, qh))
    expected = x + block.proj_out(torch.cat(heads, 1)).reshape(x.shape)
    torch.testing.assert_close(block(x), expected)


def test_linear_attention_has_the_parameters_of_full_attention_and_is_opt_in():
    full, linear = AttentionBlock(64, 32, 8), LinearAttentionBlock(64, 32, 8)
    assert [p.shape for p in full.parameters()] == [p.shape for p in linear.parameters()]
    kw = dict(in_channels=1, image_size=32, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
              attention_resolutions=(16,), head_channels=8, norm_groups=4)
    default, opted = NoiseUNet(**kw), NoiseUNet(**kw, attention="linear")
    assert not any(isinstance(m, LinearAttentionBlock) for m in default.modules())  # existing models unchanged
    assert sum(isinstance(m, LinearAttentionBlock) for m in opted.modules()) == 3  # 16x16: 1 encoder + 2 decoder
    assert isinstance(opted.middle.attention, AttentionBlock)
    with pytest.raises(ValueError, match="attention must be one of"):
        NoiseUNet(**kw, attention="sparse")


def test_partial_ddim_timesteps():
    assert partial_ddim_timesteps(200, 10) == [200, 180, 160, 140, 120, 100, 80, 60, 40, 20]
    assert partial_ddim_timesteps(7, 1) == [7]
    assert partial_ddim_timesteps(3, 4) == [3, 2, 2, 1]  # rounds; evaluations stay `steps`


def test_ddim_from_an_exact_noise_model_returns_x0():
    """With eps_theta = the eps that x_t and a known x0 imply, every DDIM update stays on x0's trajectory."""
    model = tiny_features()
    abar = model.ddpm.alphas_cumprod
    x0 = torch.rand(3, 1, 8, 8) * 2 - 1
    x_t = q_sample(x0, torch.full((3,), 300), torch.randn(3, 1, 8, 8), abar)

    def exact(x, t):
        a = abar[t].view(-1, 1, 1, 1)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    torch.testing.assert_close(ddim_from(exact, x_t, abar, partial_ddim_timesteps(300, 6)), x0, atol=1e-4, rtol=0)


def test_loss_is_l_simple(monkeypatch):
    """Ho et al. Eq. 14: zero for a network that returns the drawn noise, E||eps||^2 = 1 for one returning 0."""
    model = tiny_features().ddpm
    drawn = {}
    real_randn_like = torch.randn_like

    def recording_randn_like(x, **kw):
        drawn["noise"] = real_randn_like(x, **kw)
        return drawn["noise"]

    monkeypatch.setattr(torch, "randn_like", recording_randn_like)
    monkeypatch.setattr(model, "eps", lambda x_t, t: drawn["noise"])
    assert float(model.loss(torch.rand(4, 1, 32, 32))) == 0.0
    monkeypatch.setattr(model, "eps", lambda x_t, t: torch.zeros_like(x_t))
    assert abs(float(model.loss(torch.rand(64, 1, 32, 32))) - 1.0) < 0.02


def test_decoder_activations_are_the_decoder_stage_outputs():
    """Hooks read exactly what the forward pass computes at each stage, replayed by hand here."""
    ddpm = tiny_features().ddpm.eval()
    perturb(ddpm)
    unet = ddpm.unet
    x, t = torch.randn(2, 1, 32, 32), torch.tensor([5, 600])
    with torch.no_grad():
        embedding = unet.time_embedding(timestep_embedding(t, unet.base_channels))
        h = unet.input_conv(x)
        skips = [h]
        for stage in unet.encoder:
            h = stage(h, embedding)
            skips.append(h)
        h = unet.middle_out(unet.middle(h, embedding), embedding)
        outputs = []
        for stage in unet.decoder:
            h = stage(torch.cat([h, skips.pop()], 1), embedding)
            outputs.append(h)
    got = ddpm.decoder_activations(x, t, [4, 1, 3])
    for block, activation in zip([4, 1, 3], got):
        torch.testing.assert_close(activation, outputs[block])
    assert not unet.decoder[1]._forward_hooks  # the hooks are removed


def test_synthesize_draws_each_image_from_its_own_seed():
    model = tiny_features()
    perturb(model.ddpm)
    batch = model.synthesize(torch.tensor([3, 4, 5]))
    assert batch.shape == (3, 1, 32, 32) and batch.dtype == torch.float32
    assert float(batch.min()) >= 0 and float(batch.max()) <= 1
    torch.testing.assert_close(model.synthesize(torch.tensor([4])), batch[1:2], atol=1e-5, rtol=0)
    assert torch.equal(model.synthesize(torch.tensor([3, 4, 5])), batch)
    assert not torch.equal(batch[0], batch[1])


def test_tiny_ddpm_learns_to_denoise_structured_images():
    """Short learning check: L_simple on images with a bright disc falls well below its starting value."""
    model = tiny_features(image_size=16).ddpm.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    losses = []
    torch.manual_seed(0)
    for _ in range(80):
        centre = torch.rand(8, 2, generator=generator) * 8 + 4
        disc = ((yy - centre[:, :1, None]) ** 2 + (xx - centre[:, 1:, None]) ** 2 < 9).float()
        loss = model.loss((0.2 + 0.6 * disc).unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
