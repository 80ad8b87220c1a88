"""`segbench data layout covid-qu-ex` and `segbench data check`: a small copy in the snapshot's layout
(dataset/{Train,Val,Test}/...), in Kaggle's, and in a bare git repository, laid out and counted."""

from __future__ import annotations

import os
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segbench import SegbenchError
from segbench.data.check import check_counts
from segbench.plugins import load_plugins
from segbench_cxr.covid_qu_ex import CovidQuExSource
from segbench_cxr.covid_qu_ex_layout import lay_out
from tests.gitrepo import commit_bare, needs_git
from tests.plugin_fixtures.counted_dataset import COUNTS

INFECTION_SET = "Infection Segmentation Data/Infection Segmentation Data"
LUNG_SET = "Lung Segmentation Data/Lung Segmentation Data"
SPLITS = {"train": "Train", "val": "Val", "test": "Test"}
STEMS = {"COVID-19": "covid", "Non-COVID": "non_COVID", "Normal": "Normal"}
MINI = ("--plugin", "tests.plugin_fixtures.counted_dataset")


def _png(path: Path, seed: int | None) -> None:
    """An 8x8 grey PNG: random (seeded by `seed`), or all zeros (an empty mask) for None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((8, 8), np.uint8) if seed is None else np.random.default_rng(seed).integers(0, 256, (8, 8))
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def _write_set(top: Path, folders: tuple[str, ...], extra: int = 0) -> None:
    """COUNTS images (plus `extra` COVID-19 training images) with `folders`' masks; infection masks of
    Non-COVID and Normal images are empty, as in COVID-QU-Ex."""
    for split, folder in SPLITS.items():
        for group, count in COUNTS[split].items():
            for k in range(count + (extra if (split, group) == ("train", "COVID-19") else 0)):
                name = f"{STEMS[group]} ({split} {k}).png"
                for sub in ("images", *folders):
                    empty = sub == "infection masks" and group != "COVID-19"
                    seed = None if empty else zlib.crc32(f"{top}/{sub}/{name}".encode())
                    _png(top / folder / group / sub / name, seed)


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """The snapshot's layout: dataset/{Train,Val,Test}/{class}/{images,lung masks,infection masks}, beside a README."""
    _write_set(tmp_path / "snapshot/dataset", ("lung masks", "infection masks"))
    (tmp_path / "snapshot/README.md").write_text("code, not data\n")
    return tmp_path / "snapshot"


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    """Kaggle's download as extracted: both sets, the lung set with one more training image."""
    _write_set(tmp_path / "kaggle" / INFECTION_SET, ("lung masks", "infection masks"))
    _write_set(tmp_path / "kaggle" / LUNG_SET, ("lung masks",), extra=1)
    return tmp_path / "kaggle"


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _mini():
    return replace(load_plugins().dataset("covid-qu-ex"), expected={"infection": COUNTS, "lung": COUNTS})


