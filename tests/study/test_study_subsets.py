"""Labelled subsets as a study axis (`labels_seeds`) and what diffusion adds: the study file's checks, the
grid's cells and ids, and on a synthetic results table the report's learning curve (how many subsets and
seeds each number rests on, its CI from an independent nested resampling) and the table pairing each
diffusion model with its direct control."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segbench.reports.study import diffusion_sections, learning_curve_sections, render_md
from segbench.reports.table import fmt
from segbench.study.directory import read_study_json
from segbench.study.grid import Cell
from segbench.study.results import StudyResults
from segbench.study.schema import read_study
from tests.reliability.conftest import cli
from tests.study.conftest import TOY, write
from tests.study.test_statistics import _nested_ci, _two_level_reference

AXIS = TOY.replace("seeds = [0, 1]", 'seeds = [0, 1]\nlabels = [4, "all"]\nlabels_seeds = [0, 3]')


def test_labels_seeds_is_read_as_an_axis_beside_a_label_budget(tmp_path):
    study = read_study(write(tmp_path, AXIS))
    assert study.labels_seeds == (0, 3) and study.labels == (4, None) and "labels_seed" not in study.options
    assert read_study(write(tmp_path, TOY, "plain.toml")).labels_seeds == ()


@pytest.mark.parametrize(("change", "message"), [
    ("labels_seeds = [0, 3]", "labels_seeds (line 5): and labels_seed both choose the labelled images"),
    ("labels_seeds = []", "labels_seeds (line 5): must be a non-empty list of integers"),
    ("labels_seeds = [1, 1]", "labels_seeds (line 5): lists a labels seed twice"),
])
def test_a_bad_labels_seeds_is_one_clear_line(tmp_path, change, message):
    text = AXIS.replace("labels_seeds = [0, 3]", change + ("\nlabels_seed = 2" if "0, 3" in change else ""))
    code, _, stderr = cli("study", "plan", str(write(tmp_path, text)), "--out", str(tmp_path / "s"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_labels_seeds_without_a_budget_is_refused(tmp_path):
    for labels in ("", 'labels = ["all"]\n'):
        text = TOY.replace("seeds = [0, 1]", f"seeds = [0, 1]\n{labels}labels_seeds = [0, 1]")
        code, _, stderr = cli("study", "plan", str(write(tmp_path, text)), "--out", str(tmp_path / "s"))
        assert code == 2 and "labels_seeds" in stderr and "needs a label budget" in stderr, stderr


def test_the_axis_multiplies_the_budgeted_cells_only_and_keeps_other_ids(tmp_path):
    code, stdout, stderr = cli("study", "plan", str(write(tmp_path, AXIS)), "--out", str(tmp_path / "s"))
    assert code == 0, stderr
    assert "labelled subsets: labels seeds 0, 3 at 4 labels, a cell each per seed; at all labels one cell per " \
           "seed (every training image is labelled, whatever the labels seed)" in " ".join(stdout.split())
    keys = [line.split()[0].rsplit("-", 1)[0] for line in stdout.splitlines() if line.strip().startswith("squares-")]
    assert keys == ["squares-toy-cnn-labels4-subset0-seed0", "squares-toy-cnn-labels4-subset0-seed1",
                    "squares-toy-cnn-labels4-subset3-seed0", "squares-toy-cnn-labels4-subset3-seed1",
                    "squares-toy-cnn-labelsall-seed0", "squares-toy-cnn-labelsall-seed1"]
    assert "4 (labels seed 3)" in stdout
    plain = TOY.replace("seeds = [0, 1]", 'seeds = [0, 1]\nlabels = [4, "all"]')
    code, without, stderr = cli("study", "plan", str(write(tmp_path, plain, "plain.toml")), "--out", str(tmp_path / "p"))
    assert code == 0, stderr
    ids = {line.split()[0] for line in without.splitlines() if line.strip().startswith("squares-")}
    with_axis = {line.split()[0] for line in stdout.splitlines() if line.strip().startswith("squares-")}
    # the subset of labels seed 0 is the plain study's labelled images: the same digest; "all" cells are the same
    assert {i.replace("-subset0", "") for i in with_axis if "subset3" not in i} == ids
    assert "labelled subsets" not in without and "subset" not in " ".join(ids)


def test_a_cell_remembers_its_labels_seed_and_an_older_study_json_reads_without_one(tmp_path):
    from segbench.plan.request import RunRequest

    cell = Cell("d-m-labels4-subset3-seed0-abcd", "d", "m", 0, None, RunRequest(task="lung", models=["m"],
                labels=4, labels_seed=3), (), 4, 3)
    assert Cell.from_json(cell.to_json()) == cell
    older = {k: v for k, v in cell.to_json().items() if k != "labels_seed"}
    assert Cell.from_json(older).labels_seed is None


# ---- the report, on a synthetic results table ----

SUBSETS, SEEDS, IMAGES = (0, 1, 2), (0, 1), 7


def _frame(rng: np.random.Generator, level: float) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"test/{i}" for i in range(IMAGES)],
                         "dice": np.clip(rng.normal(level, 0.15, IMAGES), 0, 1), "reference_empty": False})


def study(control: bool = True) -> StudyResults:
    """unet (baseline), diff-add and its direct control under the label "direct": at 4 labels three labelled
    subsets that disagree, two seeds each; at all labels one subset."""
    rng = np.random.default_rng(0)
    levels = {"unet": 0.5, "diff-add": 0.7, "direct": 0.6}
    entries = [e for e in levels if control or e != "direct"]
    frames = {}
    for entry in entries:
        for l in SUBSETS:
            frames[("d", entry, 4, l)] = {s: _frame(rng, levels[entry] + 0.1 * l) for s in SEEDS}
        frames[("d", entry, None, None)] = {s: _frame(rng, levels[entry] + 0.2) for s in SEEDS}
    return StudyResults(Path("."), "s", "unet", {"d": "infection"}, entries, ["dice"], frames, budgets=[4, None],
                        training_images={"d": 24}, models={"unet": "unet", "diff-add": "diff-add",
                                                           "direct": "diff-add:direct"})


def _values(results: StudyResults, entry: str, budget: int | None, labels_seed: int | None) -> list[np.ndarray]:
    return [results.frames[("d", entry, budget, labels_seed)][s]["dice"].to_numpy() for s in SEEDS]


def test_the_learning_curve_says_how_many_subsets_and_seeds_and_its_ci_covers_the_subsets():
    results = study()
    (section,) = learning_curve_sections(results, "dice", True)
    assert section.header[2:5] == ["Mean over subsets and seeds [95% CI]", "Labelled subsets", "Run seeds"]
    rows = {(r[0], r[1]): r for r in section.rows}
    assert rows[("diff-add", "4")][3:5] == ["3", "2"] and rows[("diff-add", "all (24)")][3:5] == ["1", "2"]
    per_subset = [_values(results, "diff-add", 4, l) for l in SUBSETS]
    low, high = _nested_ci(per_subset, results.bootstrap_seed("d"), 2000)
    summary = results.summary("d", "diff-add", "dice", 4)
    assert summary.mean == pytest.approx(np.mean([np.mean([v.mean() for v in runs]) for runs in per_subset]))
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert rows[("diff-add", "4")][2] == f"{fmt(summary.mean)} [{fmt(summary.ci_low)}, {fmt(summary.ci_high)}]"
    assert "3 labelled subsets x 2 seeds" in rows[("diff-add", "4")][-1]
    everything = results.summary("d", "diff-add", "dice", None)
    assert (everything.ci_low, everything.ci_high) == pytest.approx(
        tuple(_two_level_reference(_values(results, "diff-add", None, None), results.bootstrap_seed("d"), 2000)),
        abs=1e-12)


def test_what_diffusion_adds_pairs_each_model_with_its_direct_control_by_subset_seed_and_image():
    results = study()
    (section,) = diffusion_sections(results, "dice", True)
    assert [(r[0], r[1], r[2]) for r in section.rows] == [("diff-add", "direct", "4"), ("diff-add", "direct", "all (24)")]
    bootstrap = results.bootstrap_seed("d")
    differences = [[m - c for m, c in zip(_values(results, "diff-add", 4, l), _values(results, "direct", 4, l))]
                   for l in SUBSETS]
    low, high = _nested_ci(differences, bootstrap, 2000)
    paired = results.paired("d", "diff-add", "dice", True, 4, against="direct")
    assert paired.difference.mean == pytest.approx(np.mean([np.mean([d.mean() for d in runs]) for runs in differences]))
    assert (paired.difference.ci_low, paired.difference.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert section.rows[0][5] == f"{fmt(paired.difference.mean)} [{fmt(low)}, {fmt(high)}]"
    assert section.rows[0][6] == "3 labelled subsets x 2 seeds"
    all_labels = [m - c for m, c in zip(_values(results, "diff-add", None, None), _values(results, "direct", None, None))]
    paired = results.paired("d", "diff-add", "dice", True, None, against="direct")
    assert (paired.difference.ci_low, paired.difference.ci_high) == pytest.approx(
        tuple(_two_level_reference(all_labels, bootstrap, 2000)), abs=1e-12)
    assert section.rows[1][6] == "2 seeds"


def test_the_report_has_the_diffusion_table_only_with_a_control_and_names_the_three_level_bootstrap():
    text = render_md(study(), {})
    assert "## d: what diffusion adds, per-image dice, each diffusion model against its direct control" in text
    assert "labelled subsets from labels seeds 0, 1, 2" in text and "three-level bootstrap" in text
    assert "what diffusion adds" not in render_md(study(control=False), {})


def test_each_labelled_subset_runs_with_its_labels_seed_and_the_report_counts_the_subsets(tmp_path):
    text = TOY.replace("seeds = [0, 1]", "seeds = [0]\nlabels = [4]\nlabels_seeds = [0, 1]")
    out = tmp_path / "study"
    code, _, stderr = cli("study", "run", str(write(tmp_path, text)), "--out", str(out))
    assert code == 0, stderr
    cells = read_study_json(out)["cells"]
    assert [(c.labels_seed, c.request.labels_seed) for c in cells] == [(0, 0), (1, 1)]
    labelled = [pd.read_csv(Path(c.request.out) / "labelled.csv")["sample_id"].tolist() for c in cells]
    assert len(labelled[0]) == len(labelled[1]) and labelled[0] != labelled[1]
    code, stdout, stderr = cli("report", str(out))
    assert code == 0, stderr
    assert "| Labelled subsets | Run seeds |" in stdout and "| toy-cnn | 4 |" in stdout
    row = next(line for line in stdout.splitlines() if line.startswith("| toy-cnn | 4 |"))
    assert row.split(" | ")[3:5] == ["2", "1"]
