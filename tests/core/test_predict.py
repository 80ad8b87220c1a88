"""`segbench predict`: a run's trained model on image files reproduces the run on its own test images;
outputs at each input's size; the same input gives the same mask on every call; bad inputs one line each."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from segbench.prediction.inputs import InputImage, collect, sample_id
from segbench.protocol import bootstrap_seed, score
from segbench.results import read_record

RUN = ("run", "--task", "lung", "--dataset", "folder", "--models", "toy-cnn", "--quiet", "--image-size", "32",
       "--ensemble", "2")
FLOAT16_STEP = 2.0 ** -11  # float16's spacing just below 1: what predictions/<model>.npz keeps of a probability


def _write_dataset(root) -> None:
    """30 bright squares on noise, grey and RGB PNGs of varying sizes (none the run's 32x32), with masks."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(30):
        height, width = 40 + k % 5, 36 + k % 7
        mask = np.zeros((height, width), np.uint8)
        y, x = rng.integers(2, 18, 2)
        side = int(rng.integers(8, 16))
        mask[y:y + side, x:x + side] = 1
        grey = (np.clip(0.3 + 0.4 * mask + rng.normal(0, 0.08, mask.shape), 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(np.stack([grey] * 3, -1), "RGB") if k % 2 else Image.fromarray(grey, "L")
        image.save(root / "images" / f"case{k}.png")
        Image.fromarray(mask * 255, "L").save(root / "masks" / f"case{k}.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data root, run directory) of toy-cnn trained and evaluated on the folder dataset."""
    from typer.testing import CliRunner

    from segbench import cli

    root = tmp_path_factory.mktemp("predict")
    _write_dataset(root / "data")
    result = CliRunner().invoke(cli.app, ["--plugin", "tests.toy_plugin", *RUN, "--data-root", str(root / "data"),
                                          "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "data", root / "run"


@pytest.fixture(scope="module")
def predicted(trained, tmp_path_factory):
    """`segbench predict` on the whole images/ folder: (output folder, stdout)."""
    from typer.testing import CliRunner

    from segbench import cli

    data, run = trained
    out = tmp_path_factory.mktemp("predicted") / "out"
    result = CliRunner().invoke(cli.app, ["--plugin", "tests.toy_plugin", "predict", str(run), "--model", "toy-cnn",
                                          str(data / "images"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.stdout


def _npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def test_predict_reproduces_the_runs_probabilities_and_dice(trained, predicted, registry):
    """The run's own test images, found in a folder of all 30: the run's saved probabilities and
    uncertainty (within float16's precision; in fact equal) and its per-image Dice."""
    _, run = trained
    out, stdout = predicted
    saved, again = _npz(run / "predictions/toy-cnn.npz"), _npz(out / "predictions/toy-cnn.npz")
    assert len(again["sample_id"]) == 30 and "30 masks in" in stdout
    index = [list(again["sample_id"]).index(i) for i in saved["sample_id"]]
    for key in ("probabilities", "uncertainty"):
        np.testing.assert_allclose(again[key][index].astype(np.float32), saved[key].astype(np.float32),
                                   rtol=0, atol=FLOAT16_STEP)
    reference = _npz(run / "predictions/_reference.npz")
    assert list(reference["sample_id"]) == list(saved["sample_id"])
    plan = read_record(run).plan
    scores = score("toy-cnn", list(saved["sample_id"]), again["probabilities"][index], reference["masks"],
                   plan.evaluation.threshold, {"dice": registry.metric("dice")}, bootstrap_seed(plan.seed))
    per_image = pd.read_csv(run / "per_image.csv", dtype={"sample_id": str})
    np.testing.assert_allclose(scores.per_image["dice"].to_numpy(), per_image["dice"].to_numpy(), rtol=1e-9)
    assert per_image["dice"].mean() > 0.3  # a model that learned something, so the comparison means something


def test_outputs_are_at_each_inputs_size_and_listed_in_the_index(trained, predicted):
    data, _ = trained
    out, _ = predicted
    index = pd.read_csv(out / "index.csv", dtype=str, keep_default_na=False)
    assert list(index.columns) == ["sample_id", "input", "width", "height", "status", "foreground", "mask",
                                   "probability", "uncertainty", "overlay"]
    assert list(index["sample_id"]) == sorted(f"images/case{k}" for k in range(30))
    for row in index.itertuples():
        with Image.open(data / f"{row.sample_id}.png") as source:
            size = source.size
        assert (int(row.width), int(row.height)) == size and row.status == "done"
        with Image.open(out / row.mask) as mask, Image.open(out / row.probability) as probability, \
                Image.open(out / row.uncertainty) as uncertainty, Image.open(out / row.overlay) as overlay:
            assert mask.size == probability.size == uncertainty.size == overlay.size == size
            assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
            assert np.asarray(probability).dtype == np.uint16 or probability.mode.startswith("I")
            assert overlay.mode == "RGB"
            assert float(row.foreground) == pytest.approx((np.asarray(mask) == 255).mean(), abs=1e-6)
            # the mask is the probability map thresholded at the run's 0.5
            assert ((np.asarray(probability, dtype=np.float64) / 65535 >= 0.5) == (np.asarray(mask) == 255)).mean() > 0.99


def test_the_same_input_gives_the_same_mask_on_every_call(trained, predicted, run_cli, tmp_path):
    """Three files given one by one, in another order and without their neighbours: the same bytes."""
    data, run = trained
    out, _ = predicted
    files = [str(data / "images" / f"case{k}.png") for k in (7, 2, 13)]
    code, _, stderr = run_cli("predict", str(run), "--model", "toy-cnn", *files, "--out", str(tmp_path / "again"),
                              "--quiet")
    assert code == 0, stderr
    for k in (2, 7, 13):
        for kind in ("mask", "probability", "uncertainty"):
            name = f"images/case{k}.{kind}.png"
            assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def test_bad_inputs_get_one_line_each_and_the_others_are_written(trained, run_cli, tmp_path):
    data, run = trained
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "empty").mkdir()
    good = data / "images" / "case3.png"
    bad = [str(tmp_path / "images" / "broken.png"), str(tmp_path / "missing.png"), str(tmp_path / "empty")]
    code, stdout, stderr = run_cli("predict", str(run), "--model", "toy-cnn", str(good), *bad,
                                   "--out", str(tmp_path / "out"), "--quiet")
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, stderr
    assert any("cannot read image" in line and "broken.png" in line for line in errors)
    assert any("missing.png does not exist" in line for line in errors)
    assert any(f"folder {tmp_path / 'empty'} holds no image files" in line for line in errors)
    assert "Traceback" not in stderr and "1 masks in" in stdout
    index = pd.read_csv(tmp_path / "out/index.csv", dtype=str, keep_default_na=False).set_index("sample_id")
    assert index.loc["images/case3", "status"] == "done" and (tmp_path / "out/images/case3.mask.png").is_file()
    assert index.loc["images/broken", "status"].startswith("failed: cannot read image")


def test_ids_relative_to_names_the_id_root(trained, run_cli, tmp_path):
    """--ids-relative-to: the id is the path under it ("case3" here), and a file outside it is one line."""
    data, run = trained
    outside = tmp_path / "outside.png"
    shutil.copy(data / "images" / "case4.png", outside)
    code, _, stderr = run_cli("predict", str(run), "--model", "toy-cnn", str(data / "images" / "case3.png"),
                              str(outside), "--ids-relative-to", str(data / "images"), "--out", str(tmp_path / "o"),
                              "--quiet")
    assert code == 1 and stderr == f"error: input {outside} is not under --ids-relative-to {data / 'images'}\n"
    assert (tmp_path / "o/case3.mask.png").is_file()


@pytest.mark.parametrize(("change", "message"), [
    ("no run", "is not a segbench run directory (no config.json)"),
    ("other model", "the run has no model 'unet'; it has: toy-cnn"),
    ("not finished", "model 'toy-cnn' of"),
    ("training setting", "--set toy-cnn.lr: a training setting; predict reuses the trained weights"),
])
def test_a_run_that_cannot_predict_is_one_line(trained, run_cli, tmp_path, change, message):
    data, run = trained
    target, options = tmp_path / "run", ["--model", "toy-cnn"]
    if change == "no run":
        target.mkdir()
    else:
        shutil.copytree(run, target)
    if change == "other model":
        options = ["--model", "unet"]
    if change == "not finished":
        models = json.loads((target / "models.json").read_text())
        models["toy-cnn"]["status"] = "failed"
        (target / "models.json").write_text(json.dumps(models))
    if change == "training setting":
        options += ["--set", "toy-cnn.lr=0.1"]
    code, _, stderr = run_cli("predict", str(target), *options, str(data / "images"), "--out", str(tmp_path / "o"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "o").exists()


def test_a_folder_of_links_predicts_as_the_folder_of_copies(trained, predicted, run_cli, tmp_path):
    """A dataset laid out by links (issue 32): each link gets its own path's id, so the same bytes as the
    copies; --out may be a link; a link to a missing file is one line naming it."""
    data, run = trained
    out, _ = predicted
    links = tmp_path / "linked" / "images"
    links.mkdir(parents=True)
    for k in (2, 7):
        (links / f"case{k}.png").symlink_to(data / "images" / f"case{k}.png")
    (links / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "real-out").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real-out")
    code, stdout, stderr = run_cli("predict", str(run), "--model", "toy-cnn", str(links), "--out",
                                   str(tmp_path / "out"), "--quiet")
    assert code == 1 and "2 masks in" in stdout
    assert stderr == f"error: input {links / 'gone.png'} is a symbolic link to {tmp_path / 'missing.png'}, which does not exist\n"
    for k in (2, 7):
        for kind in ("mask", "probability", "uncertainty"):
            name = f"images/case{k}.{kind}.png"
            assert (tmp_path / "real-out" / name).read_bytes() == (out / name).read_bytes(), name


def test_ids_come_from_the_path_as_given(tmp_path):
    """Links are not followed for ids (a file's default root is the folder above its folder, so it never
    fails); a root reached through a link, or a file through a linked folder, still finds the file under it."""
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "scan-1.png").write_bytes(b"")
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "case1.png").symlink_to(tmp_path / "store" / "scan-1.png")
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    linked = tmp_path / "data" / "images" / "case1.png"
    assert sample_id(linked, None) == "images/case1"
    assert sample_id(linked, tmp_path / "alias") == "images/case1"
    assert sample_id(tmp_path / "alias" / "images" / "case1.png", tmp_path / "data") == "images/case1"
    assert sample_id(tmp_path / "alias" / "images" / ".." / "images" / "case1.png", None) == "images/case1"
    assert collect([str(tmp_path / "alias" / "images")], None) == (
        [InputImage("images/case1", tmp_path / "alias" / "images" / "case1.png")], [])
    _, problems = collect([str(linked)], str(tmp_path / "store"))
    assert problems == [f"input {linked} is not under --ids-relative-to {tmp_path / 'store'}"]
