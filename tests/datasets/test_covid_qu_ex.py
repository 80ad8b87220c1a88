"""covid-qu-ex: a tiny copy of the Kaggle layout, ids, loading, fingerprints and errors."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench import DatasetOptions, SegbenchError
from segbench_cxr.covid_qu_ex import CovidQuExSource

LUNG_SET = "Lung Segmentation Data/Lung Segmentation Data"
INFECTION_SET = "Infection Segmentation Data/Infection Segmentation Data"
NAMES = {"COVID-19": ["covid_1583", "covid_2"], "Non-COVID": ["non_COVID (11905)"], "Normal": ["Normal (1)", "Normal (10)"]}
SPLITS = {"train": "Train", "val": "Val", "test": "Test"}


def _write(path: Path, array: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 24), dtype=np.uint8)


def _mask(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((24, 24)) > 0.5).astype(np.uint8) * 255


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Both sets, three splits, three classes; the first COVID image of each split is RGB."""
    for set_dir, mask_dirs in ((LUNG_SET, ["lung masks"]), (INFECTION_SET, ["lung masks", "infection masks"])):
        for split in SPLITS.values():
            for label, names in NAMES.items():
                for k, name in enumerate(names):
                    seed = zlib.crc32(f"{set_dir}/{split}/{name}".encode())
                    folder = tmp_path / set_dir / split / label
                    if k == 0 and label == "COVID-19":
                        _write(folder / "images" / f"{name}.png", np.stack([_image(seed)] * 3, axis=-1), "RGB")
                    else:
                        _write(folder / "images" / f"{name}.png", _image(seed))
                    for offset, mask_dir in enumerate(mask_dirs):
                        _write(folder / mask_dir / f"{name}.png", _mask(seed + 1 + offset))
    return tmp_path


def test_ids_are_sorted_paths_without_extension(root: Path) -> None:
    source = CovidQuExSource(root, "lung")
    ids = source.sample_ids("test")
    assert ids == sorted(ids) and len(ids) == 5
    assert f"{LUNG_SET}/Test/Non-COVID/images/non_COVID (11905)" in ids
    assert f"{LUNG_SET}/Test/Normal/images/Normal (1)" in ids
    infection_ids = CovidQuExSource(root, "infection").sample_ids("val")
    assert f"{INFECTION_SET}/Val/COVID-19/images/covid_1583" in infection_ids
    assert all(sample_id.startswith(f"{INFECTION_SET}/Val/") for sample_id in infection_ids)


def test_load_reads_grey_images_and_the_task_mask(root: Path) -> None:
    for task, mask_dir in (("lung", "lung masks"), ("infection", "infection masks")):
        source = CovidQuExSource(root, task)
        for sample_id in source.sample_ids("train"):
            image, mask = source.load("train", sample_id)
            folder, name = (root / sample_id).parent.parent, Path(sample_id).name
            assert image.dtype == np.uint8 and image.shape == (24, 24)
            assert np.array_equal(image, np.asarray(Image.open(folder / "images" / f"{name}.png").convert("L")))
            assert np.array_equal(mask, np.asarray(Image.open(folder / mask_dir / f"{name}.png")))
            assert set(np.unique(mask)) <= {0, 255}


def test_listing_and_fingerprint_decode_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded an image")

    monkeypatch.setattr(Image, "open", refuse)
    source = CovidQuExSource(root, "infection")
    for split in SPLITS:
        assert source.sample_ids(split) and source.fingerprint(split)


