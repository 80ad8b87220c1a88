"""ddpm-features against direct computations: which timesteps and blocks make the features, the MLP
ensemble's layout, the stage-2 loss, prediction by the ensemble's majority vote (or mean), per-sample results;
and a short learning check of the MLP stage."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from segbench import Prediction
from segbench_backbone.schedules import q_sample
from segbench_unconditional.features import BELOW_HALF, PixelMLPEnsemble, as_pixels, vote_fusion
from tests.unconditional.helpers import perturb, tiny_features


def test_features_are_the_chosen_blocks_at_the_chosen_timesteps_upsampled():
    model = tiny_features(feature_timesteps=(30, 400), feature_blocks="4,1").eval()
    perturb(model.ddpm)
    hp = model.hparams
    images = torch.rand(2, 1, 32, 32)
    features = model.features(images)
    widths = [hp.decoder_blocks[b][0] for b in (4, 1)]
    assert features.shape == (2, hp.features_per_pixel, 32, 32) == (2, 2 * sum(widths), 32, 32)
    offset = 0
    for t in (30, 400):  # ordered by timestep, then block
        tt = torch.full((2,), t)
        # one noise, shared by every image and timestep (Baranchuk et al.'s share_noise)
        x_t = q_sample(images * 2 - 1, tt, model.feature_noise.expand(2, 1, 32, 32), model.ddpm.alphas_cumprod)
        for block, width in zip((4, 1), widths):
            activation = model.ddpm.decoder_activations(x_t, tt, [block])[0]
            expected = F.interpolate(activation, size=(32, 32), mode="bilinear", align_corners=False)
            torch.testing.assert_close(features[:, offset:offset + width], expected)
            offset += width
    assert hp.decoder_blocks[1][1] == 16  # block 1 is upsampled from 16x16: interpolation was needed


def test_feature_noise_is_fixed_by_its_seed():
    a, b = tiny_features(), tiny_features()
    assert torch.equal(a.feature_noise, b.feature_noise)
    assert not torch.equal(a.feature_noise, tiny_features(feature_noise_seed=1).feature_noise)
    assert "feature_noise" not in a.state_dict()  # derived from the hyperparameters, not checkpointed


def test_ensemble_layout_is_the_papers_pixel_classifier():
    ensemble = PixelMLPEnsemble(features=40, widths=(128, 32), size=10)
    assert len(ensemble.members) == 10
    for member in ensemble.members:
        kinds = [type(layer) for layer in member]
        assert kinds == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Linear]
        assert [(l.in_features, l.out_features) for l in member if isinstance(l, nn.Linear)] == [(40, 128), (128, 32), (32, 1)]
        assert [l.num_features for l in member if isinstance(l, nn.BatchNorm1d)] == [128, 32]
        first = member[0].requires_grad_(False)
        assert float(first.bias.abs().max()) == 0 and abs(float(first.weight.std()) - 0.02) < 0.002  # N(0, 0.02)
    assert not torch.equal(ensemble.members[0][0].weight, ensemble.members[1][0].weight)  # independent members
    ensemble.eval()
    pixels = torch.randn(50, 40)
    direct = torch.stack([member(pixels)[:, 0] for member in ensemble.members])
    torch.testing.assert_close(ensemble(pixels), direct)


def test_mlp_loss_is_each_members_bce_on_its_pixels_and_trains_only_the_ensemble():
    model = tiny_features(pixels_per_step=10**6)  # more than the batch holds: every member sees every pixel
    perturb(model.ddpm)
    model.ddpm.eval()
    model.ensemble.train()
    images, masks = torch.rand(2, 1, 32, 32), (torch.rand(2, 1, 32, 32) > 0.7).float()
    loss = model.training_loss(images, masks)
    pixels, targets = as_pixels(model.features(images)), masks.reshape(-1)
    # BatchNorm in train mode normalises by the batch: the same set of pixels gives the same mean loss
    expected = torch.stack([F.binary_cross_entropy_with_logits(member(pixels)[:, 0], targets)
                            for member in model.ensemble.members]).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(p.grad is None for p in model.ddpm.parameters())  # features come from the frozen DDPM
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.ensemble.parameters())


def test_each_member_draws_its_own_pixels():
    model = tiny_features(pixels_per_step=16)
    seen = []
    original = model.ensemble.member_logits
    model.ensemble.member_logits = lambda pixels: (seen.append(pixels), original(pixels))[1]
    torch.manual_seed(0)
    model.training_loss(torch.rand(2, 1, 32, 32), torch.zeros(2, 1, 32, 32))
    (pixels,) = seen
    assert pixels.shape == (2, 16, model.hparams.features_per_pixel)
    assert not torch.equal(pixels[0], pixels[1])


def mode_vote(logits):
    """The reference's prediction: each member's argmax over (background, foreground) logits (0, logit), then
    torch.mode over the members -> (class (...), fraction of foreground votes (...))."""
    labels = torch.stack([torch.zeros_like(logits), logits], dim=-1).argmax(-1)
    return torch.mode(labels, dim=0).values, labels.double().mean(0)


def jensen_shannon(logits):
    """mean_m KL(p_m || mean p) in float64 over the classes (1 - p, p): the members' JS divergence."""
    p = logits.double().sigmoid()
    members = torch.stack([1 - p, p], dim=-1)  # (M, ..., 2)
    mean = members.mean(0)
    return (members * (members / mean).log()).nan_to_num().sum(-1).mean(0)


