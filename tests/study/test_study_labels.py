"""A study with a labels axis: a cell per model, label budget and seed, each an ordinary run with
`--labels N`; a stage that does not depend on the budget trained once per seed and reused by every budget;
the report's learning curve (each model at each budget over seeds, paired with the baseline at the same
budget) in every format, and its figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segbench.reports.settings import MODEL_COLUMNS
from segbench.results import read_models
from segbench.study.directory import read_study_json
from tests.reliability.conftest import cli
from tests.study.conftest import TOY, write

STUDY = """
name = "toy-labels"
seeds = [0, 1]
labels = [4, "all"]
preset = "tiny"
image_size = 32
eval_batch_size = 8

[datasets.mixed]
dataset = "toy-mixed"
task = "infection"

[models]
toy-cnn = {}
toy-staged = {}
"""


def test_a_labels_axis_runs_each_budget_reuses_budget_free_stages_and_reports_a_learning_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))  # no stage stored by another test
    out = tmp_path / "study"
    code, _, stderr = cli("study", "run", str(write(tmp_path, STUDY)), "--out", str(out))
    assert code == 0, stderr
    cells = read_study_json(out)["cells"]
    assert len(cells) == 2 * 2 * 2 and {c.labels for c in cells} == {4, None}
    assert {c.id.rsplit("-", 1)[0] for c in cells if c.model == "toy-cnn"} == {
        "mixed-toy-cnn-labels4-seed0", "mixed-toy-cnn-labels4-seed1", "mixed-toy-cnn-labelsall-seed0",
        "mixed-toy-cnn-labelsall-seed1"}
    staged = [c for c in cells if c.model == "toy-staged"]
    pretrain = {(c.labels, c.seed): read_models(c.request.out)["toy-staged"].stages[0] for c in staged}
    for seed in (0, 1):  # the first budget of a seed trains the stage, the other reuses it
        assert not pretrain[(4, seed)].reused_from and pretrain[(None, seed)].reused_from
        # a reused stage records the training FLOPs it cost where it was trained
        assert pretrain[(None, seed)].training_flops == pretrain[(4, seed)].training_flops > 0
    head = {c.labels: read_models(c.request.out)["toy-staged"].stages[1] for c in staged if c.seed == 0}
    assert (head[4].masks, head[None].masks) == (4, 24)
    cell = next(c for c in staged if c.labels == 4)  # its report says the budget, and what each stage ran
    report = (Path(cell.request.out) / "report.md").read_text()
    assert "- **Label budget**: 4 of 24 images\n- **Labels seed**: 0\n" in report
    trained = next(line for line in report.splitlines() if line.startswith("- **toy-staged**: "))
    assert [part.split(",")[0] for part in trained.split("; ")] == [
        "- **toy-staged**: width=8", "pretrain: steps=10", "head: epochs=6", "calibrate: fitted once"]
    assert ("| pretrain: 10 x 4, " in report and "; head: 6 x 4, " in report
            and "; calibrate: fit on " in report)  # the cost table: the same stages, steps x batch

    code, _, stderr = cli("report", str(out), "--format", "md", "--out", str(tmp_path / "report.md"))
    assert code == 0, stderr
    text = (tmp_path / "report.md").read_text()
    assert "## mixed: learning curve, per-image dice by labelled training images" in text
    assert "- **Label budgets**: 4, all (24); labels seed 0\n" in text
    assert "| toy-staged | 4 |" in text and "| toy-staged | all (24) |" in text
    assert "![learning-curve](report-figures/learning-curve.png)" in text
    cost = text.split("## mixed: what each result cost", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in cost.splitlines() if line.startswith("| toy-staged |")]
    assert [(r[1], r[4]) for r in rows] == [("0", "4"), ("0", "24")]  # run seed, labelled images per budget
    flops = MODEL_COLUMNS.index("Training TFLOP") + 1  # after the run seed
    assert all("pretrain: " in r[flops] and "calibrate: –" in r[flops] for r in rows)
    assert (tmp_path / "report-figures/learning-curve.png").is_file()
    code, _, stderr = cli("report", str(out), "--format", "csv", "--out", str(tmp_path / "summary.csv"))
    assert code == 0, stderr
    csv = pd.read_csv(tmp_path / "summary.csv")
    assert set(csv["labels"].astype(str)) == {"4", "all"} and len(csv) == 2 * 2 * csv["metric"].nunique()


def test_a_budget_at_or_above_the_training_split_is_refused_before_any_cell_runs(tmp_path):
    """`labels = [999999]` is `all` by another name: `study plan` refuses it in one line naming the cell, and
    `study run` writes no cell."""
    study = write(tmp_path, TOY.replace("seeds = [0, 1]", "seeds = [0, 1]\nlabels = [4, 999999]"))
    for command in ("plan", "run"):
        code, _, stderr = cli("study", command, str(study), "--out", str(tmp_path / "out"))
        assert code == 2 and stderr.count("\n") == 1, stderr
        assert "labels999999" in stderr and "--labels 999999: the train split has 24 images" in stderr, stderr
    assert not (tmp_path / "out" / "cells").exists()
