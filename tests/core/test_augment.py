"""Augmentation (`--augment`): a sample's draws depend on (seed, epoch, sample id) alone, not on its batch;
image and mask move together; intensity touches the image alone; `none` changes nothing; config.json and the
report record the policy; a stage's stored digest knows the policy only where the stage is augmented."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from segbench.data.augmentation import STANDARD, Draw, describe, resolve
from segbench.engine.augment import Augmenter, apply, augment_seed, draw
from segbench.engine.stages import StageSource
from segbench.specs import DatasetSpec, Stage

CPU = torch.device("cpu")
OFF = Draw(0.0, 0.0, 0.0)
# every transform on every sample, so each one's code runs in every test
ALWAYS = replace(STANDARD, **{name: getattr(STANDARD, name)._replace(p=1.0) for name in
                              ("rotation", "scale", "deformation", "noise", "blur", "brightness", "contrast", "gamma")},
                 flip=1.0, flips=("left-right", "up-down"))
GEOMETRIC = replace(ALWAYS, noise=OFF, blur=OFF, brightness=OFF, contrast=OFF, gamma=OFF)
INTENSITY = replace(ALWAYS, rotation=OFF, scale=OFF, deformation=OFF, flip=0.0)


def _batch(n: int = 7, size: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, size, size, generator=g)
    masks = (torch.rand(n, 1, size, size, generator=g) > 0.5).float()
    return images, masks


def _blobs(n: int = 5, size: int = 48) -> torch.Tensor:
    """Masks of a disc each, off centre, so that every geometric transform moves them."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.stack([((x - 14 - 3 * i) ** 2 + (y - 20 - 2 * i) ** 2 < (8 + i) ** 2).float()[None]
                        for i in range(n)])


def _seeds(n: int, epoch: int = 0, seed: int = 3) -> list[int]:
    return [augment_seed(seed, epoch, f"train/{i}") for i in range(n)]


