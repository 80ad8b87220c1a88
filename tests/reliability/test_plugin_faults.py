"""Issue point 6: a plugin that raises on import, on registration, in a hook, or inside a model's
training_loss/predict is named in the error; the CLI and the other models keep working."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.reliability.conftest import cli

RUN = ("run", "--task", "lung", "--dataset", "toy", "--quiet", "--image-size", "32", "--epochs", "2")
BROKEN = {
    "tests.plugin_fixtures.broken_import": "ImportError: this plugin is broken on purpose",
    "tests.plugin_fixtures.broken_register": "register_models: RuntimeError: registration broken on purpose",
}


@pytest.mark.parametrize("module", list(BROKEN))
def test_broken_plugin_is_named_and_runs_still_work(tmp_path, module):
    code, stdout, stderr = cli("--plugin", module, *RUN, "--models", "toy-cnn", "--out", str(tmp_path / "run"))
    assert code == 0, stderr
    assert f"warning: plugin '{module}' failed: {BROKEN[module]} (see `segbench plugins`)" in " ".join(stderr.split())
    assert json.loads((tmp_path / "run/models.json").read_text())["toy-cnn"]["status"] == "done"


def test_plugins_command_lists_failures_and_why():
    code, stdout, _ = cli(*(a for m in BROKEN for a in ("--plugin", m)), "plugins")
    assert code == 0
    flat = " ".join(stdout.split())
    for module, error in BROKEN.items():
        assert f"{module}: {error}" in flat
    assert "tests.toy_plugin" in flat and "ok" in flat


@pytest.mark.parametrize(("fault", "error"), [
    ("raise_train", "ValueError: training_loss broken on purpose"),
    ("raise_predict", "ValueError: predict broken on purpose"),
])
def test_model_that_raises_is_named_with_its_plugin_and_others_finish(tmp_path, fault, error):
    out = tmp_path / "run"
    code, _, stderr = cli(*RUN, "--models", "faulty-cnn,toy-cnn", "--out", str(out), "--set", f"faulty-cnn.fault={fault}")
    assert code == 0, stderr
    expected = f"plugin 'tests.reliability.faulty_plugin' raised {error}"
    assert f"model faulty-cnn failed: {expected}; the run goes on" in " ".join(stderr.split())
    models = json.loads((out / "models.json").read_text())
    assert models["faulty-cnn"] == {**models["faulty-cnn"], "status": "failed", "error": expected}
    assert models["toy-cnn"]["status"] == "done"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert set(summary[summary["model"] == "faulty-cnn"]["status"]) == {f"failed: {expected}"}
    assert f"failed: {expected}" in (out / "report.md").read_text()
    code, stdout, stderr = cli("report", str(out), "--format", "md")  # the report of a run with a failure works
    assert code == 0 and "toy-cnn" in stdout, stderr


def test_raising_hooks_are_named_and_the_run_completes(tmp_path):
    code, _, stderr = cli("--plugin", "tests.reliability.broken_hooks", *RUN, "--models", "toy-cnn",
                          "--out", str(tmp_path / "run"))
    assert code == 0, stderr
    flat = " ".join(stderr.split())
    assert "warning: plugin 'tests.reliability.broken_hooks' failed in on_epoch_end: logger broken on purpose" in flat
    assert "warning: plugin 'tests.reliability.broken_hooks' failed in on_run_end" in flat
    assert (tmp_path / "run/report.md").is_file()


def test_model_whose_factory_raises_is_named_with_its_plugin(tmp_path):
    code, _, stderr = cli("--plugin", "tests.reliability.broken_hooks", *RUN, "--models", "toy-cnn,unbuildable",
                          "--out", str(tmp_path / "run"))
    assert code == 2
    assert ("error: model 'unbuildable' (plugin 'tests.reliability.broken_hooks') failed to build: "
            "ZeroDivisionError: factory broken on purpose") in stderr
    code, stdout, _ = cli("--plugin", "tests.reliability.broken_hooks", "list", "models")
    assert code == 0 and "unbuildable" in stdout and "toy-cnn" in stdout
