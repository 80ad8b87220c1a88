"""`segbench evaluate RUN --dataset D --data-root R [--split test|all]`: a finished run's models scored on
another dataset at the run's image size; another task refused before anything is written; --eval-samples
not inherited; a calibrated threshold kept from the training data; the record and report say both datasets."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from segbench.errors import SegbenchError
from segbench.evaluate import EvaluateRequest, evaluate
from segbench.io.checkpoints import load_checkpoint
from segbench.progress import Progress
from segbench.reports.compose import write_run_report
from segbench.results import read_record
from segbench.results.store import final_checkpoint
from segbench_cxr.folder import FolderSource

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet", "--image-size", "32",
       "--eval-samples", "4")
SITES = ("north", "south")


def write_folder(root) -> None:
    """20 bright squares on noise, 40x40 PNGs, every fourth mask at half its image's size; metadata.csv
    gives each image a site."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(20):
        mask = np.zeros((40, 40), np.uint8)
        y, x = rng.integers(4, 20, 2)
        mask[y:y + 14, x:x + 14] = 1
        image = (np.clip(0.3 + 0.4 * mask + rng.normal(0, 0.08, mask.shape), 0, 1) * 255).astype(np.uint8)
        Image.fromarray(image, "L").save(root / "images" / f"b{k:02d}.png")
        Image.fromarray((mask[::2, ::2] if k % 4 == 0 else mask) * 255, "L").save(root / "masks" / f"b{k:02d}.png")
    rows = "".join(f"b{k:02d},{SITES[k % 2]}\n" for k in range(20))
    (root / "metadata.csv").write_text(f"stem,site\n{rows}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory of toy-cnn trained on toy, lung, evaluated on 4 test images; the folder data root)."""
    from typer.testing import CliRunner

    from segbench import cli

    root = tmp_path_factory.mktemp("elsewhere")
    write_folder(root / "b")
    result = CliRunner().invoke(cli.app, ["--plugin", "tests.toy_plugin", *RUN, "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run", root / "b"


def test_evaluated_on_a_folder_dataset_records_and_reports_both(trained, tmp_path, run_cli):
    run, data = trained
    code, _, stderr = run_cli("evaluate", str(run), "--dataset", "folder", "--data-root", str(data),
                              "--out", str(tmp_path / "b"), "--quiet")
    assert code == 0, stderr
    record = read_record(tmp_path / "b")
    assert (record.plan.data.dataset, record.plan.data.root) == ("folder", str(data.resolve()))
    assert record.plan.data.image_size == 32 and record.plan.evaluation.split == "test"
    assert record.trained_on == read_record(run).plan.data and record.trained_on.dataset == "toy"
    test_ids = FolderSource(data).sample_ids("test")
    assert record.eval_samples_used == len(test_ids)  # the run's --eval-samples 4 is not inherited
    per_image = pd.read_csv(tmp_path / "b" / "per_image.csv")
    assert list(per_image["sample_id"]) == test_ids
    assert list(per_image["site"]) == [SITES[int(i[-2:]) % 2] for i in test_ids]  # metadata.csv's column
    report = (tmp_path / "b" / "report.md").read_text()
    assert f"trained on toy, evaluated on folder ({data.resolve()}), test split" in report
    assert json.loads((tmp_path / "b" / "config.json").read_text())["trained_on"]["dataset"] == "toy"


def test_split_all_scores_every_image_and_eval_samples_only_when_given(trained, tmp_path, run_cli):
    run, data = trained
    code, _, stderr = run_cli("evaluate", str(run), "--dataset", "folder", "--data-root", str(data), "--split", "all",
                              "--out", str(tmp_path / "all"), "--quiet")
    assert code == 0, stderr
    per_image = pd.read_csv(tmp_path / "all" / "per_image.csv")
    assert list(per_image["sample_id"]) == [f"images/b{k:02d}" for k in range(20)]
    assert "evaluated on folder" in (tmp_path / "all" / "report.md").read_text()
    code, _, stderr = run_cli("report", str(tmp_path / "all"), "--by", "site", "--format", "md")
    assert code == 0, stderr
    code, _, stderr = run_cli("evaluate", str(run), "--dataset", "folder", "--data-root", str(data), "--split", "all",
                              "--eval-samples", "7", "--out", str(tmp_path / "seven"), "--quiet")
    assert code == 0, stderr
    assert read_record(tmp_path / "seven").eval_samples_used == 7
    code, _, stderr = run_cli("evaluate", str(run), "--out", str(tmp_path / "own"), "--quiet")  # its own data
    assert code == 0, stderr
    own = read_record(tmp_path / "own")
    assert own.eval_samples_used == 4 and own.trained_on is None and own.plan.data == read_record(run).plan.data


def test_the_masks_of_another_size_are_resized_to_their_image(trained, tmp_path, run_cli):
    """b00's mask is 20x20 for a 40x40 image: nearest neighbour to 40x40, then the run's 32x32 as any mask."""
    _, data = trained
    source = FolderSource(data)
    split = next(s for s in ("train", "val", "test") if "images/b00" in source.sample_ids(s))
    image, mask = source.load(split, "images/b00")
    stored = np.asarray(Image.open(data / "masks" / "b00.png"))
    assert image.shape == mask.shape == (40, 40)
    assert np.array_equal(mask, np.repeat(np.repeat(stored, 2, axis=0), 2, axis=1))


def test_another_task_is_refused_before_anything_is_written(trained, tmp_path, registry, monkeypatch):
    run, data = trained
    only = replace(registry.dataset("folder"), name="infection-folder", tasks=("infection",))
    monkeypatch.setitem(registry.specs["datasets"], "infection-folder", only)
    request = EvaluateRequest(str(run), dataset="infection-folder", data_root=str(data), out=str(tmp_path / "x"))
    with pytest.raises(SegbenchError) as raised:
        evaluate(request, registry, Progress(silent=True), write_run_report)
    assert str(raised.value) == ("dataset 'infection-folder' does not serve task 'lung', which the run's models were "
                                 "trained for (it serves: infection); evaluate them on a dataset that does")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("options", "message"), [
    (("--split", "all"), "--split all on toy, the data the run's models were trained on, would score their training"),
    (("--split", "val"), "unknown --split 'val'"),
    (("--dataset", "folder"), "dataset 'folder' needs --data-root"),
])
def test_bad_evaluated_data_is_one_line(trained, tmp_path, run_cli, options, message):
    run, _ = trained
    code, _, stderr = run_cli("evaluate", str(run), *options, "--out", str(tmp_path / "x"), "--quiet")
    assert code != 0 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "x").exists()


def test_a_calibrated_threshold_stays_the_one_fitted_on_the_training_data(trained, tmp_path, run_cli, monkeypatch,
                                                                         registry):
    """anomaly-ddpm trained and calibrated on toy-mixed, evaluated on the folder set: its prediction uses the
    threshold and scale of the run's checkpoint (nothing is fitted on the evaluated images)."""
    from segbench_unconditional.anomaly_ddpm import AnomalyDDPMSegmenter

    _, data = trained
    run = tmp_path / "anomaly"
    code, _, stderr = run_cli("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "anomaly-ddpm",
                              "--preset", "tiny", "--image-size", "32", "--steps", "2", "--eval-samples", "2",
                              "--quiet", "--out", str(run))
    assert code == 0, stderr
    used: list[tuple[float, float]] = []
    original = AnomalyDDPMSegmenter.predict

    def spy(self, images, seeds):
        used.append((float(self.threshold), float(self.scale)))
        return original(self, images, seeds)

    monkeypatch.setattr(AnomalyDDPMSegmenter, "predict", spy)
    code, _, stderr = run_cli("evaluate", str(run), "--dataset", "folder", "--data-root", str(data),
                              "--eval-samples", "2", "--out", str(tmp_path / "b"), "--quiet")
    assert code == 0, stderr
    saved = load_checkpoint(run / final_checkpoint("anomaly-ddpm", registry.model("anomaly-ddpm").stages))
    weights = {**saved["model"], **saved["ema"]}
    fitted = (float(weights["threshold"]), float(weights["scale"]))
    assert used and all(u == fitted for u in used) and all(np.isfinite(fitted))
