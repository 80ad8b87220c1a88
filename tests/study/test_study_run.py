"""Running studies: a cell is an ordinary run (byte-identical to `segbench run`), finished cells are
skipped, a changed study adds cells or refuses to mix settings, a killed study resumes to the same bytes,
folds are written once, and `segbench evaluate` reuses trained models."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from segbench.study.directory import read_study_json
from tests.reliability.conftest import cli, differing_files, killed_run
from tests.study.conftest import TOY, write
from tests.toy_plugin import ToyCNN

RESULT_FILES = ["per_image.csv", "summary.csv", "predictions/toy-cnn.npz", "predictions/_reference.npz"]


def _run_study(path: Path, out: Path, *extra: str) -> str:
    code, stdout, stderr = cli("study", "run", str(path), "--out", str(out), *extra)
    assert code == 0, stderr
    return stdout


def _cells(out: Path) -> dict[str, Path]:
    return {c.id: Path(c.request.out) for c in read_study_json(out)["cells"]}


@pytest.mark.parametrize(("model", "sets", "run_sets"), [
    ("toy-cnn", "", []),
    ("diff-add", "set = { sampling_steps = 3, channel_mult = [1, 2, 2] }",
     ["--set", "diff-add.sampling_steps=3", "--set", "diff-add.channel_mult=1,2,2"]),
])
def test_a_one_cell_study_equals_the_same_segbench_run(tmp_path, model, sets, run_sets):
    text = TOY.replace("seeds = [0, 1]", "seeds = [4]").replace("toy-cnn = {}", f"{model} = {{ {sets} }}")
    out = tmp_path / "study"
    _run_study(write(tmp_path, text), out)
    (cell,) = _cells(out).values()
    code, _, stderr = cli("run", "--task", "lung", "--dataset", "toy", "--models", model, "--preset", "tiny",
                          "--image-size", "32", "--ensemble", "2", "--eval-batch-size", "3", "--seed", "4", "--quiet",
                          *run_sets, "--out", str(tmp_path / "run"))
    assert code == 0, stderr
    assert differing_files(cell, tmp_path / "run", ["per_image.csv", "summary.csv"]) == []


def test_plan_shows_the_grid_without_running_and_a_rerun_skips_finished_cells(toy_study, tmp_path, monkeypatch):
    out = tmp_path / "study"
    code, stdout, stderr = cli("study", "plan", str(toy_study), "--out", str(out))
    assert code == 0, stderr
    assert "2 cells" in stdout and "(0 done)" in stdout and not out.exists()
    _run_study(toy_study, out)
    assert all((cell / "report.md").is_file() for cell in _cells(out).values())
    calls = []
    monkeypatch.setattr(ToyCNN, "training_loss", lambda self, *a: calls.append(1))
    _run_study(toy_study, out)
    assert calls == []  # nothing trained again
    assert "(2 done)" in cli("study", "plan", str(toy_study), "--out", str(out))[1]


def test_a_changed_study_adds_new_cells_and_refuses_to_mix_changed_ones(toy_study, tmp_path):
    out = tmp_path / "study"
    _run_study(toy_study, out)
    before = _cells(out)
    more = write(tmp_path, TOY.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"), "more.toml")
    _run_study(more, out)
    after = _cells(out)
    assert set(before) < set(after) and len(after) == 3  # the same ids for the same settings, one new cell
    changed = write(tmp_path, TOY.replace('preset = "tiny"', 'preset = "tiny"\nepochs = 3'), "changed.toml")
    code, _, stderr = cli("study", "run", str(changed), "--out", str(out))
    assert code == 2 and "was run with other settings (training.toy-cnn.epochs: 12 -> 3)" in stderr
    assert "move" in stderr and len(stderr.strip().splitlines()) == 1


def test_a_cell_whose_study_file_was_rewritten_by_another_study_run_fails_with_one_clear_error(toy_study, tmp_path):
    """Two `study run`s with different files in one directory: the first one's pending cells are no longer in
    study.json when their turn comes; the job says so instead of an internal error."""
    from segbench.errors import SegbenchError
    from segbench.reports.compose import write_run_report
    from segbench.study.jobs import run_cell

    out = tmp_path / "study"
    _run_study(toy_study, out)
    first = next(iter(_cells(out)))
    _run_study(write(tmp_path, TOY.replace("seeds = [0, 1]", "seeds = [5]"), "other.toml"), out)  # rewrites study.json
    assert first not in _cells(out)
    with pytest.raises(SegbenchError, match="is not in .*study.json any more: another `segbench study run`"):
        run_cell(out, first, write_run_report)


def test_a_study_in_a_log_file_shows_each_cells_progress_as_segbench_run_does(tmp_path):
    """Not a terminal (`segbench study run FILE > log 2>&1`, a SLURM job): each cell's start, then the plain
    progress lines of its training, prediction and variants, as `segbench run` prints them in a log."""
    out = tmp_path / "study"
    code, _, stderr = cli("study", "run", str(write(tmp_path, VARIANT_STUDY)), "--out", str(out))
    assert code == 0, stderr
    lines = stderr.splitlines()
    for cell_id in _cells(out):
        start = lines.index(f"cell {cell_id}")
        after = lines[start + 1:]
        end = next((i for i, line in enumerate(after) if line.startswith("cell ")), len(after))
        cell_lines = after[:end]
        assert any(line.startswith("toy-cnn train (1 of 1): 72/72 (100%), loss ") for line in cell_lines), cell_lines
        predicted = [line.split(",")[0] for line in cell_lines if line.startswith("toy-cnn predict")]
        assert predicted == ["toy-cnn predict (1 of 1): 20/20 (100%)",  # 10 images, as trained: 2 masks each
                             "toy-cnn predict (1 of 1): 40/40 (100%)"]  # the variant "four": 4 each
    assert len(_cells(out)) == 2


KILLS = [  # (where, n): each cell trains 72 steps (12 epochs of 6) and predicts 7 batches
    pytest.param("train", 100, id="training-of-the-second-cell"),
    pytest.param("predict", 3, id="evaluating-the-first-cell"),
    pytest.param("predict", 10, id="evaluating-a-variant"),
    pytest.param("per_image.csv", 2, id="writing-results"),
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("uninterrupted")
    out = folder / "study"
    _run_study(write(folder, VARIANT_STUDY), out)
    return out


VARIANT_STUDY = TOY + """
[evaluations.four]
ensemble = 4
"""


@pytest.mark.parametrize(("where", "n"), KILLS)
def test_a_study_killed_at_any_point_resumes_to_the_same_bytes(uninterrupted, tmp_path, where, n):
    path = write(tmp_path, VARIANT_STUDY)
    out = tmp_path / "study"
    killed = killed_run(where, n, "study", "run", str(path), "--out", str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    _run_study(path, out)
    reference = {c.name: c for c in (uninterrupted / "cells").iterdir()}
    assert sorted(reference) == sorted(p.name for p in (out / "cells").iterdir())
    for name, cell in reference.items():
        assert differing_files(cell, out / "cells" / name, RESULT_FILES) == [], name
        variant = uninterrupted / "variants" / name / "four"
        assert differing_files(variant, out / "variants" / name / "four", RESULT_FILES) == [], name


def test_folds_are_written_once_and_partition_the_samples(tmp_path):
    path = write(tmp_path, TOY.replace("seeds = [0, 1]", "seeds = [0]") + "\n[folds]\nk = 3\n")
    out = tmp_path / "study"
    _run_study(path, out)
    folds_file = out / "folds" / "squares.json"
    folds = json.loads(folds_file.read_text())
    assert folds["k"] == 3 and len(folds["samples"]) == 24 + 4 + 10  # every split of the toy dataset
    stamp = folds_file.stat().st_mtime_ns
    tested = []
    for cell in _cells(out).values():
        per_image = (cell / "per_image.csv").read_text().splitlines()[1:]
        tested += [line.split(",")[1] for line in per_image]
    assert sorted(tested) == sorted(sample for _, sample, _ in folds["samples"])  # each sample tested once
    _run_study(path, out)
    assert folds_file.stat().st_mtime_ns == stamp


def test_the_study_report_aggregates_over_seeds_in_every_format(uninterrupted, tmp_path):
    code, stdout, stderr = cli("report", str(uninterrupted))
    assert code == 0, stderr
    assert "## squares: per-image dice, over seeds" in stdout and "| toy-cnn@four |" in stdout
    assert "not separated at 2 seeds" in stdout or "at 2 seeds (CI excludes 0)" in stdout
    for fmt, marker in (("latex", r"\begin{tabular}"), ("html", "<h2>"), ("csv", "dataset,model,metric,mean")):
        code, text, stderr = cli("report", str(uninterrupted), "--format", fmt, "--out", str(tmp_path / f"r.{fmt}"))
        assert code == 0 and marker in (tmp_path / f"r.{fmt}").read_text(), stderr
    assert (tmp_path / "r-figures" / "seeds.pdf").is_file()  # the latex report's figure (vector), written beside it


def test_evaluate_with_the_runs_own_settings_reproduces_it(uninterrupted, tmp_path):
    cell = sorted((uninterrupted / "cells").iterdir())[0]
    code, _, stderr = cli("evaluate", str(cell), "--out", str(tmp_path / "again"), "--quiet")
    assert code == 0, stderr
    assert differing_files(cell, tmp_path / "again", RESULT_FILES) == []


def test_evaluate_changes_only_how_a_trained_model_is_evaluated(uninterrupted, tmp_path):
    cell = sorted((uninterrupted / "cells").iterdir())[0]
    code, _, stderr = cli("evaluate", str(cell), "--set", "toy-cnn.lr=0.1", "--out", str(tmp_path / "a"))
    assert code == 2 and "--set toy-cnn.lr: a training setting; evaluate reuses the trained weights" in stderr
    code, _, stderr = cli("evaluate", str(cell), "--set", "toy-cnn.width=4", "--out", str(tmp_path / "b"))
    assert code == 2 and "does not fit the network" in stderr
    code, _, stderr = cli("evaluate", str(cell), "--models", "unet", "--out", str(tmp_path / "c"))
    assert code == 2 and "has no finished model 'unet'" in stderr
    code, _, stderr = cli("evaluate", str(cell), "--threshold", "0.3", "--out", str(tmp_path / "d"), "--quiet")
    assert code == 0, stderr
    assert (tmp_path / "d" / "per_image.csv").read_bytes() != (cell / "per_image.csv").read_bytes()
    report = (tmp_path / "d" / "report.md").read_text()
    assert "- **Threshold**: 0.3" in report and f"- **Trained in**: {cell.resolve()}" in report


def test_a_variant_on_another_dataset_is_reported_as_a_dataset_of_its_own(tmp_path):
    """`[evaluations.far]` with a dataset: each cell's model evaluated on every image of a folder set, under
    "squares@far" in the study report (its images are not the squares')."""
    from tests.core.test_evaluate_elsewhere import write_folder

    write_folder(tmp_path / "b")
    study = write(tmp_path, TOY.replace("seeds = [0, 1]", "seeds = [0]")
                  + f'\n[evaluations.far]\ndataset = "folder"\nroot = "{tmp_path / "b"}"\nsplit = "all"\n')
    out = tmp_path / "study"
    _run_study(study, out)
    (cell,) = read_study_json(out)["cells"]
    variant = out / "variants" / cell.id / "far"
    config = json.loads((variant / "config.json").read_text())
    assert (config["plan"]["data"]["dataset"], config["plan"]["evaluation"]["split"]) == ("folder", "all")
    assert config["trained_on"]["dataset"] == "toy" and config["eval_samples_used"] == 20
    code, stdout, stderr = cli("report", str(out))
    assert code == 0, stderr
    assert "## squares@far: per-image dice, over seeds" in stdout and "| toy-cnn@far |" in stdout
