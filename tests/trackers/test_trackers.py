"""The TensorBoard and MLflow trackers read back with their own readers equal models.json and summary.csv;
results are byte-identical with and without trackers; a missing package, an unreachable server or a
broken tracker is one warning and a finished run; a resumed run appends to the same tracker runs; the
on_train_step and register_trackers hooks."""

from __future__ import annotations

import builtins
import json
import socket
import time

import pandas as pd
import pytest

from segbench.plan.run_plan import as_json
from segbench.results import read_models, read_record
from tests.plugin_fixtures import step_recorder

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet", "--image-size", "32",
       "--epochs", "2")
TOTAL_STEPS = 12  # 2 epochs of the toy's 24 training images at batch 4
COMPARED = ["per_image.csv", "summary.csv", "predictions/toy-cnn.npz", "predictions/_reference.npz"]


def _invoke(*args: str):
    from typer.testing import CliRunner

    from segbench import cli

    return CliRunner().invoke(cli.app, ["--plugin", "tests.toy_plugin", *args])


@pytest.fixture(scope="module")
def installed() -> None:
    """The trackers' packages (`segbench[tensorboard,mlflow]`, in the dev extra)."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def runs(installed, tmp_path_factory):
    """(tracked run, untracked run): the same toy run with --track tensorboard,mlflow and without."""
    root = tmp_path_factory.mktemp("tracked")
    for name, track in (("tracked", ("--track", "tensorboard,mlflow")), ("plain", ())):
        result = _invoke(*RUN, "--out", str(root / name), *track)
        assert result.exit_code == 0, result.output
        assert _tracker_warnings(result.stderr) == [], result.stderr
    return root / "tracked", root / "plain"


def _tracker_warnings(stderr: str) -> list[str]:
    """The warning lines, but the one every toy run gives (its 10 test images are too few for a CI)."""
    return [line for line in stderr.splitlines() if "warning" in line and "evaluated images" not in line]


def _scalars(folder, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar, through tensorboard's own event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _mlflow(run_dir):
    """(client, parent run id, child run id of toy-cnn) from the run's own SQLite store and runs.json."""
    from mlflow.tracking import MlflowClient

    ids = json.loads((run_dir / "mlflow/runs.json").read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir / 'mlflow/mlflow.db').resolve()}")
    return client, ids["run"], ids["models"]["toy-cnn"]


def _summary(run_dir) -> dict[str, float]:
    """summary.csv as the trackers name its numbers: eval/<metric> (the mean) and eval/<metric>_<part>."""
    rows = pd.read_csv(run_dir / "summary.csv")
    names = {"mean": ""} | {part: f"_{part}" for part in ("ci_low", "ci_high", "pooled")}
    return {f"eval/{row.metric}{suffix}": float(getattr(row, part)) for row in rows.itertuples()
            for part, suffix in names.items()}


def test_results_are_byte_identical_with_and_without_trackers(runs):
    tracked, plain = runs
    assert [n for n in COMPARED if (tracked / n).read_bytes() != (plain / n).read_bytes()] == []
    assert read_record(tracked).plan.track == ("tensorboard", "mlflow") and read_record(plain).plan.track == ()


def test_tensorboard_scalars_equal_models_json_and_summary_csv(runs):
    tracked, _ = runs
    folder = tracked / "tensorboard/toy-cnn"
    losses = read_models(tracked)["toy-cnn"].losses
    assert [s for s, _ in _scalars(folder, "train/loss")] == list(range(1, TOTAL_STEPS + 1))
    assert len(_scalars(folder, "train/lr")) == TOTAL_STEPS
    epochs = _scalars(folder, "epoch/loss")
    assert [s for s, _ in epochs] == [6, 12]
    assert [v for _, v in epochs] == pytest.approx(losses, rel=1e-6)  # TensorBoard keeps float32
    # an epoch's loss is the mean of its steps' losses
    steps = [v for _, v in _scalars(folder, "train/loss")]
    assert [sum(steps[:6]) / 6, sum(steps[6:]) / 6] == pytest.approx(losses, rel=1e-5)
    expected = _summary(tracked)
    logged = {tag: _scalars(folder, tag) for tag in expected}
    assert {tag: values[0][1] for tag, values in logged.items()} == pytest.approx(expected, rel=1e-6, nan_ok=True)
    assert {values[0][0] for values in logged.values()} == {TOTAL_STEPS}

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    report = EventAccumulator(str(tracked / "tensorboard/report"), size_guidance={"images": 0})
    report.Reload()
    assert {"figures/qualitative", "figures/losses"} <= set(report.Tags()["images"])
    assert report.Images("figures/qualitative")[0].width > 100


