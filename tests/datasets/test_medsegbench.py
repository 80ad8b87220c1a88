"""medsegbench:<flag>: small npz files in the package's format (keys, dtypes, shapes); splits, ids, tasks,
the file chosen by size, fingerprints, the contract, a run, and one clear error per broken file."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench import DatasetOptions, SegbenchError
from segbench.data.prepare import load_split
from segbench.data.images import read_image
from segbench.data.resize import resize_image, resize_mask
from segbench.plugins import load_plugins
from segbench.testing import check_dataset
from segbench_medsegbench.catalog import FLAGS
from segbench_medsegbench.source import MedSegBenchSource

SPLITS = ("train", "val", "test")
COUNTS = {"train": 5, "val": 2, "test": 3}


def write(root: Path, flag: str, size: int = 128, *, rgb: bool = False, values: tuple[int, ...] = (0, 1),
          counts: dict[str, int] = COUNTS, save=np.savez_compressed, **extra: np.ndarray) -> dict[str, np.ndarray]:
    """`<flag>_<size>.npz` as MedSegBench ships it: <split>_images uint8 (N, size, size[, 3]) and
    <split>_label uint8 (N, size, size) holding `values`; `extra` arrays beside them."""
    rng = np.random.default_rng(size)
    arrays = {}
    for split, n in counts.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, *((3,) if rgb else ())), dtype=np.uint8)
        arrays[f"{split}_label"] = rng.choice(np.array(values, np.uint8), (n, size, size))
    arrays.update(extra)
    save(root / f"{flag}_{size}.npz", **arrays)
    return arrays


def source(root: Path, flag: str = "covidquex", task: str = "infection", size: int = 64) -> MedSegBenchSource:
    return MedSegBenchSource.from_options(flag, DatasetOptions(task, root, size, 0))


def one_line_error(call, *args) -> str:
    with pytest.raises(SegbenchError) as raised:
        call(*args)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_every_flag_is_registered_with_its_tasks() -> None:
    registry = load_plugins()
    names = [n for n in registry.names("datasets") if n.startswith("medsegbench:")]
    assert names == sorted(f"medsegbench:{flag.name}" for flag in FLAGS) and len(names) == 35
    assert all(registry.dataset(name).needs_root for name in names)
    assert registry.dataset("medsegbench:covidquex").tasks == ("infection", "foreground")
    assert registry.dataset("medsegbench:fhpsaop").tasks == ("foreground", "pubic-symphysis", "fetal-head")
    assert "foreground" not in registry.dataset("medsegbench:m2caiseg").tasks  # its value 0 is "unknown"


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_reads_each_split_with_stable_ids_grey_images_and_binary_masks(tmp_path: Path, save) -> None:
    stored = write(tmp_path, "covidquex", save=save)
    first, again = source(tmp_path), source(tmp_path)
    for split in SPLITS:
        ids = first.sample_ids(split)
        assert ids == again.sample_ids(split) == [f"{split}/{i}" for i in range(COUNTS[split])]
        assert first.fingerprint(split) == again.fingerprint(split)
        for index, sample_id in enumerate(ids):
            image, mask = first.load(split, sample_id)
            assert image.dtype == mask.dtype == np.uint8 and image.shape == mask.shape == (128, 128)
            assert np.array_equal(image, stored[f"{split}_images"][index])
            assert np.array_equal(mask, stored[f"{split}_label"][index])
            assert set(np.unique(mask)) == {0, 1}


def test_rgb_images_come_back_grey_as_the_folder_dataset_reads_rgb_files(tmp_path: Path) -> None:
    stored = write(tmp_path, "kvasir", rgb=True)
    rgb = stored["val_images"][1]
    Image.fromarray(rgb).save(tmp_path / "val1.png")
    image, _ = source(tmp_path, "kvasir", "foreground").load("val", "val/1")
    assert image.shape == (128, 128) and np.array_equal(image, read_image(tmp_path / "val1.png"))


def test_any_nonzero_label_of_a_binary_dataset_is_foreground(tmp_path: Path) -> None:
    stored = write(tmp_path, "pandental", values=(0, 3, 255))  # pixel_labels: "non-zero" is foreground
    _, mask = source(tmp_path, "pandental", "foreground").load("test", "test/2")
    assert np.array_equal(mask, stored["test_label"][2] != 0)


def test_a_multi_class_dataset_serves_each_class_and_any_class_as_foreground(tmp_path: Path) -> None:
    labels = write(tmp_path, "fhpsaop", values=(0, 1, 2))["train_label"][0]
    for task, expected in (("pubic-symphysis", labels == 1), ("fetal-head", labels == 2), ("foreground", labels > 0)):
        assert np.array_equal(source(tmp_path, "fhpsaop", task).load("train", "train/0")[1], expected)
    write(tmp_path, "m2caiseg", values=tuple(range(19)), rgb=True)
    message = one_line_error(source, tmp_path, "m2caiseg", "foreground")
    assert message.startswith("medsegbench:m2caiseg does not serve task 'foreground'; valid: grasper, bipolar, ")


def test_idrib_lesion_tasks_read_their_own_label_arrays_beside_the_shared_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lesions = {f"{split}_label_C{k}": rng.integers(0, 2, (n, 128, 128), dtype=np.uint8)
               for split, n in COUNTS.items() for k in range(1, 5)}
    stored = write(tmp_path, "idrib", rgb=True, **lesions)
    hemorrhages, optic_disc = source(tmp_path, "idrib", "hemorrhages"), source(tmp_path, "idrib", "optic-disc")
    assert np.array_equal(hemorrhages.load("val", "val/1")[1], lesions["val_label_C2"][1])
    assert np.array_equal(optic_disc.load("test", "test/0")[1], lesions["test_label_C4"][0])
    assert np.array_equal(source(tmp_path, "idrib", "foreground").load("val", "val/1")[1], stored["val_label"][1])
    assert hemorrhages.fingerprint("val") != optic_disc.fingerprint("val")


@pytest.mark.parametrize(("image_size", "read"), [(16, 128), (128, 128), (129, 256), (512, 512), (600, 512)])
def test_the_file_read_is_the_smallest_at_least_the_run_size_else_the_largest(tmp_path: Path, image_size: int,
                                                                              read: int) -> None:
    for size in (128, 256, 512):
        write(tmp_path, "covidquex", size, counts={"train": size // 128, "val": 1, "test": 1})
    write(tmp_path, "covidquex_old", 64)  # covidquex_old_64.npz: not a <flag>_<size>.npz
    chosen = source(tmp_path, size=image_size)
    assert chosen.path == tmp_path / f"covidquex_{read}.npz" and len(chosen.sample_ids("train")) == read // 128
    assert chosen.load("train", "train/0")[0].shape == (read, read)


def test_the_fingerprint_follows_the_file_read_and_decodes_nothing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "covidquex", 128)
    before = source(tmp_path).fingerprint("train")
    write(tmp_path, "covidquex", 256)
    assert source(tmp_path, size=200).fingerprint("train") != before  # now the 256 file is read
    assert source(tmp_path, size=100).fingerprint("train") == before
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("decoded the file"))
    assert source(tmp_path).fingerprint("train") == before
    write(tmp_path, "covidquex", 128, counts={"train": 6, "val": 2, "test": 3})
    assert source(tmp_path).fingerprint("train") != before


def test_a_split_is_built_cached_and_read_back_without_the_file(tmp_path: Path) -> None:
    stored = write(tmp_path, "covidquex")
    spec, options = load_plugins().dataset("medsegbench:covidquex"), DatasetOptions("infection", tmp_path, 32, 0)
    built = load_split(spec, spec.factory(options), options, "val")
    assert built.ids == ["val/0", "val/1"] and built.images.shape == built.masks.shape == (2, 32, 32)
    for index, label in enumerate(stored["val_label"]):  # resized as every dataset's masks are
        assert np.array_equal(built.masks[index], resize_mask(label, 32))
        assert np.array_equal(built.images[index], resize_image(stored["val_images"][index], 32))

    class NoFile(MedSegBenchSource):
        def load(self, split: str, sample_id: str):
            raise AssertionError("decoded a cached split")

    cached = load_split(spec, NoFile.from_options("covidquex", options), options, "val")
    assert cached.ids == built.ids and np.array_equal(cached.masks, built.masks)


def test_the_dataset_contract_holds_for_grey_binary_and_rgb_multi_class_files(tmp_path: Path) -> None:
    write(tmp_path, "covidquex")
    write(tmp_path, "wbc", rgb=True, values=(0, 1, 2))
    registry = load_plugins()
    check_dataset(registry.dataset("medsegbench:covidquex"), DatasetOptions("infection", tmp_path, 32, 0))
    check_dataset(registry.dataset("medsegbench:wbc"), DatasetOptions("nucleus", tmp_path, 32, 0))


def test_a_run_reads_the_test_split_by_its_ids(tmp_path: Path, run_cli) -> None:
    write(tmp_path, "covidquex", counts={"train": 8, "val": 2, "test": 3})
    code, _, stderr = run_cli("run", "--task", "infection", "--dataset", "medsegbench:covidquex", "--data-root",
                              str(tmp_path), "--models", "toy-cnn", "--quiet", "--image-size", "16", "--steps", "2",
                              "--out", str(tmp_path / "run"))
    assert code == 0, stderr
    with open(tmp_path / "run" / "per_image.csv") as rows:
        assert sorted(row["sample_id"] for row in csv.DictReader(rows)) == ["test/0", "test/1", "test/2"]
    code, _, stderr = run_cli("run", "--task", "foreground", "--dataset", "medsegbench:m2caiseg", "--data-root",
                              str(tmp_path), "--models", "toy-cnn", "--out", str(tmp_path / "refused"))
    assert code == 2 and "dataset 'medsegbench:m2caiseg' does not serve task 'foreground'" in stderr


def test_missing_root_file_and_options_are_one_line_each(tmp_path: Path) -> None:
    assert one_line_error(MedSegBenchSource.from_options, "covidquex", DatasetOptions("infection", None, 64, 0)) == (
        "medsegbench:covidquex needs --data-root: the folder holding covidquex_<size>.npz")
    nowhere = tmp_path / "nowhere"
    assert one_line_error(source, nowhere) == f"medsegbench:covidquex: --data-root {nowhere} is not a folder"
    assert one_line_error(source, tmp_path) == (
        f"no covidquex_<size>.npz in {tmp_path} (MedSegBench's sizes: 128, 256, 512); the medsegbench package "
        f"downloads one: CovidQUExMSBench(split='train', size=128, root='{tmp_path}', download=True)")
    write(tmp_path, "covidquex")
    options = DatasetOptions("infection", tmp_path, 64, 0, mask_threshold=127)
    assert "drop --mask-threshold" in one_line_error(MedSegBenchSource.from_options, "covidquex", options)


def _without(arrays: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k != key}


def _npy_version_3(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The arrays as np.savez writes them, val_images with a version 3.0 header (numpy's for non-latin-1 dtypes)."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w") as stream:
                np.lib.format.write_array(stream, array, version=(3, 0) if key == "val_images" else None)


BROKEN = {  # name: (rewrite the file from the good arrays, the one error line)
    "not a zip": (lambda path, arrays: path.write_bytes(b"PK not really"),
                  "cannot read {path} as an npz file: File is not a zip file; download it again"),
    "missing split": (lambda path, arrays: np.savez(path, **_without(arrays, "val_images")),
                      "{path} has no array 'val_images'; it has: train_images, train_label, val_label, test_images, "
                      "test_label"),
    "float images": (lambda path, arrays: np.savez(path, **{**arrays, "val_images": arrays["val_images"] / 255}),
                     "{path}: val_images is float64 (2, 128, 128); MedSegBench images are uint8 (N, H, W) or "
                     "(N, H, W, 3)"),
    "labels of other images": (lambda path, arrays: np.savez(path, **{**arrays, "val_label": arrays["val_label"][:1]}),
                               "{path}: val_label is uint8 (1, 128, 128); expected integers (2, 128, 128), one (H, W) "
                               "label per image of val_images"),
    "npy version 3": (_npy_version_3, "{path}: val_images is a .npy of version (3, 0); MedSegBench's are 1.0 or 2.0"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    arrays = write(tmp_path, "covidquex")
    path = tmp_path / "covidquex_128.npz"
    breaks, message = BROKEN[case]
    breaks(path, arrays)
    assert one_line_error(source(tmp_path).sample_ids, "val") == message.format(path=path)


def test_unknown_split_and_sample_ids(tmp_path: Path) -> None:
    write(tmp_path, "covidquex")
    reader = source(tmp_path)
    assert "valid: test, train, val" in one_line_error(reader.sample_ids, "Train")
    for bad in ("val/2", "train/0", "val/01", "val/-1", "val"):
        assert one_line_error(reader.load, "val", bad) == (
            f"medsegbench:covidquex ({tmp_path / 'covidquex_128.npz'}) has no val sample {bad!r}; ids: val/0 .. val/1")

