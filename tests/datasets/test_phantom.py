"""cxr-phantom: determinism, masks, prevalence, and that no intensity threshold solves it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segbench import DatasetOptions, DatasetSpec, SegbenchError
from segbench_cxr import phantom, plugin
from segbench_cxr.phantom import PhantomSource, render_phantom

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """200 test-split phantoms at 64x64: images (N, 64, 64), lungs and infections as bool."""
    rendered = [render_phantom(0, index, 64, "test") for index in range(200)]
    images, lungs, infections = (np.stack(parts) for parts in zip(*rendered))
    return images, lungs.astype(bool), infections.astype(bool)


def per_image_dice(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) Dice of (N, H, W) bool masks; 1 where both are empty."""
    overlap = (predicted & truth).sum(axis=(1, 2))
    total = predicted.sum(axis=(1, 2)) + truth.sum(axis=(1, 2))
    return np.where(total == 0, 1.0, 2.0 * overlap / np.maximum(total, 1))


def best_global_threshold_dice(images: np.ndarray, truth: np.ndarray, within: np.ndarray | None = None) -> float:
    """Mean per-image Dice of the best single threshold for all images, above or below, optionally inside `within`."""
    best = 0.0
    for threshold in np.linspace(0.0, 1.0, 101):
        for predicted in (images > threshold, images < threshold):
            if within is not None:
                predicted &= within
            best = max(best, per_image_dice(predicted, truth).mean())
    return best


def test_same_arguments_give_identical_bytes() -> None:
    first, second = render_phantom(3, 17, 64, "val"), render_phantom(3, 17, 64, "val")
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()


def test_index_split_and_seed_each_change_the_phantom() -> None:
    reference = render_phantom(0, 1, 64, "train")[0]
    for other in (render_phantom(0, 2, 64, "train"), render_phantom(0, 1, 64, "test"), render_phantom(1, 1, 64, "train")):
        assert np.abs(other[0] - reference).mean() > 0.02


@pytest.mark.parametrize("size", [32, 64, 96])
def test_dtypes_shapes_and_ranges(size: int) -> None:
    image, lung, infection = render_phantom(0, 5, size)
    assert image.shape == lung.shape == infection.shape == (size, size)
    assert image.dtype == np.float32 and lung.dtype == infection.dtype == np.uint8
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(np.unique(lung)) == {0, 1} and set(np.unique(infection)) <= {0, 1}


def test_small_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        render_phantom(0, 0, 16)


def test_anatomy_does_not_depend_on_the_size() -> None:
    for index in range(5):
        small = render_phantom(0, index, 64)[1].astype(bool)
        large = render_phantom(0, index, 128)[1].reshape(64, 2, 64, 2).mean(axis=(1, 3)) > 0.5
        assert per_image_dice(small[None], large[None])[0] > 0.95


def test_about_half_are_infected(batch) -> None:
    infected = batch[2].any(axis=(1, 2))
    assert 0.35 < infected.mean() < 0.65


def test_infection_lies_inside_the_lungs(batch) -> None:
    _, lungs, infections = batch
    assert not (infections & ~lungs).any()


def test_two_lung_fields_of_plausible_size(batch) -> None:
    _, lungs, _ = batch
    assert 0.1 < lungs.mean(axis=(1, 2)).min() and lungs.mean(axis=(1, 2)).max() < 0.35
    left_smaller = []
    for lung in lungs:
        labels, count = ndimage.label(lung, EIGHT_CONNECTED)
        assert count == 2
        areas = np.bincount(labels.ravel())[1:] / lung.size
        assert areas.min() > 0.04
        # The patient's left lung (image right) is the smaller: the heart covers part of it.
        left_smaller.append(lung[:, 32:].sum() < lung[:, :32].sum())
    assert np.mean(left_smaller) > 0.8


def test_infection_is_not_solved_by_a_threshold(batch) -> None:
    images, lungs, infections = batch
    infected = infections.any(axis=(1, 2))
    # Opacities reach the grey levels of heart, ribs and soft tissue...
    assert best_global_threshold_dice(images[infected], infections[infected]) < 0.3
    # ...and vary too much to be thresholded even inside the true lungs.
    assert best_global_threshold_dice(images[infected], infections[infected], lungs[infected]) < 0.5


