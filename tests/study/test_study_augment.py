"""The augmentation policy as a study axis (`augment = ["none", "standard"]`): the study file's checks, the
grid's cells and ids (a study whose `augment` is one policy keeps its ids), and the report: a row per model
and policy, each paired with the baseline trained under the same policy, and what augmentation adds (each
model under standard against itself under none), on a synthetic results table and on a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segbench.plugins import load_plugins
from segbench.reports.study import augmentation_sections, diffusion_sections, render_md, study_sections, verdict
from segbench.reports.table import fmt
from segbench.study.directory import read_study_json
from segbench.study.grid import Cell
from segbench.study.results import StudyResults, entry_label, load_study
from segbench.study.run import plan_study
from segbench.study.schema import read_study
from tests.reliability.conftest import cli
from tests.study.conftest import TOY, write
from tests.study.test_statistics import _two_level_reference

AXIS = TOY.replace("seeds = [0, 1]", 'seeds = [0, 1]\naugment = ["none", "standard"]')


def _with(augment: str, labels: str = "") -> str:
    return TOY.replace("seeds = [0, 1]", f"seeds = [0, 1]\naugment = {augment}{labels}")


def test_augment_is_an_axis_as_a_list_and_a_run_option_as_a_policy(tmp_path):
    study = read_study(write(tmp_path, AXIS))
    assert study.augments == ("none", "standard") and "augment" not in study.options
    one = read_study(write(tmp_path, _with('"standard"'), "one.toml"))
    assert one.augments == () and one.options["augment"] == "standard"
    assert read_study(write(tmp_path, _with('["standard"]'), "axis-of-one.toml")).augments == ("standard",)
    assert read_study(write(tmp_path, TOY, "plain.toml")).augments == ()


@pytest.mark.parametrize(("value", "message"), [
    ("[]", "augment (line 4): must be a policy or a non-empty list of policies"),
    ("[1]", "augment (line 4): must be a policy or a non-empty list of policies"),
    ('["none", "none"]', "augment (line 4): lists a policy twice"),
    ('["none", "heavy"]', "augment (line 4): names an unknown policy 'heavy'; valid: none, standard"),
    ('"heavy"', "augment (line 4): names an unknown policy 'heavy'; valid: none, standard"),
])
def test_a_bad_augment_is_one_clear_line(tmp_path, value, message):
    code, _, stderr = cli("study", "plan", str(write(tmp_path, _with(value))), "--out", str(tmp_path / "s"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def _cells(tmp_path: Path, text: str, name: str) -> list[Cell]:
    """The cells `study plan` shows for study file `name` of `text`."""
    return plan_study(write(tmp_path, text, name), str(tmp_path / Path(name).stem),
                      load_plugins(("tests.toy_plugin",))).cells


def test_the_axis_runs_every_cell_under_each_policy_with_its_own_id(tmp_path):
    cells = _cells(tmp_path, _with('["none", "standard"]', '\nlabels = [4, "all"]'), "axis.toml")
    assert [(c.augment, c.request.augment, c.labels, c.seed) for c in cells] == [
        (policy, policy, labels, seed) for policy in ("none", "standard") for labels in (4, None) for seed in (0, 1)]
    assert len({c.id for c in cells}) == len({c.key for c in cells}) == 8
    assert [c.key for c in cells[:2]] == ["squares-toy-cnn-augmentnone-labels4-seed0",
                                          "squares-toy-cnn-augmentnone-labels4-seed1"]
    # a policy's cells have the digest of the study that sets that policy alone: the same settings
    for policy in ("none", "standard"):
        alone = _cells(tmp_path, _with(f'"{policy}"', '\nlabels = [4, "all"]'), f"{policy}.toml")
        assert [c.id for c in cells if c.augment == policy] == [
            c.id.replace("squares-toy-cnn-", f"squares-toy-cnn-augment{policy}-") for c in alone]
    one = _cells(tmp_path, _with('["standard"]'), "one.toml")  # a list of one policy is an axis of one
    assert [c.key for c in one] == ["squares-toy-cnn-augmentstandard-seed0", "squares-toy-cnn-augmentstandard-seed1"]


def test_a_study_with_one_policy_or_none_keeps_its_cell_ids(tmp_path):
    # the ids the code gave before the axis existed, computed with it
    assert [c.id for c in _cells(tmp_path, _with('"standard"'), "standard.toml")] == [
        "squares-toy-cnn-seed0-892fe99f", "squares-toy-cnn-seed1-892fe99f"]
    assert [c.id for c in _cells(tmp_path, _with('"standard"', '\nlabels = [4, "all"]'), "labels.toml")] == [
        "squares-toy-cnn-labels4-seed0-81342605", "squares-toy-cnn-labels4-seed1-81342605",
        "squares-toy-cnn-labelsall-seed0-892fe99f", "squares-toy-cnn-labelsall-seed1-892fe99f"]
    cells = _cells(tmp_path, TOY, "plain.toml")
    assert [c.id for c in cells] == ["squares-toy-cnn-seed0-ee483bfc", "squares-toy-cnn-seed1-ee483bfc"]
    assert all(c.augment is None for c in cells)


def test_plan_shows_each_cells_policy_and_a_cell_remembers_it(tmp_path):
    code, stdout, stderr = cli("study", "plan", str(write(tmp_path, AXIS)), "--out", str(tmp_path / "s"))
    assert code == 0, stderr
    assert stdout.splitlines()[0].split()[:5] == ["cell", "task", "model", "labels", "augment"]
    rows = [line.split() for line in stdout.splitlines() if line.strip().startswith("squares-")]
    assert [(row[0].rsplit("-", 1)[0], row[4]) for row in rows] == [
        (f"squares-toy-cnn-augment{policy}-seed{seed}", policy) for policy in ("none", "standard") for seed in (0, 1)]
    cell = _cells(tmp_path, AXIS, "study.toml")[2]
    assert Cell.from_json(cell.to_json()) == cell
    older = {k: v for k, v in cell.to_json().items() if k != "augment"}
    assert Cell.from_json(older).augment is None


# ---- the report, on a synthetic results table ----

SEEDS, IMAGES = (0, 1, 2), 9
LEVELS = {("unet", "none"): 0.4, ("unet", "standard"): 0.55, ("diff-add", "none"): 0.5,
          ("diff-add", "standard"): 0.8, ("direct", "none"): 0.45, ("direct", "standard"): 0.6}


def _frame(rng: np.random.Generator, level: float) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": [f"test/{i}" for i in range(IMAGES)],
                         "dice": np.clip(rng.normal(level, 0.1, IMAGES), 0, 1), "reference_empty": False})


def study() -> StudyResults:
    """unet (baseline), diff-add and its direct control under the label "direct", each trained under none and
    standard on three seeds; standard lifts every model by its own amount."""
    rng = np.random.default_rng(0)
    augments = {entry_label(model, policy): (model, policy) for model, policy in LEVELS}
    frames = {("d", entry_label(*key), None, None): {s: _frame(rng, level) for s in SEEDS} for key, level in LEVELS.items()}
    return StudyResults(Path("."), "s", "unet", {"d": "infection"}, list(augments), ["dice"], frames,
                        models={"unet": "unet", "diff-add": "diff-add", "direct": "diff-add:direct"},
                        augments=augments)


def _values(results: StudyResults, model: str, policy: str) -> list[np.ndarray]:
    return [results.frames[("d", entry_label(model, policy), None, None)][s]["dice"].to_numpy() for s in SEEDS]


def _differences(results: StudyResults, model: tuple[str, str], against: tuple[str, str]) -> list[np.ndarray]:
    return [m - a for m, a in zip(_values(results, *model), _values(results, *against))]


def test_each_model_is_compared_with_the_baseline_trained_under_its_own_policy():
    results = study()
    assert results.baseline_of("diff-add (augment none)") == "unet (augment none)"
    sections = {s.title: s for s in study_sections(results, {})}
    against = sections["d: against unet (same augmentation policy) (per-image dice, paired by seed and image)"]
    rows = {r[0]: r for r in against.rows}
    assert list(rows) == ["diff-add (augment none)", "diff-add (augment standard)", "direct (augment none)",
                          "direct (augment standard)"]  # the baselines themselves are no rows
    for policy in ("none", "standard"):
        entry = entry_label("diff-add", policy)
        paired = results.paired("d", entry, "dice")
        expected = _differences(results, ("diff-add", policy), ("unet", policy))
        assert paired.difference.seed_means == pytest.approx([d.mean() for d in expected], abs=1e-12)
        assert rows[entry][1] == _mean_ci_text(paired)
        assert rows[entry][4] == verdict(entry, f"unet (augment {policy})", paired)
    over = sections["d: per-image dice, over seeds"]
    assert [r[0] for r in over.rows] == list(results.augments)  # a row per model and policy, none pooled
    for row in over.rows:
        model, policy = results.augments[row[0]]
        assert row[3:] == [fmt(v.mean()) for v in _values(results, model, policy)]


def _mean_ci_text(paired) -> str:
    d = paired.difference
    return f"{fmt(d.mean)} [{fmt(d.ci_low)}, {fmt(d.ci_high)}]"


def test_what_augmentation_adds_pairs_each_model_under_standard_with_itself_under_none_by_seed_and_image():
    results = study()
    (section,) = augmentation_sections(results, "dice", True)
    assert [(r[0], r[1]) for r in section.rows] == [
        (entry_label(m, "standard"), entry_label(m, "none")) for m in ("unet", "diff-add", "direct")]
    assert section.header[1] == "Without augmentation"
    for row, model in zip(section.rows, ("unet", "diff-add", "direct")):
        differences = _differences(results, (model, "standard"), (model, "none"))
        low, high = _two_level_reference(differences, results.bootstrap_seed("d"), 2000)
        paired = results.paired("d", row[0], "dice", True, against=row[1])
        assert paired.difference.mean == pytest.approx(np.mean([d.mean() for d in differences]), abs=1e-12)
        assert (paired.difference.ci_low, paired.difference.ci_high) == pytest.approx((low, high), abs=1e-12)
        assert row[5] == f"{fmt(paired.difference.mean)} [{fmt(low)}, {fmt(high)}]" and row[6] == "3 seeds"
        assert (row[3], row[4]) == (fmt(np.mean([v.mean() for v in _values(results, model, "standard")])),
                                    fmt(np.mean([v.mean() for v in _values(results, model, "none")])))
    # what diffusion adds stays within a policy too
    (diffusion,) = diffusion_sections(results, "dice", True)
    assert [(r[0], r[1]) for r in diffusion.rows] == [
        (entry_label("diff-add", p), entry_label("direct", p)) for p in ("none", "standard")]


def test_the_report_names_the_policies_and_has_the_augmentation_table():
    text = render_md(study(), {})
    assert "- **Augmentation policies**: none, standard: every model trained under each, compared with the " \
           "baseline trained under the same policy" in text
    assert "| unet (augment none) |" in text and "| unet (augment standard) |" in text
    assert "## d: what augmentation adds, per-image dice, each model against itself trained without augmentation" \
           in text
    plain = StudyResults(Path("."), "s", "unet", {"d": "infection"}, ["unet", "diff-add"], ["dice"],
                         {("d", "unet", None, None): {0: _frame(np.random.default_rng(1), 0.5)},
                          ("d", "diff-add", None, None): {0: _frame(np.random.default_rng(2), 0.6)}})
    plain_text = render_md(plain, {})
    assert "augment" not in plain_text and "## d: against unet (per-image dice" in plain_text


# ---- a tiny run ----

def test_each_policy_runs_and_is_reported_from_its_own_cells(tmp_path):
    text = TOY.replace("seeds = [0, 1]", 'seeds = [0]\naugment = ["none", "standard"]')
    out = tmp_path / "study"
    code, _, stderr = cli("study", "run", str(write(tmp_path, text)), "--out", str(out))
    assert code == 0, stderr
    results = load_study(out)
    assert results.entries == ["toy-cnn (augment none)", "toy-cnn (augment standard)"]
    dice = {}
    for cell in read_study_json(out)["cells"]:
        assert json.loads((Path(cell.request.out) / "config.json").read_text())["plan"]["augment"] == cell.augment
        dice[cell.augment] = pd.read_csv(Path(cell.request.out) / "per_image.csv")["dice"].to_numpy()
    assert not np.array_equal(dice["none"], dice["standard"])  # else a swap could not show
    for policy in ("none", "standard"):
        summary = results.summary("squares", entry_label("toy-cnn", policy), "dice")
        assert summary.seed_means == pytest.approx((dice[policy].mean(),), abs=1e-12)
    paired = results.paired("squares", "toy-cnn (augment standard)", "dice", against="toy-cnn (augment none)")
    assert paired.difference.mean == pytest.approx((dice["standard"] - dice["none"]).mean(), abs=1e-12)
    code, stdout, stderr = cli("report", str(out))
    assert code == 0, stderr
    assert "what augmentation adds" in stdout and "| toy-cnn (augment standard) | toy-cnn (augment none) |" in stdout
