"""Study files: a valid one is read into types; every problem is one clear line naming the key (and line)."""

from __future__ import annotations

import pytest

from segbench.errors import SegbenchError
from segbench.study.schema import read_study
from tests.reliability.conftest import cli
from tests.study.conftest import TOY, write


def test_a_study_file_is_read_into_types(tmp_path):
    study = read_study(write(tmp_path, TOY + """
diff-add-ddim50 = { model = "diff-add", set = { sampling_steps = 50, clip_x0 = false, channel_mult = [1, 2] } }

[folds]
k = 3

[evaluations.big]
models = ["toy-cnn"]
ensemble = 4
fusion = "staple"
threshold = 0.4
set = { width = 8 }

[executor]
name = "local"
workers = 2
"""))
    assert study.name == "toy" and study.seeds == (0, 1) and study.baseline == "toy-cnn"
    assert study.options == {"preset": "tiny", "image_size": 32, "ensemble": 2, "eval_batch_size": 3}
    assert [(d.label, d.dataset, d.task) for d in study.datasets] == [("squares", "toy", "lung")]
    ddim = study.models[1]
    assert (ddim.label, ddim.model) == ("diff-add-ddim50", "diff-add")
    assert ddim.sets == {"sampling_steps": "50", "clip_x0": "false", "channel_mult": "1,2"}
    assert study.folds == (3, 0)
    variant = study.variants[0]
    assert (variant.name, variant.models, variant.ensemble, variant.fusion, variant.threshold, variant.sets) == \
        ("big", ("toy-cnn",), 4, "staple", 0.4, {"width": "8"})
    assert study.executor == {"name": "local", "workers": 2}


@pytest.mark.parametrize(("text", "message"), [
    ("seeds = [0]\nnope = 1\n", "nope (line 2): unknown key; valid: name, seeds,"),
    ("seeds = []\n", "seeds (line 1): must be a non-empty list of integers"),
    ("seeds = [0, 0]\n", "seeds (line 1): lists a seed twice"),
    ("seeds = [0]\n[models]\nunet = {}\n", "datasets: needs at least one dataset"),
    ("seeds = [0]\n[datasets.a]\ndataset = 'toy'\n", "datasets.a (line 2): needs a task"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\n", "models: needs at least one model"),
    ("seeds = [0]\nepochs = 'ten'\n[datasets.a]\ntask = 'lung'\n[models]\nunet = {}\n",
     "epochs (line 2): must be an integer, got 'ten'"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\nsize = 3\n[models]\nunet = {}\n",
     "datasets.a.size (line 4): unknown key; valid: dataset, task, root, image_size, mask_threshold"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\n[models]\nunet = { set = { lr = {} } }\n",
     "models.unet.set.lr (line 5): must be a number, text, true/false or a list of numbers"),
    ("seeds = [0]\nbaseline = 'x'\n[datasets.a]\ntask = 'lung'\n[models]\nunet = {}\n",
     "baseline (line 2): is not one of the study's models; valid: unet"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\n[models]\nunet = {}\n[folds]\nk = 1\n", "folds.k (line 7): must be at least 2"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\n[models]\nunet = {}\n[evaluations.e]\nmodels = ['dd']\n",
     "evaluations.e.models (line 7): names 'dd', not a model of the study; valid: unet"),
    ("seeds = [0]\n[datasets.a]\ntask = 'lung'\n[models]\nunet = {}\n[evaluations.e]\nthreshold = 2\n",
     "evaluations.e.threshold (line 7): must be in (0, 1], got 2"),
    ("seeds = [0\n", "is not valid TOML: "),
])
def test_a_bad_study_file_is_one_clear_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SegbenchError) as error:
        read_study(path)
    assert message in str(error.value) and str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("extra", "message"), [
    ("nope-model = {}\n", "datasets.squares x models.nope-model: unknown model 'nope-model'; valid:"),
    ("bad-set = { model = \"toy-cnn\", set = { depth = 3 } }\n", "toy-cnn has no hyperparameter 'depth'"),
])
def test_unknown_models_and_settings_name_the_study_key(tmp_path, extra, message):
    code, _, stderr = cli("study", "plan", str(write(tmp_path, TOY + extra)), "--out", str(tmp_path / "s"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1


def test_an_unknown_dataset_and_a_missing_data_root_are_one_line(tmp_path):
    text = TOY.replace('dataset = "toy"', 'dataset = "nope"')
    code, _, stderr = cli("study", "plan", str(write(tmp_path, text)), "--out", str(tmp_path / "s"))
    assert code == 2 and "unknown dataset 'nope'" in stderr
    text = TOY.replace('dataset = "toy"', 'dataset = "folder"\nroot = "/no/such/folder"')
    code, _, stderr = cli("study", "plan", str(write(tmp_path, text)), "--out", str(tmp_path / "s"))
    assert code == 2 and "--data-root /no/such/folder is not a folder" in stderr


def test_an_executor_that_is_not_installed_or_unknown_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    path = write(tmp_path, TOY)
    code, _, stderr = cli("study", "run", str(path), "--out", str(tmp_path / "s"), "--executor", "submitit")
    assert code == 2 and "needs the Python package 'submitit'" in stderr and "segbench[submitit]" in stderr
    code, _, stderr = cli("study", "run", str(path), "--out", str(tmp_path / "s"), "--executor", "ray")
    assert code == 2 and "unknown executor 'ray'; valid: local, submitit" in stderr


@pytest.mark.parametrize(("evaluation", "message"), [
    ('dataset = "nope"', "evaluations.far x datasets.squares: unknown dataset 'nope'"),
    ('dataset = "folder"', "evaluations.far x datasets.squares: dataset 'folder' needs --data-root"),
    ('split = "val"', "evaluations.far x datasets.squares: unknown --split 'val'"),
])
def test_a_variant_on_data_the_run_cannot_evaluate_names_its_key(tmp_path, evaluation, message):
    study = write(tmp_path, TOY + f"\n[evaluations.far]\n{evaluation}\n")
    code, _, stderr = cli("study", "plan", str(study), "--out", str(tmp_path / "s"))
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
