"""Every bad input gets one clear line naming the problem and the valid choices, and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BASE = ("run", "--task", "lung", "--dataset", "toy", "--quiet", "--image-size", "32")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((*BASE, "--models", "nope"), ["unknown model 'nope'", "toy-cnn", "unet"]),
        (("run", "--task", "lung", "--dataset", "nope", "--models", "toy-cnn"), ["unknown dataset 'nope'", "cxr-phantom"]),
        (("run", "--task", "kidney", "--dataset", "toy", "--models", "toy-cnn"), ["does not serve task 'kidney'", "lung, infection"]),
        ((*BASE, "--models", "toy-cnn", "--eval-samples", "0"), ["--eval-samples must be at least 1"]),
        ((*BASE, "--models", "toy-cnn", "--ensemble", "0"), ["--ensemble must be at least 1"]),
        ((*BASE, "--models", "toy-cnn", "--eval-batch-size", "0"), ["--eval-batch-size must be at least 1"]),
        ((*BASE, "--models", "toy-cnn", "--fusion", "majority"), ["unknown --fusion rule 'majority'", "mean, paper, staple, vote"]),
        ((*BASE, "--models", "toy-cnn", "--fusion", "vote"), ["--fusion vote fuses an ensemble", "--ensemble K with K >= 2"]),
        ((*BASE, "--models", "toy-cnn", "--preset", "huge"), ["unknown preset 'huge'", "auto, tiny, small, paper"]),
        ((*BASE, "--models", "toy-cnn", "--device", "tpu"), ["unknown device 'tpu'", "auto, cpu, cuda, mps"]),
        ((*BASE, "--models", "toy-cnn", "--device", "cpu:1"), ["unknown device 'cpu:1'", "auto, cpu"]),
        ((*BASE, "--models", "toy-cnn", "--precision", "fp16"), ["unknown precision 'fp16'", "auto, fp32, bf16"]),
        ((*BASE, "--models", "toy-cnn", "--set", "toy-cnn.depth=3"), ["no hyperparameter 'depth'", "width"]),
        ((*BASE, "--models", "toy-cnn", "--set", "toy-cnn.width=wide"), ["toy-cnn.width='wide'", "expected a value like 8"]),
        ((*BASE, "--models", "toy-cnn", "--set", "unet.lr=1"), ["names model 'unet'", "not in --models"]),
        ((*BASE, "--models", "toy-cnn", "--set", "nodot"), ["MODEL.KEY=VALUE"]),
        ((*BASE, "--models", "toy-cnn,toy-cnn"), ["lists a model twice"]),
        (("run", "--task", "lung", "--dataset", "folder", "--models", "toy-cnn"), ["needs --data-root"]),
        (("run", "--task", "lung", "--dataset", "folder", "--data-root", "/no/such/dir", "--models", "toy-cnn"),
         ["--data-root /no/such/dir is not a folder"]),
        (("list", "things"), ["unknown list kind 'things'", "datasets, formats, metrics, models"]),
        (("info", "nope"), ["unknown model 'nope'"]),
        (("report", "/no/such/run"), ["/no/such/run is not a segbench run directory"]),
    ],
)
def test_bad_input_one_clear_line(run_cli, args, expected):
    code, _, stderr = run_cli(*args)
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])


def test_unwritable_out(run_cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions; a file in the way works for everyone
        locked = tmp_path / "file"
        locked.write_text("")
    code, _, stderr = run_cli(*BASE, "--models", "toy-cnn", "--out", str(locked / "run"))
    assert code == 2 and "is not writable" in stderr or "cannot write" in stderr, stderr


def test_existing_run_needs_resume(run_cli, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    code, _, stderr = run_cli(*BASE, "--models", "toy-cnn", "--out", str(out))
    assert code == 2 and "already holds a run" in stderr and "--resume" in stderr


def test_console_script_prints_no_traceback(tmp_path):
    """Through the real entry point: one line on stderr, exit 2, no 'Traceback'."""
    result = subprocess.run(
        [sys.executable, "-c", "from segbench.cli import main; main()", "run", "--task", "lung", "--models", "nope"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "SEGBENCH_CACHE": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: unknown model 'nope'")


@pytest.mark.parametrize(("args", "expected"), [
    (("run", "--tsk", "lung"), "error: No such option: --tsk (Possible options: --set, --task, --track) "
                               "(see `segbench run --help`)"),
    (("run", "--task", "lung", "--epochs", "x"), "error: Invalid value for '--epochs': "),
    (("nope",), "error: No such command 'nope'. (see `segbench --help`)"),
])
def test_typers_own_parse_errors_are_one_line(tmp_path, args, expected):
    result = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'segbench'; "
                             "from segbench.cli import main; main()", *args],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr


@pytest.mark.parametrize(("args", "suggestion"), [
    ((*BASE, "--models", "unett"), "unknown model 'unett'; did you mean 'unet'?"),
    ((*BASE, "--models", "UNet"), "unknown model 'UNet'; did you mean 'unet'?"),
    (("run", "--task", "Lung", "--models", "unet", "--quiet"), "does not serve task 'Lung'; did you mean 'lung'?"),
    (("report", ".", "--format", "htm"), "unknown format 'htm'; did you mean 'html'?"),
])
def test_a_mistyped_name_gets_the_closest_valid_one(run_cli, args, suggestion):
    code, _, stderr = run_cli(*args)
    assert code == 2 and suggestion in stderr and stderr.count("\n") == 1, stderr


def test_a_run_that_fails_on_its_data_leaves_no_folder(run_cli, tmp_path):
    (tmp_path / "data/images").mkdir(parents=True)
    (tmp_path / "data/masks").mkdir()
    out = tmp_path / "runs/first"
    code, _, stderr = run_cli("run", "--task", "lung", "--dataset", "folder", "--data-root", str(tmp_path / "data"),
                              "--models", "toy-cnn", "--quiet", "--out", str(out))
    assert code == 2 and stderr.startswith("error: "), stderr
    assert not out.exists()


def test_options_that_do_nothing_and_a_tiny_test_split_are_warned_about(run_cli, tmp_path):
    code, _, stderr = run_cli(*BASE, "--models", "toy-cnn", "--epochs", "1", "--data-root", str(tmp_path),
                              "--eval-samples", "1000", "--out", str(tmp_path / "run"))
    assert code == 0, stderr
    lines = " ".join(stderr.split())
    assert "warning: --data-root is ignored: dataset 'toy' does not read files" in lines
    assert "warning: --eval-samples 1000: the test split has 10 images; all are evaluated" in lines
    assert "warning: 10 evaluated images: a 95% CI over so few images says little (20 or more recommended)" in lines


# Runs the console entry point in a fresh interpreter and says whether torch was imported.
_TORCH_PROBE = """
import sys
from segbench.cli import main
sys.argv = ["segbench", *sys.argv[1:]]
try:
    main()
finally:
    print("torch imported:", "torch" in sys.modules)
"""


@pytest.mark.parametrize("args", [
    ("run", "--task", "lung", "--models", "unett"),
    ("run", "--task", "Lung", "--models", "unet"),
    ("run", "--task", "lung", "--models", "unet", "--preset", "huge"),
    ("run", "--task", "lung", "--models", "unet", "--eval-samples", "0"),
    ("run", "--task", "lung", "--models", "unet", "--set", "unet.nope=1"),
    ("run", "--task", "lung", "--models", "diff-add", "--preset", "tiny", "--set", "diff-add.sampling_steps=0"),
    ("info", "unett"),
    ("info", "unet", "--preset", "huge"),
    ("report", "runs/x", "--format", "docx"),
])
def test_argument_errors_are_answered_before_torch_loads(args):
    done = subprocess.run([sys.executable, "-c", _TORCH_PROBE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
    assert "torch imported: False" in done.stdout, (done.stdout, done.stderr)
