"""The plugin example of docs/plugins.md, copied verbatim into a new folder, runs both ways: as a module in the
current folder (and by its path), and by its entry point after `pip install`; and its model learns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import repo_root

SEGBENCH = Path(sys.executable).with_name("segbench")  # the console script, which does not add the cwd to sys.path


def _docs_block(language: str, first_line: str) -> str:
    page = (repo_root() / "docs" / "plugins.md").read_text()
    for block in re.findall(rf"```{language}\n(.*?)```", page, re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"docs/plugins.md has no {language} block starting {first_line!r}")


def _segbench(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SEGBENCH), *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "my_plugin.py").write_text(_docs_block("python", "# my_plugin.py"))
    return tmp_path


def test_the_example_loads_from_the_current_folder_and_by_its_path(folder):
    for plugin, cwd in (("my_plugin", folder), (str(folder / "my_plugin.py"), folder.parent)):
        done = _segbench(cwd, "--plugin", plugin, "list", "models")
        assert done.returncode == 0 and "dilated-cnn" in done.stdout and "warning" not in done.stderr, done.stderr
    done = _segbench(folder, "list", "models", env={"SEGBENCH_PLUGINS": "my_plugin"})
    assert done.returncode == 0 and "dilated-cnn" in done.stdout, done.stderr


def test_a_named_plugin_that_is_not_there_is_one_line(tmp_path):
    done = _segbench(tmp_path, "--plugin", "my_plugin", "run", "--task", "lung", "--models", "dilated-cnn")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: plugin 'my_plugin' not found") and "my_plugin.py" in done.stderr
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_the_example_learns_phantom_lungs(folder):
    done = _segbench(folder, "--plugin", "my_plugin", "run", "--task", "lung", "--models", "dilated-cnn",
                     "--preset", "small", "--device", "cpu", "--quiet", "--out", "run")
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(folder / "run/summary.csv").set_index(["model", "metric"])
    assert summary.loc[("dilated-cnn", "dice"), "mean"] >= 0.8


@pytest.mark.slow
def test_the_example_installed_by_its_entry_point_is_loaded_once(folder, tmp_path_factory):
    entry_point = _docs_block("toml", "[project.entry-points.segbench]")
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "my-plugin"\nversion = "0.1"\n\n[tool.setuptools]\npy-modules = ["my_plugin"]\n\n'
        + entry_point)
    target = tmp_path_factory.mktemp("site")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(target), str(folder)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = {"PYTHONPATH": str(target)}
    listed = _segbench(elsewhere, "list", "models", env=env)
    assert listed.returncode == 0 and "dilated-cnn" in listed.stdout, listed.stderr
    both = _segbench(elsewhere, "--plugin", "my_plugin", "plugins", env=env)  # entry point and --plugin
    assert both.returncode == 0 and "Traceback" not in both.stderr and "ValueError" not in both.stderr, both.stderr
    plugins = [line.split()[0] for line in both.stdout.splitlines()[1:]]
    assert "dilated_cnn" in plugins and "my_plugin" not in plugins and "failed" not in both.stdout, both.stdout
    models = _segbench(elsewhere, "--plugin", "my_plugin", "list", "models", env=env)
    assert models.returncode == 0 and models.stdout.count("dilated-cnn") == 1, models.stderr