def test_mlflow_params_and_metrics_equal_config_models_and_summary(runs):
    tracked, _ = runs
    client, parent, child = _mlflow(tracked)
    config = json.loads((tracked / "config.json").read_text())["plan"]
    model = next(m for m in config["models"] if m["name"] == "toy-cnn")
    written = {**model["hyperparameters"], **model["training"]}
    assert client.get_run(child).data.params == {k: v if isinstance(v, str) else json.dumps(v) for k, v in written.items()}
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    params = client.get_run(parent).data.params
    assert (params["task"], params["seed"], params["models"]) == ("lung", "0", "toy-cnn")
    history = {key: client.get_metric_history(child, key) for key in ("train/loss", "train/lr", "epoch/loss")}
    assert [m.step for m in history["train/loss"]] == list(range(1, TOTAL_STEPS + 1))
    assert len(history["train/lr"]) == TOTAL_STEPS
    assert [(m.step, m.value) for m in history["epoch/loss"]] == list(zip([6, 12], read_models(tracked)["toy-cnn"].losses))
    metrics = client.get_run(child).data.metrics
    assert {k: metrics[k] for k in _summary(tracked)} == pytest.approx(_summary(tracked), rel=1e-9, nan_ok=True)
    assert client.get_run(child).info.status == client.get_run(parent).info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(parent)} | {a.path for a in client.list_artifacts(parent, "figures")}
    assert {"report.md", "summary.csv", "config.json", "models.json", "figures/qualitative.png"} <= artifacts
    assert as_json(config)["track"] == ["tensorboard", "mlflow"]


@pytest.mark.parametrize(("tracker", "module"), [("tensorboard", "torch.utils.tensorboard"), ("mlflow", "mlflow")])
def test_a_missing_package_is_one_warning_and_the_run_finishes(tmp_path, monkeypatch, tracker, module):
    real_import = builtins.__import__

    def without(name, *args, **kwargs):
        if name == module or name.startswith(f"{module}."):
            raise ModuleNotFoundError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    result = _invoke(*RUN, "--out", str(tmp_path / "run"), "--track", tracker)
    assert result.exit_code == 0, result.output
    warnings = _tracker_warnings(result.stderr)
    assert warnings == [f"warning: tracker {tracker!r} needs a package that is not installed (ModuleNotFoundError: "
                        f"No module named {module!r}): pip install 'segbench[{tracker}]'; the run goes on without it "
                        "(segbench's own files are the record)"]
    assert read_models(tmp_path / "run")["toy-cnn"].done and (tmp_path / "run/report.md").is_file()


