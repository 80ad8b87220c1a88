"""`segbench run` end to end on the toy plugin: run directory, determinism, hooks, reports."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from segbench.results import read_record
from tests import toy_plugin

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet", "--image-size", "32")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from typer.testing import CliRunner

    from segbench import cli

    out = tmp_path_factory.mktemp("runs") / "a"
    toy_plugin.EVENTS.clear()
    result = CliRunner().invoke(cli.app, ["--plugin", "tests.toy_plugin", *RUN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout, list(toy_plugin.EVENTS)


def test_run_directory_layout(first_run):
    out, stdout, _ = first_run
    for name in ("config.json", "per_image.csv", "summary.csv", "report.md", "models.json",
                 "predictions/toy-cnn.npz", "checkpoints/toy-cnn/last.pt"):
        assert (out / name).is_file(), name
    per_image = pd.read_csv(out / "per_image.csv")
    assert list(per_image.columns[:6]) == ["model", "sample_id", "tp", "fp", "fn", "tn"]
    assert {"dice", "jaccard", "mcc", "balanced_accuracy"} <= set(per_image.columns)
    assert len(per_image) == 10 and (per_image[["tp", "fp", "fn", "tn"]].sum(axis=1) == 32 * 32).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["model", "metric", "mean", "ci_low", "ci_high", "pooled", "status"]
    assert (summary["status"] == "done").all()
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()
    assert json.loads((out / "config.json").read_text())["format"] == 2
    record = read_record(out)
    plan = record.plan
    assert plan.model("toy-cnn").training.epochs == 12 and plan.device == "cpu" and record.device_name == "cpu"
    assert plan.model("toy-cnn").hyperparameters == {"width": 8, "noise": 0.5}
    assert plan.preset == "small" and plan.preset_requested == "auto"
    assert plan.precision == "fp32" and plan.precision_requested == "auto"
    assert plan.evaluation.batch_size == 32  # the CPU's default cap, recorded resolved
    assert record.train_samples == 24 and record.eval_samples_used == 10
    with np.load(out / "predictions/toy-cnn.npz", allow_pickle=False) as npz:
        assert npz["probabilities"].dtype == np.float16 and npz["probabilities"].shape == (10, 32, 32)
        assert list(npz["sample_id"]) == list(per_image["sample_id"])
    assert "toy-cnn" in stdout and "Dice" in stdout and str(out) in stdout


def test_a_run_records_the_kernels_that_computed_it(first_run):
    """config.json and the report name the CPU, ATen's kernel path, oneDNN, the BLAS and the threads: what
    decides whether two runs should agree bit for bit."""
    import torch

    out, _, _ = first_run
    kernels = read_record(out).kernels
    assert kernels["aten_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert kernels["cpu_threads"] == str(torch.get_num_threads())
    assert {"cpu", "onednn", "blas"} <= set(kernels)
    report = (out / "report.md").read_text()
    assert f"**Kernels**: {kernels['cpu']}, ATen {kernels['aten_cpu_capability']}, oneDNN {kernels['onednn']}" in report


def test_the_end_of_a_run_is_a_table_with_the_time_and_the_next_command(first_run):
    out, stdout, _ = first_run
    assert "|" not in stdout and "**" not in stdout  # a terminal table, not raw Markdown
    dice = next(line for line in stdout.splitlines() if line.strip().startswith("Dice"))
    summary = pd.read_csv(out / "summary.csv").set_index(["model", "metric"])
    assert f"{summary.loc[('toy-cnn', 'dice'), 'mean']:.4f}" in dice
    assert re.search(r"done in \d+ min \d\d s; results in ", stdout)
    assert f"segbench report {out} --format html --out {out}/report.html" in stdout


def test_model_learns_the_toy_task(first_run):
    summary = pd.read_csv(first_run[0] / "summary.csv").set_index("metric")
    assert summary.loc["dice", "mean"] > 0.6


def test_lifecycle_hooks_are_called_in_order(first_run):
    events = first_run[2]
    names = [e[0] for e in events]
    assert names[0] == "on_run_start" and names[-1] == "on_run_end"
    assert [e[1][1] for e in events if e[0] == "on_epoch_end"] == list(range(1, 13))
    assert names.index("on_evaluation_end") > max(i for i, n in enumerate(names) if n == "on_epoch_end")


def test_same_command_twice_gives_identical_results(first_run, tmp_path, run_cli):
    out = tmp_path / "b"
    code, _, stderr = run_cli(*RUN, "--out", str(out))
    assert code == 0, stderr
    for name in ("per_image.csv", "summary.csv"):
        assert (out / name).read_bytes() == (first_run[0] / name).read_bytes()


@pytest.mark.parametrize("batch", ["1", "7"])
def test_another_batch_shape_moves_probabilities_only_in_rounding(first_run, tmp_path, run_cli, batch):
    """--eval-batch-size is the network's batch shape: another one may change the last bits (here within
    1e-3, the saved float16's resolution), never which samples a sample's result depends on."""
    out = tmp_path / batch
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--eval-batch-size", batch)
    assert code == 0, stderr
    with np.load(out / "predictions/toy-cnn.npz") as a, np.load(first_run[0] / "predictions/toy-cnn.npz") as b:
        difference = np.abs(a["probabilities"].astype(np.float32) - b["probabilities"].astype(np.float32))
    assert difference.max() <= 1e-3


def test_ensemble_stores_uncertainty(tmp_path, run_cli):
    out = tmp_path / "ens"
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--ensemble", "3", "--eval-batch-size", "4")
    assert code == 0, stderr
    with np.load(out / "predictions/toy-cnn.npz", allow_pickle=False) as npz:
        assert npz["uncertainty"].shape == (10, 32, 32) and npz["uncertainty"].max() > 0


def test_a_fused_ensemble_is_recorded_reported_and_evaluated_another_way(tmp_path, run_cli):
    out = tmp_path / "vote"
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--ensemble", "2", "--fusion", "vote", "--eval-batch-size", "4")
    assert code == 0, stderr
    assert json.loads((out / "config.json").read_text())["plan"]["evaluation"]["fusion"] == "vote"
    assert ("**Ensemble size**: 2, fused by majority vote (uncertainty: entropy of the vote fraction)"
            in (out / "report.md").read_text())
    with np.load(out / "predictions/toy-cnn.npz", allow_pickle=False) as npz:
        tie = float(np.nextafter(np.float16(0.5), np.float16(0)))  # stored in float16, still below 0.5
        assert set(np.unique(npz["probabilities"]).tolist()) <= {0.0, tie, 1.0}
    again = tmp_path / "staple"
    code, _, stderr = run_cli("evaluate", str(out), "--fusion", "staple", "--out", str(again), "--quiet")
    assert code == 0, stderr
    assert read_record(again).plan.evaluation.fusion == "staple"
    assert "2, fused by STAPLE, Warfield et al. 2004" in (again / "report.md").read_text()


def test_resume_skips_finished_models(first_run, tmp_path, run_cli):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(first_run[0], out)
    before = (out / "per_image.csv").read_bytes()
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert "already done" in stderr
    assert (out / "per_image.csv").read_bytes() == before


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_report_formats(first_run, run_cli, fmt):
    code, stdout, stderr = run_cli("report", str(first_run[0]), "--format", fmt)
    assert code == 0, stderr
    assert "toy-cnn" in stdout
    if fmt == "latex":
        assert "\\toprule" in stdout and "\\bottomrule" in stdout and "toy-cnn" in stdout
    if fmt == "md":
        assert "Empty-mask policy" in stdout and "| Dice |" in stdout


def test_report_latex_standalone_is_a_document(first_run, run_cli, tmp_path):
    target = tmp_path / "table.tex"
    code, _, stderr = run_cli("report", str(first_run[0]), "--format", "latex", "--standalone", "--out", str(target))
    assert code == 0, stderr
    text = target.read_text()
    assert text.startswith("\\documentclass") and "\\usepackage{booktabs}" in text and text.rstrip().endswith("\\end{document}")


def test_plugin_format_through_register_formats(first_run, run_cli):
    code, stdout, stderr = run_cli("--plugin", "tests.plugin_fixtures.json_format", "report", str(first_run[0]),
                                   "--format", "json")
    assert code == 0, stderr
    rows = json.loads(stdout)
    assert {r["metric"] for r in rows} >= {"dice", "mcc"} and rows[0]["model"] == "toy-cnn"


def test_bf16_precision_is_recorded_and_keeps_the_result(first_run, tmp_path, run_cli):
    """`--precision bf16` on the CPU: the run says so, and Dice stays within 0.02 of the fp32 run's."""
    out = tmp_path / "bf16"
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--precision", "bf16")
    assert code == 0, stderr
    plan = read_record(out).plan
    assert plan.precision == plan.precision_requested == "bf16"
    assert "- **Precision**: bf16 (requested: bf16)\n" in (out / "report.md").read_text()
    dice = [pd.read_csv(run / "summary.csv").set_index("metric").loc["dice", "mean"] for run in (first_run[0], out)]
    assert dice[0] != dice[1] and abs(dice[0] - dice[1]) < 0.02