def test_the_snapshot_is_laid_out_for_both_tasks_with_its_lung_masks_for_lung(snapshot: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    lines = lay_out(snapshot, root, "dataset")
    assert lines[0].startswith(f"infection: 10 images with their lung and infection masks from {snapshot / 'dataset'}")
    assert "has no Lung Segmentation Data; the infection set's 10 images and their lung masks stand in" in lines[1]
    assert lines[-1] == f"check it: segbench data check covid-qu-ex {root}"
    for task, mask_folder in (("infection", "infection masks"), ("lung", "lung masks")):
        source = CovidQuExSource(root, task)
        for split, folder in SPLITS.items():
            ids = source.sample_ids(split)
            assert len(ids) == sum(COUNTS[split].values())
            for sample_id in ids:
                group, name = sample_id.split("/")[-3], f"{sample_id.split('/')[-1]}.png"
                image, mask = source.load(split, sample_id)
                assert np.array_equal(image, _pixels(snapshot / "dataset" / folder / group / "images" / name))
                assert np.array_equal(mask, _pixels(snapshot / "dataset" / folder / group / mask_folder / name))
    laid = root / LUNG_SET / "Val/Normal/lung masks/Normal (val 0).png"
    assert laid.samefile(snapshot / "dataset/Val/Normal/lung masks/Normal (val 0).png")  # linked, not copied
    assert check_counts(_mini(), root).problems == []


def test_a_kaggle_download_keeps_its_own_lung_set(kaggle: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    lines = lay_out(kaggle, root)
    assert lines[1] == f"lung: 11 images with their lung masks from {kaggle} in {root / LUNG_SET}"
    assert f"--data-root {kaggle} works too" in lines[-2]
    assert len(CovidQuExSource(root, "lung").sample_ids("train")) == 5
    image = f"{LUNG_SET}/Train/COVID-19/images/covid (train 0).png"
    assert (root / image).samefile(kaggle / image)
    assert check_counts(_mini(), root).problems == ["lung train COVID-19: 3 images, expected 2 (1 more)"]


@needs_git
def test_a_bare_git_repository_gives_what_its_folder_gives(snapshot: Path, tmp_path: Path) -> None:
    """Read with git, no work tree: the same files, byte for byte; one content is written once."""
    bare = commit_bare(snapshot, tmp_path / "snapshot.git")
    from_git, from_folder = tmp_path / "from-git", tmp_path / "from-folder"
    lines = lay_out(bare, from_git, "dataset")
    lay_out(snapshot, from_folder, "dataset")
    assert lines[0].startswith(f"infection: 10 images with their lung and infection masks from {bare} (HEAD:dataset)")
    files = sorted(path.relative_to(from_git) for path in from_git.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(from_folder) for path in from_folder.rglob("*") if path.is_file())
    assert len(files) == 10 * 3 + 10 * 2
    assert all((from_git / path).read_bytes() == (from_folder / path).read_bytes() for path in files)
    empty = sorted((from_git / INFECTION_SET).glob("*/Normal/infection masks/*.png"))
    assert len(empty) == 3 and len({os.stat(path).st_ino for path in empty}) == 1
    assert lines[2] == "25 files hard-linked, 25 written"  # 20 for the lung task; 6 empty masks, 1 content
    lay_out(bare, from_git, "dataset")  # again: the same files, no temporaries left
    assert sorted(path.relative_to(from_git) for path in from_git.rglob("*") if path.is_file()) == files
    assert check_counts(_mini(), from_git).problems == []


@needs_git
def test_git_sources_name_what_is_wrong(snapshot: Path, tmp_path: Path) -> None:
    bare = commit_bare(snapshot, tmp_path / "snapshot.git")
    with pytest.raises(SegbenchError, match=r"cannot read --path 'datasets' from the git repository .*snapshot\.git"):
        lay_out(bare, tmp_path / "root", "datasets")
    with pytest.raises(SegbenchError, match="--path 'README.md' is a blob in .*, not a folder"):
        lay_out(bare, tmp_path / "root", "README.md")
    with pytest.raises(SegbenchError, match=r"no COVID-QU-Ex infection set in .*\(HEAD\): .*pass --path dataset$"):
        lay_out(bare, tmp_path / "root")


def test_a_folder_without_the_set_is_named_with_what_was_expected(snapshot: Path, tmp_path: Path) -> None:
    with pytest.raises(SegbenchError) as error:
        lay_out(snapshot, tmp_path / "root")
    assert str(error.value) == (
        f"no COVID-QU-Ex infection set in {snapshot}: expected Train, Val, Test folders of COVID-19, Non-COVID, "
        "Normal folders of images, lung masks, infection masks, directly there or under "
        "'Infection Segmentation Data/Infection Segmentation Data'; it has one under 'dataset': pass --path dataset")
    with pytest.raises(SegbenchError, match="source not found: .*nowhere is neither a folder nor a bare git"):
        lay_out(tmp_path / "nowhere", tmp_path / "root")
    with pytest.raises(SegbenchError, match="--path 'data': no folder .*snapshot/data$"):
        lay_out(snapshot, tmp_path / "root", "data")


def test_the_check_names_each_missing_or_different_thing_on_one_line(snapshot: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    lay_out(snapshot, root, "dataset")
    for sub in ("images", "lung masks", "infection masks"):
        (root / INFECTION_SET / "Val/Normal" / sub / "Normal (val 0).png").unlink()
    masks = root / INFECTION_SET / "Test/COVID-19/infection masks"
    for path in masks.iterdir():
        path.unlink()
    masks.rmdir()
    result = check_counts(_mini(), root)
    assert result.problems == [
        "infection val Normal: 0 images, expected 1 (1 missing)",
        f"infection test: COVID-QU-Ex masks not found: expected folder {masks}",
    ]
    assert result.found[:2] == ["infection train: 4 images (COVID-19 2, Non-COVID 1, Normal 1)",
                                "infection val: 2 images (COVID-19 1, Non-COVID 1)"]
    assert check_counts(_mini(), root, ["lung"]).problems == []


def test_the_commands_lay_out_and_check(run_cli, snapshot: Path, tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    code, stdout, stderr = run_cli("data", "layout", "covid-qu-ex", str(snapshot), "--path", "dataset", "--out", root)
    assert code == 0, stderr
    assert "the infection set's 10 images and their lung masks stand in for it" in stdout
    code, stdout, stderr = run_cli(*MINI, "data", "check", "covid-qu-ex-mini", root)
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == f"covid-qu-ex-mini under {root}: complete (the published counts in every split)"
    assert "lung test: 3 images (COVID-19 1, Non-COVID 1, Normal 1)" in stdout.splitlines()
    code, stdout, stderr = run_cli("data", "check", "covid-qu-ex", root, "--task", "infection")
    assert code == 1
    assert stderr.splitlines()[0] == "error: infection train COVID-19: 2 images, expected 1,864 (1,862 missing)"
    assert len(stderr.splitlines()) == 9
    assert stdout.splitlines()[-1] == f"covid-qu-ex under {root}: 9 differences from the published counts"


@pytest.mark.parametrize(("args", "message"), [
    (("data", "layout", "cxr-phantom", ".", "--out", "x"),
     "dataset 'cxr-phantom' has no layout step; datasets with one: covid-qu-ex"),
    (("data", "check", "folder", "."), "dataset 'folder' has no published counts; datasets with one: covid-qu-ex"),
    (("data", "check", "covid-qu-ex", "/no/such/root"), "data root not found: /no/such/root is not a folder"),
    (("data", "check", "covid-qu-ex", ".", "--task", "heart"),
     "publishes no counts for task 'heart'; tasks with counts: infection, lung"),
    (("data", "check", "covid-qu-ex", "/no/such/root", "--task", "heart"), "data root not found"),
])
def test_bad_input_is_one_line(run_cli, args, message) -> None:
    code, _, stderr = run_cli(*args)
    assert code == 2 and stderr.splitlines() == [stderr.splitlines()[0]] and message in stderr, stderr
