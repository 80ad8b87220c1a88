"""Training in stages, end to end on `toy-staged`: each stage gets exactly its view (a stage that asks for
images gets no mask, the labelled stage only the budget's masks, validation only where asked), its own
settings, checkpoints and record; a stage that does not depend on the budget is stored once and reused
with the same bytes; `--labels all` changes nothing."""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from segbench.data.cache import cache_dir
from segbench.data.resize import resize_mask
from segbench.engine.stages import StageSource
from segbench.results import read_models
from tests import toy_plugin

STAGED = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "toy-staged", "--image-size", "32",
          "--quiet", "--eval-batch-size", "8")
RESULTS = ("per_image.csv", "summary.csv", "predictions/toy-staged.npz")


@pytest.fixture(scope="module")
def budget_4(tmp_path_factory):
    """A run of toy-staged with 4 labelled images, and the masks its labelled stage read; the module's
    tests share a cache of their own, so no stage stored by another test is found."""
    from tests.reliability.conftest import cli

    folder = tmp_path_factory.mktemp("staged")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGBENCH_CACHE", str(folder / "cache"))
        toy_plugin.MASKS_SEEN.clear()
        code, _, stderr = cli(*STAGED, "--labels", "4", "--out", str(folder / "labels-4"))
        assert code == 0, stderr
        yield folder / "labels-4", set(toy_plugin.MASKS_SEEN)


def test_each_stage_sees_its_view_and_the_labelled_one_only_the_budget(budget_4):
    out, seen = budget_4
    stages = {s.name: s for s in read_models(out)["toy-staged"].stages}
    assert (stages["pretrain"].view, stages["pretrain"].images, stages["pretrain"].masks) == ("images", 24, 0)
    assert (stages["head"].view, stages["head"].images, stages["head"].masks) == ("labelled", 4, 4)
    # the healthy validation images: val/2 is toy-mixed's only healthy one among 4
    assert (stages["calibrate"].split, stages["calibrate"].images, stages["calibrate"].steps) == ("val", 1, 0)
    labelled = pd.read_csv(out / "labelled.csv", dtype=str)
    assert labelled["split"].tolist() == ["train"] * 4
    source = toy_plugin.ToySquares(None, healthy_every=3)
    expected = {resize_mask(source.load("train", i)[1], 32).astype(np.uint8).tobytes() for i in labelled["sample_id"]}
    assert seen == expected  # the labelled stage read exactly the labelled images' masks


def test_each_stage_has_its_own_settings_and_checkpoint(budget_4):
    out, _ = budget_4
    config = json.loads((out / "config.json").read_text())["plan"]["models"][0]
    assert config["stages"]["pretrain"]["steps"] == 10 and config["stages"]["head"]["epochs"] == 6
    assert all((out / "checkpoints/toy-staged" / stage / "last.pt").is_file() for stage in ("pretrain", "head", "calibrate"))
    record = read_models(out)["toy-staged"]
    assert record.steps == 16 and record.parameters_trained == record.parameters  # body + head, offset a buffer


def test_a_stage_that_does_not_depend_on_the_budget_is_reused_with_the_same_bytes(budget_4, tmp_path, monkeypatch):
    from tests.reliability.conftest import cli

    out, _ = budget_4
    reused = tmp_path / "labels-8"
    code, _, stderr = cli(*STAGED, "--labels", "8", "--out", str(reused))
    assert code == 0, stderr
    stages = {s.name: s for s in read_models(reused)["toy-staged"].stages}
    assert stages["pretrain"].reused_from and not stages["head"].reused_from
    assert json.loads((tmp_path / stages["pretrain"].reused_from / "origin.json").read_text())["run"] == str(out)
    # trained from scratch in a fresh store: the same bytes
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "fresh-cache"))
    fresh = tmp_path / "fresh"
    code, _, stderr = cli(*STAGED, "--labels", "8", "--out", str(fresh))
    assert code == 0, stderr
    assert not read_models(fresh)["toy-staged"].stages[0].reused_from
    assert all((fresh / name).read_bytes() == (reused / name).read_bytes() for name in RESULTS)


def test_labels_all_changes_nothing(run_cli, tmp_path):
    base = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--image-size", "32", "--quiet")
    assert run_cli(*base, "--out", str(tmp_path / "a"))[0] == 0
    assert run_cli(*base, "--labels", "all", "--out", str(tmp_path / "b"))[0] == 0
    names = ("per_image.csv", "summary.csv", "predictions/toy-cnn.npz")
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert not (tmp_path / "b" / "labelled.csv").exists()


def test_a_healthy_stage_on_a_task_without_healthy_images_is_one_clear_error(run_cli, tmp_path):
    code, _, stderr = run_cli("run", "--task", "lung", "--dataset", "toy", "--models", "toy-staged",
                              "--image-size", "32", "--quiet", "--out", str(tmp_path / "r"))
    assert code == 2 and stderr.count("\n") == 1
    assert "healthy images" in stderr and "'calibrate'" in stderr and "(e.g. infection, not lung)" in stderr


def test_a_stage_setting_is_set_per_stage_and_a_wrong_stage_is_named(run_cli, tmp_path):
    code, _, stderr = run_cli(*STAGED, "--set", "toy-staged.head.epochs=0", "--out", str(tmp_path / "r"))
    assert code == 2 and "--set toy-staged.head.epochs=0: epochs must be an integer >= 1" in stderr
    code, _, stderr = run_cli(*STAGED, "--set", "toy-staged.heads.epochs=2", "--out", str(tmp_path / "r"))
    assert code == 2 and "has no stage 'heads'; its stages: pretrain, head, calibrate" in stderr


def test_the_store_lives_in_the_cache(budget_4):
    assert (cache_dir() / "stages").is_dir() and os.listdir(cache_dir() / "stages")


def test_every_field_of_a_stage_source_is_in_its_digest():
    """What names a stored stage is decided by one type: any of its fields changed, another digest."""
    source = StageSource(model="m", plugin="p", stage={"name": "s"}, hyperparameters={"width": 8},
                         training={"steps": 10}, fit_batch=32, data="d", seed=0, previous="", device="cpu",
                         precision="fp32", processes=1, kernels={"cpu": "c"}, versions={"torch": "t"})
    for field in fields(source):
        value = getattr(source, field.name)
        changed = {**value, "x": 1} if isinstance(value, dict) else value + 1 if isinstance(value, int) else f"{value}x"
        assert replace(source, **{field.name: changed}).digest() != source.digest(), field.name
