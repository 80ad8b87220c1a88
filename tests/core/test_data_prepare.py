"""Resizing, mask validation and the on-disk cache (a second load decodes nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from segbench import DatasetOptions, DatasetSpec, SegbenchError
from segbench.data.prepare import load_split
from segbench.data import cache as data_cache
from segbench.data.prepare import binary_mask
from segbench.data.resize import resize_image, resize_mask, to_gray_float


class CountingSource:
    """A source that counts decodes and can be made to misbehave."""

    def __init__(self, masks=None, image_shape=(40, 40), ids=("a", "b")) -> None:
        self.loads = 0
        self.masks = masks
        self.image_shape = image_shape
        self.ids = list(ids)

    def sample_ids(self, split):
        return self.ids

    def load(self, split, sample_id):
        self.loads += 1
        mask = self.masks if self.masks is not None else np.zeros((40, 40), np.uint8)
        return np.full(self.image_shape, 128, np.uint8), mask

    def fingerprint(self, split):
        return f"v1-{self.image_shape}-{self.ids}"


def _spec(source):
    return DatasetSpec("counting", ("lung",), lambda o: source, "test source")


OPTIONS = DatasetOptions("lung", None, 16, 0)


def test_second_load_decodes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = CountingSource()
    first = load_split(_spec(source), source, OPTIONS, "train")
    assert source.loads == 2
    again = load_split(_spec(source), source, OPTIONS, "train")
    assert source.loads == 2
    assert again.ids == first.ids and np.array_equal(again.images, first.images)
    assert first.images.shape == (2, 16, 16) and first.images.dtype == np.uint8


def test_changed_fingerprint_rebuilds(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = CountingSource()
    load_split(_spec(source), source, OPTIONS, "train")
    source.ids = ["a", "b", "c"]
    assert len(load_split(_spec(source), source, OPTIONS, "train")) == 3


def test_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = CountingSource()
    load_split(_spec(source), source, OPTIONS, "train")
    for path in tmp_path.glob("*.npz"):
        path.write_bytes(b"not an npz")
    assert len(load_split(_spec(source), source, OPTIONS, "train")) == 2
    assert source.loads == 4


def test_cache_files_hold_no_pickles(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = CountingSource()
    load_split(_spec(source), source, OPTIONS, "train")
    (path,) = tmp_path.glob("*.npz")
    assert data_cache.read(path, OPTIONS.size) is not None  # read() uses allow_pickle=False


def test_size_mismatch_names_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = CountingSource(image_shape=(30, 40))
    with pytest.raises(SegbenchError, match=r"mask of counting:a has size \(40, 40\) but its image has \(30, 40\)"):
        load_split(_spec(source), source, OPTIONS, "train")


def test_duplicate_ids_and_empty_split(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    with pytest.raises(SegbenchError, match="duplicate sample id 'a'"):
        s = CountingSource(ids=("a", "a"))
        load_split(_spec(s), s, OPTIONS, "train")
    with pytest.raises(SegbenchError, match="split 'train' of dataset 'counting' is empty"):
        s = CountingSource(ids=())
        load_split(_spec(s), s, OPTIONS, "train")


@pytest.mark.parametrize("values", [(0, 1), (0, 255), (0,), (1,)])
def test_binary_masks_accepted(values):
    mask = np.array(values * 4, np.uint8).reshape(-1, 1)
    assert set(np.unique(binary_mask(mask, "x")).tolist()) <= {0, 1}


def test_non_binary_mask_is_named():
    with pytest.raises(SegbenchError, match=r"mask of ds:img7 is not binary \(values 0, 3, 255\)"):
        binary_mask(np.array([[0, 3, 255]], np.uint8), "ds:img7")


def test_resize_area_and_mask_threshold():
    image = np.zeros((64, 64), np.uint8)
    image[:, :32] = 255
    small = resize_image(image, 32)
    assert small.shape == (32, 32) and small[:, :16].min() == 255 and small[:, 16:].max() == 0
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = mask[0, 1] = mask[1, 0] = 1  # 3 of 4 pixels: area 0.75 -> 1
    assert resize_mask(mask, 2).tolist() == [[1, 0], [0, 0]]


def test_rgb_becomes_luma():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 1] = 255
    assert to_gray_float(rgb)[0, 0] == pytest.approx(0.587, abs=1e-6)


class MetadataSource(CountingSource):
    """A source whose samples carry metadata; `facts` maps id -> its dict."""

    def __init__(self, facts, **kwargs) -> None:
        super().__init__(ids=list(facts), **kwargs)
        self.facts = facts

    def metadata(self, split, sample_id):
        return self.facts[sample_id]


def test_metadata_survives_the_cache_and_the_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = MetadataSource({"a": {"group": "Normal", "site": "1"}, "b": {"group": "COVID-19", "site": "007"},
                             "c": {"group": "", "site": "2"}})
    first = load_split(_spec(source), source, OPTIONS, "train")
    assert first.metadata == {"group": ["Normal", "COVID-19", ""], "site": ["1", "007", "2"]}
    again = load_split(_spec(source), source, OPTIONS, "train")
    assert source.loads == 3 and again.metadata == first.metadata  # from the cache, text kept as text
    assert first.subset(np.array([2, 0])).metadata == {"group": ["", "Normal"], "site": ["2", "1"]}
    plain = CountingSource()
    assert load_split(_spec(plain), plain, OPTIONS, "train").metadata == {}


@pytest.mark.parametrize(("facts", "message"), [
    ({"a": {"Group": "x"}, "b": {"Group": "y"}}, r"metadata of counting:a \(plugin ''\) has the key 'Group'; keys must be"),
    ({"a": {"group": "x"}, "b": {"site": "y"}}, r"metadata of counting:b .* has the keys \['site'\], other samples \['group'\]"),
    ({"a": {"group": 1}, "b": {"group": 2}}, r"metadata of counting:a .*: the value of 'group' is int, not text"),
])
def test_bad_metadata_is_one_clear_error(tmp_path, monkeypatch, facts, message):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = MetadataSource(facts)
    with pytest.raises(SegbenchError, match=message):
        load_split(_spec(source), source, OPTIONS, "train")


def test_a_cache_file_of_the_previous_format_is_rebuilt_with_one_warning(tmp_path, monkeypatch, capsys):
    """Format 2 files held no metadata; one found under the current name is named and rebuilt."""
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    source = MetadataSource({"a": {"group": "x"}, "b": {"group": "y"}})
    load_split(_spec(source), source, OPTIONS, "train")
    (path,) = tmp_path.glob("*.npz")
    np.savez(path, format=np.array(2), ids=np.array(["a", "b"]), images=np.zeros((2, 16, 16), np.uint8),
             masks=np.zeros((2, 16, 16), np.uint8))
    again = load_split(_spec(source), source, OPTIONS, "train")
    warning = capsys.readouterr().err.strip()
    assert warning == (f"warning: cache file {path} is from another segbench version (cache format 2, this one "
                       f"reads {data_cache.CACHE_FORMAT}); rebuilding it from the data")
    assert again.metadata == {"group": ["x", "y"]} and source.loads == 4


class FailingSource(CountingSource):
    """Fails (as a kill would stop it) at its `fail_at`th decode."""

    fail_at = 0

    def load(self, split, sample_id):
        if self.loads + 1 == self.fail_at:
            raise KeyboardInterrupt
        return super().load(split, sample_id)


def test_an_interrupted_cache_build_goes_on_from_its_last_part(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr("segbench.data.prepare.PART", 4)
    source = FailingSource(ids=[f"s{i:02d}" for i in range(10)])
    source.fail_at = 7  # parts 0-3 saved, the second part stopped at its third sample
    with pytest.raises(KeyboardInterrupt):
        load_split(_spec(source), source, OPTIONS, "train")
    assert len(list(tmp_path.glob("*.part-*.npz"))) == 1 and not list(tmp_path.glob("*[!0-9].npz"))
    source.fail_at, source.loads = 0, 0
    rebuilt = load_split(_spec(source), source, OPTIONS, "train")
    assert source.loads == 6  # samples 4-9, not the part saved before
    assert rebuilt.ids == source.ids and rebuilt.images.shape == (10, 16, 16)
    assert not list(tmp_path.glob("*.part-*.npz"))  # the whole split cached, its parts gone
    fresh = CountingSource(ids=source.ids)
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "fresh"))
    again = load_split(_spec(fresh), fresh, OPTIONS, "train")
    assert np.array_equal(again.images, rebuilt.images) and np.array_equal(again.masks, rebuilt.masks)


def test_a_cache_build_shows_its_samples_on_a_bar(tmp_path, monkeypatch):
    from rich.console import Console

    from segbench.progress import Progress

    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr("segbench.data.prepare.PART", 4)
    console = Console(record=True, width=120, force_terminal=False)
    source = CountingSource(ids=[f"s{i:02d}" for i in range(10)])
    load_split(_spec(source), source, OPTIONS, "train", Progress(console))
    shown = console.export_text()
    assert "decoding train" in shown and "10/10" in shown
