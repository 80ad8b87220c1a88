"""A study report's table of calibrated scores: for a model that declares `upper_bound` (toy-staged), each
seed's image-level AUROC and Dice over the images with foreground are that seed's run's, as its own report
computes them, and the means over seeds are their means; a model without the flag gets no row."""

from __future__ import annotations

import numpy as np

from segbench.plugins import load_plugins
from segbench.reports.compose import compose_study_report
from segbench.reports.table import fmt
from segbench.reports.upper_bound import upper_bounds
from segbench.results import load_run
from segbench.study.results import load_study
from tests.reliability.conftest import cli
from tests.study.conftest import write

STUDY = """
name = "scores"
seeds = [0, 1]
preset = "tiny"
image_size = 32

[datasets.mixed]
dataset = "toy-mixed"
task = "infection"

[models]
toy-cnn = {}
toy-staged = {}
"""


def test_each_seeds_auroc_is_its_runs_and_the_mean_is_their_mean(tmp_path):
    out = tmp_path / "study"
    code, _, stderr = cli("study", "run", str(write(tmp_path, STUDY)), "--out", str(out))
    assert code == 0, stderr
    registry = load_plugins(["tests.toy_plugin"])
    md = registry.specs["formats"]["md"]
    report = compose_study_report(registry, out, md, out_file=None, baseline=None, standalone=False, figures=False)
    title = "## mixed: calibrated scores, image-level AUROC and Dice over the images with foreground"
    assert title in report
    table = report.split(title)[1].split("\n\n")[1].splitlines()
    assert table[0].startswith("| Model | AUROC, mean over seeds | SD across seeds | seed 0 | seed 1 |")
    assert len(table) == 3 and table[2].startswith("| toy-staged |")  # toy-cnn declares no upper bound
    runs = load_study(out).runs[("mixed", "toy-staged", None, None)]
    bounds = [upper_bounds(load_run(runs[seed][0].path), ["toy-staged"])[0] for seed in (0, 1)]
    aurocs = [b.image_auroc for b in bounds]
    assert aurocs[0] != aurocs[1]  # the two seeds' runs differ, so a mix-up shows
    expected = [fmt(np.mean(aurocs)), fmt(np.std(aurocs, ddof=1)), *map(fmt, aurocs),
                fmt(np.mean([b.foreground_dice for b in bounds])), fmt(np.mean([b.foreground_best_dice for b in bounds]))]
    assert [c.strip() for c in table[2].strip("|").split("|")][1:] == expected
