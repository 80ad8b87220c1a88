"""folder: images/ + masks/ by stem, any format and size, splits.json or a seeded split, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench import DatasetOptions, SegbenchError
from segbench_cxr.folder import FolderSource, seeded_split


def _write(path: Path, array: np.ndarray, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """20 pairs: RGB jpgs with {0, 255} png masks, grey pngs with {0, 1} masks, a tif and a bmp; sizes vary."""
    rng = np.random.default_rng(0)
    for k in range(20):
        height, width = 20 + k, 30 - k
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
        mask = (rng.random((height, width)) > 0.5).astype(np.uint8)
        if k % 2:
            _write(tmp_path / "images" / f"case {k}.jpg", np.stack([grey] * 3, axis=-1), "RGB")
            _write(tmp_path / "masks" / f"case {k}.png", mask * 255, "L")
        else:
            suffix = {0: ".tif", 2: ".bmp"}.get(k, ".png")
            _write(tmp_path / "images" / f"case {k}{suffix}", grey, "L")
            _write(tmp_path / "masks" / f"case {k}.png", mask, "L")
    return tmp_path


def _all_ids(source: FolderSource) -> dict[str, list[str]]:
    return {split: source.sample_ids(split) for split in ("train", "val", "test")}


def test_seeded_split_is_70_15_15_and_fixed(root: Path) -> None:
    ids = _all_ids(FolderSource(root))
    assert [len(ids[s]) for s in ("train", "val", "test")] == [14, 3, 3]
    everything = sorted(i for part in ids.values() for i in part)
    assert everything == sorted(f"images/case {k}" for k in range(20))
    assert ids == _all_ids(FolderSource.from_options(DatasetOptions("infection", root, 64, seed=99)))
    assert all(part == sorted(part) for part in ids.values())


def test_seeded_split_keeps_val_and_test_non_empty() -> None:
    assert [len(p) for p in seeded_split(["a", "b", "c"]).values()] == [1, 1, 1]
    with pytest.raises(SegbenchError, match="at least 3 images"):
        seeded_split(["a", "b"])


def test_load_returns_grey_native_size_and_masks_as_stored(root: Path) -> None:
    source = FolderSource(root)
    seen_masks = set()
    for split, ids in _all_ids(source).items():
        for sample_id in ids:
            k = int(sample_id.split()[-1])
            image, mask = source.load(split, sample_id)
            assert image.dtype == np.uint8 and image.shape == mask.shape == (20 + k, 30 - k)
            seen_masks.add(tuple(np.unique(mask)))
            if k % 2 == 0:  # lossless formats come back exactly
                written = Image.open(next((root / "images").glob(f"case {k}.*")))
                assert np.array_equal(image, np.asarray(written))
    assert seen_masks == {(0, 1), (0, 255)}


def test_splits_file_decides_the_splits(root: Path) -> None:
    split = {"train": ["case 3", "case 1"], "val": ["case 2"], "test": ["case 0"]}
    (root / "splits.json").write_text(json.dumps(split))
    source = FolderSource(root)
    assert _all_ids(source) == {
        "train": ["images/case 1", "images/case 3"],
        "val": ["images/case 2"],
        "test": ["images/case 0"],
    }
    before = source.fingerprint("val")
    (root / "splits.json").write_text(json.dumps({**split, "val": ["case 4"]}))
    assert FolderSource(root).fingerprint("val") != before


def test_fingerprint_is_stable_and_decodes_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = FolderSource(root).fingerprint("train")

    def refuse(*args, **kwargs):
        raise AssertionError("decoded an image")

    monkeypatch.setattr(Image, "open", refuse)
    assert FolderSource(root).fingerprint("train") == before
    assert len({FolderSource(root).fingerprint(s) for s in ("train", "val", "test")}) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train": ["case 1"], "test": ["case 2"]}, "has no 'val' list"),
        ({"train": ["case 1"], "val": ["nope"], "test": []}, "lists 'nope' under 'val'"),
        ({"train": ["case 1"], "val": ["case 1"], "test": []}, "under both 'train' and 'val'"),
        ({"train": [], "val": [], "test": [], "holdout": []}, r"unknown splits \['holdout'\]"),
        ({"train": "case 1", "val": [], "test": []}, "lists of image stems"),
    ],
)
def test_bad_splits_file(root: Path, content: dict, message: str) -> None:
    (root / "splits.json").write_text(json.dumps(content))
    with pytest.raises(SegbenchError, match=message):
        FolderSource(root).sample_ids("val")


def test_unreadable_splits_file(root: Path) -> None:
    (root / "splits.json").write_text("{not json")
    with pytest.raises(SegbenchError, match="cannot read .*splits.json"):
        FolderSource(root).sample_ids("train")


def test_missing_root_and_folders(tmp_path: Path) -> None:
    with pytest.raises(SegbenchError, match="needs --data-root"):
        FolderSource.from_options(DatasetOptions("lung", None, 64, 0))
    with pytest.raises(SegbenchError, match=f"root not found: {tmp_path / 'nowhere'}"):
        FolderSource(tmp_path / "nowhere")
    with pytest.raises(SegbenchError, match=f"expected folder {tmp_path / 'images'}"):
        FolderSource(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(SegbenchError, match=f"expected folder {tmp_path / 'masks'}"):
        FolderSource(tmp_path)
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(SegbenchError, match=f"no images in {tmp_path / 'images'}"):
        FolderSource(tmp_path).sample_ids("train")


def test_image_without_mask(root: Path) -> None:
    (root / "masks" / "case 4.png").unlink()
    with pytest.raises(SegbenchError) as error:
        _all_ids(FolderSource(root))
    assert f"image {root / 'images' / 'case 4.png'} has no mask: expected {root / 'masks' / 'case 4'}.<ext>" in str(
        error.value
    )


@pytest.mark.parametrize("folder", ["images", "masks"])
def test_duplicate_stems(root: Path, folder: str) -> None:
    _write(root / folder / "case 4.gif", np.zeros((4, 4), np.uint8), "L")
    with pytest.raises(SegbenchError, match=r"two files with the stem 'case 4' .*: case 4.gif and case 4.png"):
        _all_ids(FolderSource(root))


def test_a_mask_of_another_size_is_resized_to_its_image_by_nearest_neighbour(tmp_path: Path) -> None:
    """Each pixel takes the mask pixel under its centre: a 2x3 mask doubled to its 4x6 image, an 8x12 one
    halved (its odd rows and columns)."""
    small = np.array([[0, 255, 0], [255, 0, 255]], np.uint8)
    large = np.arange(96, dtype=np.uint8).reshape(8, 12)
    for stem, mask in (("small", small), ("large", large)):
        _write(tmp_path / "images" / f"{stem}.png", np.zeros((4, 6), np.uint8), "L")
        _write(tmp_path / "masks" / f"{stem}.png", mask, "L")
    _write(tmp_path / "images" / "same.png", np.zeros((4, 6), np.uint8), "L")
    _write(tmp_path / "masks" / "same.png", np.zeros((4, 6), np.uint8), "L")
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["same"], "val": [], "test": ["small", "large"]}))
    source = FolderSource(tmp_path)
    _, doubled = source.load("test", "images/small")
    assert doubled.tolist() == [[0, 0, 255, 255, 0, 0]] * 2 + [[255, 255, 0, 0, 255, 255]] * 2
    _, halved = source.load("test", "images/large")
    assert np.array_equal(halved, large[1::2, 1::2])


def _metadata_root(root: Path, text: str) -> FolderSource:
    (root / "metadata.csv").write_text(text)
    return FolderSource(root)


def test_metadata_csv_columns_are_each_samples_metadata_cached_with_the_arrays(root: Path) -> None:
    from segbench.data.prepare import load_split
    from segbench_cxr import plugin

    specs = []
    plugin.register_datasets(specs.append)
    spec = next(s for s in specs if s.name == "folder")
    rows = "".join(f"case {k},{'ab'[k % 2]},{k}\n" for k in range(20))
    source = _metadata_root(root, f"stem,site,age_2\nunused,x,0\n{rows}")
    options = DatasetOptions("lung", root, 16, 0)
    for attempt in (source, FolderSource(root)):  # decoded, then from the cache
        test = load_split(spec, attempt, options, "test")
        ks = [int(i.split()[-1]) for i in test.ids]
        assert dict(test.metadata) == {"site": ["ab"[k % 2] for k in ks], "age_2": [str(k) for k in ks]}
    before = source.fingerprint("test")
    (root / "metadata.csv").write_text("stem,site\n" + "".join(f"case {k},c\n" for k in range(20)))
    assert FolderSource(root).fingerprint("test") != before


@pytest.mark.parametrize(("text", "message"), [
    ("stem,Site\ncase 0,a\n", r"metadata.csv: column 'Site' is not a valid metadata name \(lower-case letters"),
    ("stem,2nd\ncase 0,a\n", r"column '2nd' is not a valid metadata name"),
    ("stem,site,site\ncase 0,a,b\n", r"column 'site' is not a valid metadata name .*each once"),
    ("image,site\ncase 0,a\n", r"metadata.csv has no 'stem' column .*its columns: image, site"),
    ("", r"metadata.csv has no 'stem' column .*its columns: none"),
    ("stem,site\ncase 0\n", r"metadata.csv line 2 has 1 fields; the header has 2"),
    ("stem,site\ncase 0,a\ncase 0,b\n", r"metadata.csv line 3: the stem 'case 0' has a row already"),
    ("stem,site\ncase 0,a\n", r"metadata.csv has no row for the image case 1.jpg; add a row whose 'stem' is 'case 1'"),
])
def test_a_bad_metadata_csv_is_one_clear_error(root: Path, text: str, message: str) -> None:
    source = _metadata_root(root, text)
    with pytest.raises(SegbenchError, match=message):
        for split in ("train", "val", "test"):
            for sample_id in source.sample_ids(split):
                source.metadata(split, sample_id)


def test_corrupt_image(root: Path) -> None:
    (root / "images" / "case 5.jpg").write_bytes(b"\xff\xd8\xff garbage")
    source = FolderSource(root)
    split = next(s for s, ids in _all_ids(source).items() if "images/case 5" in ids)
    with pytest.raises(SegbenchError, match=r"cannot read image .*case 5\.jpg"):
        source.load(split, "images/case 5")


@pytest.mark.parametrize("linked", ["root", "folders", "files"])
def test_a_dataset_laid_out_by_links_reads_as_its_files(root: Path, tmp_path_factory, linked: str) -> None:
    """The data root, images/ and masks/, or every file reached through a symbolic link: the ids, pixels
    and fingerprints (so the cache entries) of the files themselves."""
    layout = tmp_path_factory.mktemp("links") / "data"
    if linked == "root":
        layout.symlink_to(root)
    else:
        layout.mkdir()
        for folder in ("images", "masks"):
            if linked == "folders":
                (layout / folder).symlink_to(root / folder)
                continue
            (layout / folder).mkdir()
            for file in (root / folder).iterdir():
                (layout / folder / file.name).symlink_to(file)
    plain, through_links = FolderSource(root), FolderSource(layout)
    assert _all_ids(through_links) == _all_ids(plain)
    for split, ids in _all_ids(plain).items():
        assert through_links.fingerprint(split) == plain.fingerprint(split)
        for sample_id in ids:
            for got, expected in zip(through_links.load(split, sample_id), plain.load(split, sample_id)):
                assert np.array_equal(got, expected)


def test_a_link_to_a_missing_file_is_named(root: Path) -> None:
    link = root / "masks" / "case 3.png"
    link.unlink()
    link.symlink_to(root / "moved.png")
    with pytest.raises(SegbenchError) as raised:
        FolderSource(root).sample_ids("train")
    assert str(raised.value) == f"{link} is a symbolic link to {root / 'moved.png'}, which does not exist; fix or remove the link"