def test_report_states_compile_accumulation_and_ema(first_run, tmp_path, run_cli):
    """A `--compile` run's report says so, with each model's compile time unless timings are left out;
    models whose training batches were split to fit GPU memory, or whose EMA decay was capped, are named."""
    import shutil

    out = tmp_path / "compiled"
    shutil.copytree(first_run[0], out)
    assert "torch.compile" not in (out / "report.md").read_text()  # a plain run: no line
    config, models = (json.loads((out / f).read_text()) for f in ("config.json", "models.json"))
    (out / "config.json").write_text(json.dumps({**config, "plan": {**config["plan"], "compile": True}}))
    models["toy-cnn"].update(compile_seconds=3.25, accumulation_parts=4, ema_decay_used=0.95499)
    (out / "models.json").write_text(json.dumps(models))
    for timings, line in (("--timings", "- **torch.compile**: on; compiling took 3.2 s (toy-cnn), included in "
                                        "the training time and masks/s\n"),
                          ("--no-timings", "- **torch.compile**: on\n")):
        code, _, stderr = run_cli("report", str(out), timings, "--out", str(tmp_path / f"r{timings}.md"))
        assert code == 0, stderr
        report = (tmp_path / f"r{timings}.md").read_text()
        assert line in report
        assert "- **Gradient accumulation**: toy-cnn: each training batch in 4 micro-batches (GPU memory)\n" in report
        assert "- **EMA decay**: toy-cnn: 0.955 (the preset's, capped so that at most 1 % of the initial " in report


