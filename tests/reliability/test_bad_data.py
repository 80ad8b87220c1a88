"""Issue point 4: bad data gets one clear line naming the file and what to do; nothing written is lost.

Every case starts from a finished run on a good `folder` dataset, breaks one thing in a copy of
the data, and reruns with --resume: the run must stop with one `error:` line naming the file (or
folder) and the fix, and leave every file of the run directory byte-identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench.data.prepare import load_split
from segbench.data.cache import CACHE_FORMAT, cache_dir
from segbench.errors import SegbenchError
from segbench.io import atomic_save, write_npz
from segbench.specs import DatasetOptions, DatasetSpec
from tests.reliability.conftest import cli

SPLITS = {"train": [f"c{i}" for i in range(5)], "val": ["c5"], "test": ["c6", "c7"]}


def make_folder(root: Path) -> Path:
    """A valid folder dataset: 8 grey 24x24 PNGs with {0, 255} masks and a splits.json."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(8):
        mask = np.zeros((24, 24), np.uint8)
        mask[4 + i : 14 + i, 5:15] = 255
        image = np.clip(60 + 0.5 * mask + rng.normal(0, 10, (24, 24)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"c{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"c{i}.png")
    (root / "splits.json").write_text(json.dumps(SPLITS))
    return root


def _args(root: Path, out: Path, *extra: str) -> tuple[str, ...]:
    return ("run", "--task", "lung", "--dataset", "folder", "--data-root", str(root), "--models", "toy-cnn",
            "--quiet", "--image-size", "16", "--epochs", "1", "--out", str(out), *extra)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    root = make_folder(base / "data")
    out = base / "run"
    code, _, stderr = cli(*_args(root, out))
    assert code == 0, stderr
    return root, out


def _png_bytes(root: Path) -> bytes:
    return (root / "images" / "c6.png").read_bytes()


def _grey(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array.astype(np.uint8)).save(path)


# name: (break the copied data root, text the one error line must contain; {root} is the copy)
CASES = {
    "corrupt image": (lambda r: (r / "images/c6.png").write_bytes(b"\x89PNG not really"),
                      ["cannot read image {root}/images/c6.png", "replace or remove that file"]),
    "truncated image": (lambda r: (r / "images/c6.png").write_bytes(_png_bytes(r)[:60]),
                        ["cannot read image {root}/images/c6.png", "replace or remove that file"]),
    "corrupt mask": (lambda r: (r / "masks/c7.png").write_bytes(b"garbage"),
                     ["cannot read mask {root}/masks/c7.png", "replace or remove that file"]),
    "metadata column badly named": (lambda r: (r / "metadata.csv").write_text("stem,Site\nc6,north\n"),
                                    ["{root}/metadata.csv: column 'Site' is not a valid metadata name"]),
    "mask not binary": (lambda r: _grey(r / "masks/c7.png", np.arange(24 * 24).reshape(24, 24) % 3 * 7),
                        ["mask of folder:images/c7 (under {root}) is not binary (values 0, 7, 14)", "--mask-threshold T"]),
    "empty images folder": (lambda r: [p.unlink() for p in (r / "images").iterdir()],
                            ["no images in {root}/images", "put the image files there"]),
    "no masks folder": (lambda r: shutil.rmtree(r / "masks"), ["expected folder {root}/masks"]),
    "image without mask": (lambda r: (r / "masks/c6.png").unlink(),
                           ["image {root}/images/c6.png has no mask: expected {root}/masks/c6.<ext>"]),
    "missing split": (lambda r: (r / "splits.json").write_text(json.dumps({"train": SPLITS["train"]})),
                      ["{root}/splits.json has no 'test' list", "add a 'test' list"]),
    "splits.json not json": (lambda r: (r / "splits.json").write_text("{train: [c0"),
                             ["cannot read {root}/splits.json"]),
    "split lists a missing file": (lambda r: (r / "images/c7.png").unlink(),
                                   ["{root}/splits.json lists 'c7' under 'test', but there is no image {root}/images/c7.*"]),
    "one stem twice": (lambda r: shutil.copy(r / "images/c6.png", r / "images/c6.jpg"),
                       ["two files with the stem 'c6' in {root}/images: c6.jpg and c6.png"]),
    "missing data root": (lambda r: shutil.rmtree(r), ["--data-root {root} is not a folder"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_one_clear_line_and_nothing_lost(good_run, tmp_path, case):
    root, good_out = good_run
    data, out = tmp_path / "data", tmp_path / "run"
    shutil.copytree(root, data)
    shutil.copytree(good_out, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    breaks, expected = CASES[case]
    breaks(data)
    code, _, stderr = cli(*_args(data, out, "--resume"))
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text.format(root=data) in lines[0], (text, lines[0])
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_mask_threshold_binarises_what_the_error_pointed_at(good_run, tmp_path):
    root, _ = good_run
    data = tmp_path / "data"
    shutil.copytree(root, data)
    _grey(data / "masks/c7.png", np.where(np.arange(24 * 24).reshape(24, 24) % 2, 200, 3))
    assert cli(*_args(data, tmp_path / "a"))[0] == 2
    code, _, stderr = cli(*_args(data, tmp_path / "b", "--mask-threshold", "127"))
    assert code == 0, stderr


class _Listed:
    """A source that lists the given ids for every split."""

    def __init__(self, ids):
        self.ids = ids

    def sample_ids(self, split):
        return self.ids

    def load(self, split, sample_id):
        return np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)

    def fingerprint(self, split):
        return "-".join(self.ids)


@pytest.mark.parametrize(("ids", "expected"), [
    (["a", "b", "a"], "has duplicate sample id 'a' in split 'test'; every sample needs its own id"),
    ([], "split 'test' of dataset 'listed' is empty"),
])
def test_duplicate_ids_and_empty_split(ids, expected):
    spec = DatasetSpec("listed", ("lung",), _Listed, "test source")
    with pytest.raises(SegbenchError, match=expected):
        load_split(spec, _Listed(ids), DatasetOptions("lung", None, 8, 0), "test")


@pytest.mark.parametrize("content", ["other version", "wrong shapes", "not a zip"])
def test_foreign_cache_file_is_named_and_rebuilt(good_run, tmp_path, capsys, monkeypatch, content):
    """A cache file from another segbench version, or damaged, is reported in one line and rebuilt."""
    root, _ = good_run
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    assert cli(*_args(root, tmp_path / "first"))[0] == 0  # the cache exists and is valid
    paths = sorted(cache_dir().glob("folder-lung-*-16-*.npz"))
    assert paths
    for path in paths:
        if content == "not a zip":
            path.write_bytes(b"PK\x03\x04 truncated")
        else:
            fmt, size = (CACHE_FORMAT + 1, 16) if content == "other version" else (CACHE_FORMAT, 9)
            arrays = {"format": np.array(fmt), "ids": np.array(["x"]), "images": np.zeros((1, size, size), np.uint8),
                      "masks": np.zeros((1, size, size), np.uint8)}
            atomic_save(path, lambda f, a=arrays: write_npz(f, a))
    code, _, stderr = cli(*_args(root, tmp_path / "second"))
    assert code == 0, stderr
    warnings = [line for line in (stderr + capsys.readouterr().err).splitlines() if "cache file" in line]
    assert len(warnings) == len(paths) and all("rebuilding it from the data" in w for w in warnings)
    assert all(str(p) in " ".join(warnings) for p in paths)
    assert (tmp_path / "first/per_image.csv").read_bytes() == (tmp_path / "second/per_image.csv").read_bytes()
