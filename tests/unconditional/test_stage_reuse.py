"""A stored DDPM stage is reused by ddpm-features under other feature blocks, whose pixel MLPs have another
shape: only the part the stage trained comes from the store, and the run has a fresh run's bytes."""

from __future__ import annotations

import pytest

from segbench.results import read_models

RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", "ddpm-features", "--preset", "tiny",
       "--image-size", "32", "--labels", "4", "--quiet", "--eval-batch-size", "8")
INDICES = ("--set", "ddpm-features.feature_blocks=1,2,3,4")  # 4 blocks: MLPs of another input width than the default's
RESULTS = ("per_image.csv", "summary.csv", "predictions/ddpm-features.npz")


@pytest.mark.slow  # three tiny ddpm-features runs, about a minute on 2 idle cores
def test_a_stored_ddpm_is_reused_under_other_feature_blocks_with_a_fresh_runs_bytes(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "cache"))
    code, _, stderr = run_cli(*RUN, "--out", str(tmp_path / "scales"))
    assert code == 0, stderr
    code, _, stderr = run_cli(*RUN, *INDICES, "--out", str(tmp_path / "reused"))
    assert code == 0, stderr
    reused = read_models(tmp_path / "reused")["ddpm-features"]
    assert reused.done and reused.stages[0].reused_from and not reused.stages[1].reused_from
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "fresh-cache"))
    code, _, stderr = run_cli(*RUN, *INDICES, "--out", str(tmp_path / "fresh"))
    assert code == 0, stderr
    assert not read_models(tmp_path / "fresh")["ddpm-features"].stages[0].reused_from
    assert all((tmp_path / "fresh" / name).read_bytes() == (tmp_path / "reused" / name).read_bytes() for name in RESULTS)