@pytest.mark.slow
def test_compiled_run_records_compile_time_and_keeps_the_result(first_run, tmp_path, run_cli):
    out = tmp_path / "compiled"
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--compile")
    assert code == 0, stderr
    assert read_record(out).plan.compile is True
    assert json.loads((out / "models.json").read_text())["toy-cnn"]["compile_seconds"] > 0
    dice = [pd.read_csv(run / "summary.csv").set_index("metric").loc["dice", "mean"] for run in (first_run[0], out)]
    assert abs(dice[0] - dice[1]) < 0.02


def test_resume_with_another_precision_is_refused(first_run, tmp_path, run_cli):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(first_run[0], out)
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--resume", "--precision", "bf16")
    assert code != 0 and "different settings (precision: \"fp32\" -> \"bf16\")" in stderr


@pytest.mark.parametrize(("change", "named"), [
    (("--seed", "1"), "seed: 0 -> 1"),
    (("--set", "toy-cnn.width=4"), "hyperparameters.toy-cnn.width: 8 -> 4"),
])
def test_resume_with_a_real_change_is_refused_naming_the_key(first_run, tmp_path, run_cli, change, named):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(first_run[0], out)
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--resume", *change)
    assert code == 2 and f"different settings ({named})" in stderr


def test_resume_on_a_folder_without_a_run_starts_it(first_run, tmp_path, run_cli):
    """A requeued job that always passes --resume, killed before it wrote config.json."""
    out = tmp_path / "requeued"
    out.mkdir()
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert "holds no run yet; starting it" in stderr
    assert (out / "per_image.csv").read_bytes() == (first_run[0] / "per_image.csv").read_bytes()