def test_an_unreachable_tracking_server_is_one_warning_and_the_run_finishes(installed, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a localhost port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(key, "")  # recorded, so the tracker's own defaults are undone after the test
        monkeypatch.delenv(key)
    result = _invoke(*RUN, "--out", str(tmp_path / "run"), "--track", "mlflow,tensorboard")
    assert result.exit_code == 0, result.output
    warnings = _tracker_warnings(result.stderr)
    assert len(warnings) == 1 and warnings[0].startswith("warning: tracker 'mlflow' could not start (MlflowException: ")
    assert f"127.0.0.1:{port}" in warnings[0] and warnings[0].endswith("the run goes on without it "
                                                                       "(segbench's own files are the record)")
    assert read_models(tmp_path / "run")["toy-cnn"].done
    assert len(_scalars(tmp_path / "run/tensorboard/toy-cnn", "train/loss")) == TOTAL_STEPS  # the other tracker went on


def test_a_tracker_failing_during_the_run_is_one_warning_and_is_turned_off(installed, tmp_path, monkeypatch):
    from segbench_trackers.tensorboard_tracker import TensorBoardTracker

    calls = []

    def broken(self, model, step):
        calls.append(step.done)
        raise OSError("disk full on purpose")

    monkeypatch.setattr(TensorBoardTracker, "train_step", broken)
    result = _invoke(*RUN, "--out", str(tmp_path / "run"), "--track", "tensorboard")
    assert result.exit_code == 0, result.output
    assert _tracker_warnings(result.stderr) == [
        "warning: tracker 'tensorboard' failed (OSError: disk full on purpose); the run goes on without it "
        "(segbench's own files are the record)"]
    assert calls == [1] and read_models(tmp_path / "run")["toy-cnn"].done


@pytest.mark.parametrize(("kill_at", "checkpoints"), [
    pytest.param(7, (), id="first-step-of-epoch-2"),
    pytest.param(9, ("--checkpoint-every", "0"), id="inside-epoch-2", marks=pytest.mark.slow),
])
def test_a_resumed_run_appends_to_the_same_tracker_runs_each_step_once(installed, tmp_path, kill_at, checkpoints):
    """Killed as training step `kill_at` starts, then --resume: the same MLflow runs, each step once in
    MLflow and TensorBoard, epoch losses equal models.json. Killed inside an epoch after a mid-epoch
    checkpoint, MLflow may miss the steps it had not sent since the epoch began (and only those)."""
    from tests.reliability.conftest import cli, killed_run

    out = tmp_path / "run"
    args = (*RUN, "--out", str(out), *checkpoints, "--track", "tensorboard,mlflow")
    killed = killed_run("train", kill_at, *args)
    assert killed.returncode == -9, killed.stderr
    before = json.loads((out / "mlflow/runs.json").read_text())
    # TensorBoard reads a folder's event files in name order, and a name starts with its creation second:
    # an in-process resume could open its file in the killed run's second (a new process takes longer)
    time.sleep(1.0)
    code, _, stderr = cli(*args, "--resume")
    assert code == 0 and _tracker_warnings(stderr) == [], stderr
    assert json.loads((out / "mlflow/runs.json").read_text()) == before
    client, parent, child = _mlflow(out)
    experiment = client.get_run(parent).info.experiment_id
    assert {r.info.run_id for r in client.search_runs([experiment])} == {parent, child}
    assert [m.value for m in client.get_metric_history(child, "epoch/loss")] == read_models(out)["toy-cnn"].losses
    tensorboard = dict(_scalars(out / "tensorboard/toy-cnn", "train/loss"))
    assert sorted(tensorboard) == list(range(1, TOTAL_STEPS + 1)) and len(_scalars(out / "tensorboard/toy-cnn",
                                                                                    "train/loss")) == TOTAL_STEPS
    steps = [(m.step, m.value) for m in client.get_metric_history(child, "train/loss")]
    assert sorted(s for s, _ in steps) == sorted({s for s, _ in steps})  # none twice
    missing = set(range(1, TOTAL_STEPS + 1)) - {s for s, _ in steps}
    assert missing <= set(range(7, kill_at))  # the resumed run trains again from step kill_at
    assert all(value == pytest.approx(tensorboard[step], rel=1e-6) for step, value in steps)


def test_on_train_step_and_register_trackers_serve_a_third_party_tracker(run_cli, tmp_path):
    """A plugin's register_trackers makes --track accept its name; its on_train_step sees every step with
    the loss and learning rate the run trained with."""
    step_recorder.STEPS.clear()
    plugin = ("--plugin", "tests.plugin_fixtures.step_recorder")
    code, _, stderr = run_cli(*plugin, *RUN, "--out", str(tmp_path / "run"), "--track", "recorder")
    assert code == 0, stderr
    steps = [step for name, step in step_recorder.STEPS if name == "toy-cnn"]
    assert [s.done for s in steps] == list(range(1, TOTAL_STEPS + 1)) and {s.total for s in steps} == {TOTAL_STEPS}
    assert [(s.epoch, s.step) for s in steps[5:7]] == [(0, 5), (1, 0)]
    losses = read_models(tmp_path / "run")["toy-cnn"].losses
    assert [sum(s.loss for s in steps[:6]) / 6, sum(s.loss for s in steps[6:]) / 6] == pytest.approx(losses, rel=1e-12)
    assert steps[0].lr == 0.03 > steps[-1].lr  # the toy's lr, then the cosine decay
    code, stdout, _ = run_cli(*plugin, "list", "trackers")
    assert code == 0 and all(name in stdout for name in ("recorder", "tensorboard", "mlflow"))


def test_an_unknown_tracker_is_one_line_naming_the_valid_ones(run_cli, tmp_path):
    code, _, stderr = run_cli(*RUN, "--out", str(tmp_path / "run"), "--track", "tensorbord")
    assert code == 2 and stderr == "error: unknown tracker 'tensorbord'; did you mean 'tensorboard'? valid: mlflow, tensorboard\n"
    assert not (tmp_path / "run").exists()


def test_resume_with_other_trackers_is_allowed(runs, tmp_path, run_cli):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(runs[1], out)
    code, _, stderr = run_cli(*RUN, "--out", str(out), "--resume", "--track", "tensorboard")
    assert code == 0 and "already done" in stderr, stderr
    assert read_record(out).plan.track == ("tensorboard",)


def test_a_study_file_turns_trackers_on_for_every_cell(tmp_path, registry):
    from segbench.errors import SegbenchError
    from segbench.study.grid import expand
    from segbench.study.schema import read_study

    study = tmp_path / "s.toml"
    study.write_text('seeds = [0, 1]\ntrack = ["tensorboard"]\n[datasets.toy]\ndataset = "toy"\ntask = "lung"\n'
                     '[models]\ntoy-cnn = {}\n')
    cells = expand(read_study(study), registry, tmp_path / "study")
    assert [c.request.track for c in cells] == [["tensorboard"], ["tensorboard"]]
    study.write_text(study.read_text().replace('track = ["tensorboard"]', 'track = "tensorboard"'))
    with pytest.raises(SegbenchError, match=r"track \(line 2\): must be a list of tracker names"):
        read_study(study)