def test_fingerprint_follows_the_files(root: Path) -> None:
    before = CovidQuExSource(root, "lung").fingerprint("test")
    assert before == CovidQuExSource(root, "lung").fingerprint("test")
    assert len({CovidQuExSource(root, "lung").fingerprint(split) for split in SPLITS}) == 3
    assert before != CovidQuExSource(root, "infection").fingerprint("test")
    mask = root / LUNG_SET / "Test/Normal/lung masks/Normal (1).png"
    stat = mask.stat()
    os.utime(mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert CovidQuExSource(root, "lung").fingerprint("test") != before


def test_hidden_files_are_skipped(root: Path) -> None:
    (root / LUNG_SET / "Val/Normal/images/._Normal (1).png").write_bytes(b"\x00\x05resource fork")
    assert len(CovidQuExSource(root, "lung").sample_ids("val")) == 5


def test_factory_needs_a_root(root: Path) -> None:
    with pytest.raises(SegbenchError, match="needs --data-root"):
        CovidQuExSource.from_options(DatasetOptions("lung", None, 64, 0))
    assert CovidQuExSource.from_options(DatasetOptions("lung", root, 64, 0)).sample_ids("val")


def test_missing_root_is_named(tmp_path: Path) -> None:
    with pytest.raises(SegbenchError, match=f"data root not found: {tmp_path / 'nowhere'}"):
        CovidQuExSource(tmp_path / "nowhere", "lung")


def test_missing_set_folder_is_named(root: Path) -> None:
    expected = root / "Infection Segmentation Data" / "Infection Segmentation Data"
    expected.rename(root / "moved")
    with pytest.raises(SegbenchError, match=f"expected {expected}"):
        CovidQuExSource(root, "infection").sample_ids("train")


def test_missing_class_folder_is_named(root: Path) -> None:
    images = root / LUNG_SET / "Val" / "Normal" / "images"
    for path in images.iterdir():
        path.unlink()
    images.rmdir()
    source = CovidQuExSource(root, "lung")
    assert source.sample_ids("train")  # other splits still work
    with pytest.raises(SegbenchError, match=f"expected folder {images}$"):
        source.sample_ids("val")


def test_image_without_mask_names_both(root: Path) -> None:
    mask = root / INFECTION_SET / "Test/COVID-19/infection masks/covid_2.png"
    mask.unlink()
    image = root / INFECTION_SET / "Test/COVID-19/images/covid_2.png"
    with pytest.raises(SegbenchError) as error:
        CovidQuExSource(root, "infection").sample_ids("test")
    assert str(image) in str(error.value) and f"expected {mask}" in str(error.value)


def test_corrupt_image_is_named(root: Path) -> None:
    path = root / LUNG_SET / "Train/Normal/images/Normal (10).png"
    path.write_bytes(path.read_bytes()[:40])
    source = CovidQuExSource(root, "lung")
    with pytest.raises(SegbenchError, match=r"cannot read image .*Normal \(10\)\.png"):
        source.load("train", f"{LUNG_SET}/Train/Normal/images/Normal (10)")


def test_unknown_split_sample_and_task(root: Path) -> None:
    source = CovidQuExSource(root, "lung")
    with pytest.raises(SegbenchError, match="valid: test, train, val"):
        source.sample_ids("Train")
    with pytest.raises(SegbenchError, match="no sample"):
        source.load("val", f"{LUNG_SET}/Test/Normal/images/Normal (1)")
    with pytest.raises(SegbenchError, match="valid: infection, lung"):
        CovidQuExSource(root, "heart")


def test_metadata_group_is_the_class_folder_and_passes_the_contract(root: Path) -> None:
    from segbench.plugins import load_plugins
    from segbench.testing import check_dataset

    source = CovidQuExSource(root, "infection")
    groups = {i: source.metadata("test", i)["group"] for i in source.sample_ids("test")}
    assert groups == {i: i.split("/")[-3] for i in groups}
    assert sorted(groups.values()) == ["COVID-19", "COVID-19", "Non-COVID", "Normal", "Normal"]
    with pytest.raises(SegbenchError, match="has no sample 'nope' in its test split"):
        source.metadata("test", "nope")
    check_dataset(load_plugins().dataset("covid-qu-ex"), DatasetOptions("infection", root, 32, 0))


def test_a_root_and_folders_reached_through_links_read_as_their_files(root: Path, tmp_path_factory) -> None:
    """--data-root a symbolic link, and a class's images/ a link to a folder elsewhere: the same ids,
    fingerprint and pixels."""
    before = CovidQuExSource(root, "lung")
    ids, fingerprint = before.sample_ids("test"), before.fingerprint("test")
    images = root / LUNG_SET / "Test/Normal/images"
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "images"
    images.rename(elsewhere)
    images.symlink_to(elsewhere)
    link = tmp_path_factory.mktemp("links") / "COVID-QU-Ex"
    link.symlink_to(root)
    source = CovidQuExSource.from_options(DatasetOptions("lung", link, 64, seed=0))
    assert source.sample_ids("test") == ids and source.fingerprint("test") == fingerprint
    sample_id = f"{LUNG_SET}/Test/Normal/images/Normal (1)"
    image, _ = source.load("test", sample_id)
    assert np.array_equal(image, np.asarray(Image.open(elsewhere / "Normal (1).png")))