def test_vote_fusion_on_a_hand_made_ensemble():
    """Ten members at six pixels: unanimous, 6:4, a 5:5 tie, 4:6, unanimous background, and a 5:5 tie where
    a member's logit is 0 (argmax takes the first class: background)."""
    votes = [10, 6, 5, 4, 0, 5]
    logits = torch.full((10, 6), -1.5)
    for pixel, count in enumerate(votes):
        logits[:count, pixel] = torch.linspace(0.3, 4.0, count)
    logits[5, 5] = 0.0  # a sixth member at exactly 0 is no foreground vote
    logits += 0.1 * torch.randn(10, 6, generator=torch.Generator().manual_seed(0)).abs() * (logits != 0)
    probabilities, uncertainty = vote_fusion(logits)
    label, fraction = mode_vote(logits)
    assert label.tolist() == [1, 1, 0, 0, 0, 0] == (probabilities >= 0.5).long().tolist()  # ties: background
    assert fraction.tolist() == [1.0, 0.6, 0.5, 0.4, 0.0, 0.5]
    assert probabilities[[0, 1, 3, 4]].tolist() == torch.tensor([1.0, 0.6, 0.4, 0.0]).tolist()  # the vote fraction
    assert probabilities[2] == probabilities[5] == BELOW_HALF == torch.nextafter(torch.tensor(0.5), torch.tensor(0.0))
    torch.testing.assert_close(uncertainty.double(), jensen_shannon(logits), atol=1e-6, rtol=1e-5)
    assert uncertainty[4] < uncertainty[2] and float(uncertainty.max()) <= math.log(2)
    same = torch.full((4, 3), 0.7)  # members that agree in probability have no JS divergence
    assert vote_fusion(same)[1].abs().max() < 1e-6


def test_prediction_fuses_the_ensemble_by_vote_by_default_or_by_mean():
    model = tiny_features(ensemble_size=3).eval()
    perturb(model)
    assert model.hparams.ensemble_fusion == "vote"
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():  # each member's median logit to 0: the members vote both ways and disagree
        for member, logits in zip(model.ensemble.members, model.ensemble(as_pixels(model.features(images)))):
            member[-1].bias -= logits.median()
    out = model.predict(images, torch.tensor([1, 2]))
    assert isinstance(out, Prediction) and out.probabilities.shape == out.uncertainty.shape == (2, 1, 32, 32)
    logits = model.ensemble(as_pixels(model.features(images))).reshape(3, 2, 1, 32, 32)
    label, fraction = mode_vote(logits)
    assert 0 < float(label.float().mean()) < 1  # both classes occur
    assert torch.equal(out.probabilities >= 0.5, label.bool())
    torch.testing.assert_close(out.probabilities.double(), fraction)  # 3 members: no ties
    torch.testing.assert_close(out.uncertainty.double(), jensen_shannon(logits), atol=1e-6, rtol=1e-5)
    by_mean = tiny_features(ensemble_size=3, ensemble_fusion="mean").eval()
    by_mean.load_state_dict(model.state_dict())
    out = by_mean.predict(images, torch.tensor([1, 2]))
    members = torch.sigmoid(logits)
    torch.testing.assert_close(out.probabilities, members.mean(0))
    torch.testing.assert_close(out.uncertainty, members.std(0, correction=0))


def test_a_samples_prediction_does_not_depend_on_its_batch():
    """The same bits with other companions and at another position in a batch of the engine's shape (32 on
    the CPU); the same values alone."""
    model = tiny_features(image_size=16).eval()
    perturb(model)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(32, 1, 16, 16, generator=generator)
    seeds = torch.arange(32)
    full = model.predict(images, seeds).probabilities
    others = torch.rand(32, 1, 16, 16, generator=generator)
    others[7] = images[3]
    moved = model.predict(others, seeds.flip(0)).probabilities
    assert torch.equal(moved[7], full[3])
    torch.testing.assert_close(model.predict(images[3:4], seeds[3:4]).probabilities, full[3:4], atol=1e-6, rtol=0)


def test_mlp_stage_learns_from_a_few_labelled_images():
    """Short learning check: with the DDPM untouched (random, as at the start of stage 2 on a poor DDPM), the
    pixel MLPs read a bright 8x8 square off the decoder features at 1/4 and 1/2 of a 32x32 image (the default
    blocks: the tiny U-Net has no 1/8 level): Dice > 0.8 on new images."""
    model = tiny_features(image_size=32, pixels_per_step=512)
    perturb(model.ddpm, scale=0.02)
    model.ddpm.eval()
    generator = torch.Generator().manual_seed(0)

    def batch(n):
        masks = torch.zeros(n, 1, 32, 32)
        for i in range(n):
            r, c = torch.randint(0, 24, (2,), generator=generator).tolist()
            masks[i, :, r:r + 8, c:c + 8] = 1
        return (0.3 + 0.4 * masks + 0.05 * torch.randn(masks.shape, generator=generator)).clamp(0, 1), masks

    images, masks = batch(8)
    optimizer = torch.optim.Adam(model.ensemble.parameters(), lr=1e-2)
    torch.manual_seed(0)
    model.ensemble.train()
    for _ in range(40):
        loss = model.training_loss(images, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test_images, test_masks = batch(8)
    predicted = model.predict(test_images, torch.arange(8)).probabilities >= 0.5
    dice = 2 * (predicted & (test_masks > 0)).sum() / (predicted.sum() + test_masks.sum())
    assert dice > 0.8, float(dice)
