"""`--data-root kaggle:OWNER/DATASET`: downloaded once per plan through kagglehub (here a fake one, whose
download is the tiny copy of the Kaggle COVID-QU-Ex layout: no network), read, recorded as handle and folder;
without kagglehub, or when the download fails, one line and nothing written."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from segbench.data import kaggle
from segbench.plan.build import evaluated_data
from segbench.plan.run_plan import DataPlan
from segbench.study.run import plan_study
from tests.datasets.test_covid_qu_ex import INFECTION_SET, root  # noqa: F401 - root: the Kaggle layout fixture
from tests.study.conftest import TOY, write

HANDLE = "kaggle:anasmohammedtahir/covidqu"
RUN = ("run", "--task", "infection", "--dataset", "covid-qu-ex", "--models", "toy-cnn", "--preset", "tiny",
       "--epochs", "1", "--image-size", "16", "--quiet")


@pytest.fixture(autouse=True)
def _forget_downloads():
    kaggle.download.cache_clear()
    yield
    kaggle.download.cache_clear()


def fake_kagglehub(monkeypatch: pytest.MonkeyPatch, download) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=download))


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:  # noqa: F811
    """The handles the fake kagglehub was asked for; each download is `root`."""
    calls: list[str] = []

    def dataset_download(handle: str) -> str:
        calls.append(handle)
        return str(root)

    fake_kagglehub(monkeypatch, dataset_download)
    return calls


def test_a_run_reads_the_download_and_records_both(run_cli, downloads, root, tmp_path) -> None:  # noqa: F811
    out = tmp_path / "run"
    code, _, stderr = run_cli(*RUN, "--data-root", HANDLE, "--out", str(out))
    assert code == 0, stderr
    assert downloads == ["anasmohammedtahir/covidqu"]
    data = json.loads((out / "config.json").read_text())["plan"]["data"]
    assert data["root"] == str(root) and data["downloaded_from"] == HANDLE
    ids = pd.read_csv(out / "per_image.csv")["sample_id"]
    assert len(ids) == 5 and all(i.startswith(f"{INFECTION_SET}/Test/") for i in ids)


def test_a_study_downloads_once_and_keeps_the_handle(downloads, registry, tmp_path) -> None:
    text = TOY.replace('dataset = "toy"\ntask = "lung"', f'dataset = "covid-qu-ex"\ntask = "lung"\nroot = "{HANDLE}"')
    plan = plan_study(write(tmp_path, text), str(tmp_path / "s"), registry)
    assert [cell.request.data_root for cell in plan.cells] == [HANDLE, HANDLE]  # each cell's run downloads it
    assert downloads == ["anasmohammedtahir/covidqu"]  # two seeds, each planned: one download per process


def test_evaluation_data_and_datasets_without_files(downloads, root, registry) -> None:  # noqa: F811
    trained = DataPlan("toy", "infection", None, 16, None)
    evaluated = evaluated_data(trained, "test", registry, "covid-qu-ex", HANDLE)
    assert evaluated.root == str(root.resolve()) and evaluated.downloaded_from == HANDLE
    folder = evaluated_data(evaluated, "all", registry, "folder", str(root))
    assert folder.downloaded_from is None
    kaggle.download.cache_clear()
    assert evaluated_data(trained, "test", registry, "toy", HANDLE) == trained  # the toy reads no files
    assert downloads == ["anasmohammedtahir/covidqu"]


def _refused(run_cli, tmp_path: Path, root_option: str) -> str:
    out = tmp_path / "run"
    code, _, stderr = run_cli(*RUN, "--data-root", root_option, "--out", str(out))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert not out.exists()
    return lines[0]


def test_without_kagglehub_the_error_names_the_extra(run_cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # `import kagglehub` raises ImportError
    assert "pip install 'segbench[kaggle]'" in _refused(run_cli, tmp_path, HANDLE)


def test_a_failed_download_is_one_line_and_writes_nothing(run_cli, monkeypatch, tmp_path) -> None:
    def offline(handle: str) -> str:
        raise ConnectionError("Max retries exceeded with url: /api/v1/datasets\n(Caused by NameResolutionError)")

    fake_kagglehub(monkeypatch, offline)
    line = _refused(run_cli, tmp_path, HANDLE)
    assert line.endswith(f"--data-root {HANDLE}: the Kaggle download failed: Max retries exceeded with url: "
                         "/api/v1/datasets"), line


def test_a_malformed_handle_is_refused_before_any_download(run_cli, downloads, tmp_path) -> None:
    assert "kaggle:OWNER/DATASET" in _refused(run_cli, tmp_path, "kaggle:covidqu")
    assert downloads == []