@pytest.mark.parametrize("policy", [STANDARD, ALWAYS], ids=["standard", "every-transform"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_sample_is_augmented_the_same_alone_at_any_position_in_any_batch(policy, threads):
    images, masks = _batch()
    seeds = _seeds(len(images))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole = apply(draw(policy, seeds, (40, 40), CPU), images, masks)
        order = [5, 0, 3]
        part = apply(draw(policy, [seeds[i] for i in order], (40, 40), CPU), images[order], masks[order])
        for i in range(len(images)):
            alone = apply(draw(policy, [seeds[i]], (40, 40), CPU), images[i:i + 1], masks[i:i + 1])
            assert all(torch.equal(a[0], w[i]) for a, w in zip(alone, whole)), i
        assert all(torch.equal(p, w[order]) for p, w in zip(part, whole))
    finally:
        torch.set_num_threads(before)


def test_image_and_mask_get_the_same_geometric_transform():
    """An image equal to its mask: after augmentation, the image thresholded at 0.5 is the mask, exactly under
    the geometric transforms alone, and on at least 97 % of pixels with every intensity transform on too (noise
    and blur move pixels at the edge across the threshold)."""
    masks = _blobs()
    seeds = _seeds(len(masks))
    images, moved = apply(draw(GEOMETRIC, seeds, (48, 48), CPU), masks.clone(), masks)
    assert not torch.equal(moved, masks)
    assert torch.equal((images >= 0.5).float(), moved)
    images, moved = apply(draw(ALWAYS, seeds, (48, 48), CPU), masks.clone(), masks)
    agreement = ((images >= 0.5).float() == moved).float().mean(dim=(1, 2, 3))
    assert agreement.min() >= 0.97, agreement
    assert set(moved.unique().tolist()) <= {0.0, 1.0}


def test_intensity_transforms_touch_the_image_alone_and_keep_it_in_range():
    images, masks = _batch()
    augmented, same = apply(draw(INTENSITY, _seeds(len(images)), (40, 40), CPU), images, masks)
    assert torch.equal(same, masks)
    assert not torch.equal(augmented, images)
    assert augmented.min() >= 0 and augmented.max() <= 1


def test_a_sample_that_draws_no_transform_is_left_exactly_as_it_was():
    images, masks = _batch()
    never = replace(INTENSITY, noise=OFF, blur=OFF, brightness=OFF, contrast=OFF, gamma=OFF)
    out = apply(draw(never, _seeds(len(images)), (40, 40), CPU), images, masks)
    assert torch.equal(out[0], images) and torch.equal(out[1], masks)


def test_draws_are_fixed_by_seed_epoch_and_sample_id():
    images, masks = _batch(3)
    index = torch.arange(3)
    augmenter = Augmenter(ALWAYS, 3, [f"train/{i}" for i in range(3)])
    first = augmenter((images, masks), index, 0)
    assert all(torch.equal(a, b) for a, b in zip(first, augmenter((images, masks), index, 0)))
    for other in (augmenter((images, masks), index, 1), Augmenter(ALWAYS, 4, augmenter.ids)((images, masks), index, 0),
                  Augmenter(ALWAYS, 3, ["val/0", "val/1", "val/2"])((images, masks), index, 0)):
        assert not torch.equal(other[0], first[0])
    assert augment_seed(0, 0, "train/0") == augment_seed(0, 0, "train/0") != augment_seed(0, 1, "train/0")


def test_augmenting_draws_nothing_from_the_global_generators():
    state = torch.get_rng_state()
    images, masks = _batch(3)
    Augmenter(ALWAYS, 0, ["a", "b", "c"])((images, masks), torch.arange(3), 0)
    assert torch.equal(torch.get_rng_state(), state)


def test_flips_are_the_datasets_to_allow():
    assert STANDARD.flips == () and resolve("none", ("left-right",)) is None
    assert resolve("standard", ("left-right",)).flips == ("left-right",)
    masks = _blobs(8)
    no_flips = replace(GEOMETRIC, rotation=OFF, scale=OFF, deformation=OFF, flips=())
    assert torch.equal(apply(draw(no_flips, _seeds(8), (48, 48), CPU), masks)[0], masks)
    with pytest.raises(Exception, match="allows flip 'sideways'; valid: left-right, up-down"):
        DatasetSpec("d", ("lung",), lambda options: None, "", flips=("sideways",))
    assert "flips none (the dataset declares none)" in describe("standard", ())


def test_only_labelled_stages_and_those_that_ask_are_augmented():
    assert Stage("train").augmented and not Stage("pretrain", view="images").augmented
    assert Stage("pretrain", view="images", augment=True).augmented
    assert not Stage("calibrate", view="healthy", fit="fit", fit_on="scores").augmented


def test_a_stored_stage_knows_the_policy_only_where_it_is_augmented():
    source = StageSource(model="m", plugin="p", stage={"name": "s"}, hyperparameters={}, training={"steps": 1},
                         fit_batch=None, data="d", seed=0, previous="", device="cpu", precision="fp32", processes=1,
                         kernels={}, versions={})
    augmented = replace(source, augment={"name": "standard"})
    assert augmented.digest() != source.digest()
    # a stage that is not augmented keeps the digest it had before augmentation existed
    import hashlib
    from dataclasses import asdict
    before = {k: v for k, v in asdict(source).items() if k != "augment"}
    assert source.digest() == hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:32]


TOY = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--image-size", "32", "--quiet")
RESULTS = ("per_image.csv", "summary.csv", "predictions/toy-cnn.npz")


def test_augment_none_changes_nothing_standard_changes_training_and_both_are_recorded(run_cli, tmp_path):
    assert run_cli(*TOY, "--out", str(tmp_path / "default"))[0] == 0
    assert run_cli(*TOY, "--augment", "none", "--out", str(tmp_path / "none"))[0] == 0
    code, _, stderr = run_cli(*TOY, "--augment", "standard", "--out", str(tmp_path / "standard"))
    assert code == 0, stderr
    read = lambda run, name: (tmp_path / run / name).read_bytes()  # noqa: E731
    assert all(read("default", n) == read("none", n) for n in RESULTS)
    assert read("standard", "predictions/toy-cnn.npz") != read("none", "predictions/toy-cnn.npz")
    plan = json.loads(read("standard", "config.json"))["plan"]
    assert (plan["augment"], plan["augment_flips"]) == ("standard", [])
    assert json.loads(read("none", "config.json"))["plan"]["augment"] == "none"
    assert "- **Augmentation**: standard: rotation ±15°" in read("standard", "report.md").decode()
    assert "- **Augmentation**: none\n" in read("none", "report.md").decode()


def test_an_unknown_policy_is_one_clear_line(run_cli, tmp_path):
    code, _, stderr = run_cli(*TOY, "--augment", "strong", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown --augment policy 'strong'" in stderr and "valid: none, standard" in stderr


def test_training_under_augmentation_stopped_mid_epoch_resumes_bit_for_bit(tmp_path):
    from segbench.data.prepare import SplitData
    from segbench.engine.device import Runtime
    from segbench.engine.stopping import Stopped
    from segbench.engine.training import Checkpointing, train
    from segbench.training_settings import TrainingSettings
    from tests.toy_plugin import ToyCNN

    images, masks = _batch(12, 32)
    data = SplitData([f"train/{i}" for i in range(12)], (images[:, 0] * 255).to(torch.uint8).numpy(),
                     masks[:, 0].to(torch.uint8).numpy())
    settings, cpu = TrainingSettings(epochs=3, batch_size=3), Runtime(CPU, "fp32")
    augment = Augmenter(ALWAYS, 3, data.ids)
    torch.manual_seed(0)
    full = ToyCNN(4, 0.0)
    train(full, data, settings, seed=5, runtime=cpu, augment=augment)
    asked = iter(range(100))
    torch.manual_seed(0)
    with pytest.raises(Stopped):  # asked after each step and epoch: stops in epoch 2, after its first step
        train(ToyCNN(4, 0.0), data, settings, seed=5, runtime=cpu, augment=augment, should_stop=lambda: next(asked) == 5,
              checkpointing=Checkpointing(tmp_path, every_seconds=0))
    torch.manual_seed(1)  # another init: everything comes from the checkpoint
    resumed = ToyCNN(4, 0.0)
    train(resumed, data, settings, seed=5, runtime=cpu, augment=augment, checkpointing=Checkpointing(tmp_path, resume=True))
    assert all(torch.equal(a, b) for a, b in zip(full.parameters(), resumed.parameters()))