def test_lungs_are_not_solved_by_a_threshold(batch) -> None:
    images, lungs, _ = batch
    assert best_global_threshold_dice(images, lungs) < 0.8


def test_source_serves_the_task_mask() -> None:
    lung = PhantomSource("lung", 64, train=5, val=2, test=3)
    infection = PhantomSource("infection", 64, train=5, val=2, test=3)
    assert lung.sample_ids("train") == [f"train/{i}" for i in range(5)]
    assert len(lung.sample_ids("val")) == 2 and len(lung.sample_ids("test")) == 3
    expected = render_phantom(phantom.DATASET_SEED, 4, 64, "train")
    for source, mask in ((lung, expected[1]), (infection, expected[2])):
        image, loaded = source.load("train", "train/4")
        assert image.tobytes() == expected[0].tobytes() and loaded.tobytes() == mask.tobytes()


def test_default_split_sizes() -> None:
    source = PhantomSource.from_options(DatasetOptions("lung", None, 64, 0))
    assert [len(source.sample_ids(s)) for s in ("train", "val", "test")] == [480, 64, 96]


def test_run_seed_changes_neither_data_nor_fingerprint() -> None:
    a = PhantomSource.from_options(DatasetOptions("lung", None, 64, seed=0))
    b = PhantomSource.from_options(DatasetOptions("lung", None, 64, seed=123))
    assert a.fingerprint("test") == b.fingerprint("test")
    assert a.load("test", "test/0")[0].tobytes() == b.load("test", "test/0")[0].tobytes()


def test_fingerprint_tracks_what_changes_the_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    base = PhantomSource("lung", 64)
    prints = {
        base.fingerprint("val"),
        base.fingerprint("test"),
        PhantomSource("infection", 64).fingerprint("val"),
        PhantomSource("lung", 48).fingerprint("val"),
        PhantomSource("lung", 64, val=10).fingerprint("val"),
        PhantomSource("lung", 64, seed=1).fingerprint("val"),
    }
    monkeypatch.setattr(phantom, "GENERATOR_VERSION", phantom.GENERATOR_VERSION + 1)
    prints.add(base.fingerprint("val"))
    assert len(prints) == 7


def test_bad_split_sample_task_and_size() -> None:
    source = PhantomSource("lung", 64)
    with pytest.raises(SegbenchError, match="valid: test, train, val"):
        source.sample_ids("validation")
    for bad in ("val/0", "train/480", "train/x", "train/01", "train/-1"):
        with pytest.raises(SegbenchError, match="train/0 .. train/479"):
            source.load("train", bad)
    with pytest.raises(SegbenchError, match="valid: infection, lung"):
        PhantomSource("heart", 64)
    with pytest.raises(SegbenchError, match=">= 32"):
        PhantomSource("lung", 16)


def test_plugin_registers_the_three_datasets() -> None:
    specs: list[DatasetSpec] = []
    plugin.register_datasets(register=specs.append)
    by_name = {spec.name: spec for spec in specs}
    assert set(by_name) == {"cxr-phantom", "covid-qu-ex", "folder"}
    assert all(spec.tasks == ("lung", "infection") for spec in specs)
    assert [name for name, spec in by_name.items() if spec.needs_root] == ["covid-qu-ex", "folder"]
    source = by_name["cxr-phantom"].factory(DatasetOptions("infection", None, 48, 0))
    assert source.load("val", "val/0")[1].shape == (48, 48)
    for name in ("covid-qu-ex", "folder"):
        with pytest.raises(SegbenchError, match="needs --data-root"):
            by_name[name].factory(DatasetOptions("lung", None, 64, 0))


def test_metadata_says_which_phantoms_have_infection() -> None:
    lung, infection = PhantomSource("lung", 64), PhantomSource("infection", 64)
    ids = lung.sample_ids("test")[:24]
    flags = [lung.metadata("test", i)["infection"] for i in ids]  # rendered on demand
    masks = [infection.load("test", i)[1] for i in ids]
    assert flags == ["present" if m.any() else "absent" for m in masks] and {"present", "absent"} == set(flags)
    assert [infection.metadata("test", i) for i in ids] == [{"infection": f} for f in flags]  # kept from load
