"""Resume is exact for every built-in model, not only the toy ones (registry-driven).

Each built-in model (tiny preset, on the toy squares with healthy images at 32x32) is killed with SIGKILL during its
training and, after a resume, during its evaluation; a last `--resume` must finish with
per_image.csv, summary.csv and predictions/*.npz byte-identical to an uninterrupted run. The main
job's pair (unet + diff-add) is killed together, by its own counters and from outside at several
moments (0.5 s, 3 s, in the first epoch, during evaluation), and always finishes with the same bytes.
The toy models the other reliability tests kill have no tuple-valued hyperparameters; these do.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from segbench.plugins import load_plugins
from segbench.results.store import prediction_file
from tests.conftest import repo_root
from tests.reliability.conftest import cli, differing_files, killed_run

_REGISTRY = load_plugins()
# A prefix spec stands for a family; one concrete member of it is resumed.
PREFIX_EXAMPLES = {"smp": "smp:FPN:resnet18"}
BUILTIN = [PREFIX_EXAMPLES.get(name, name) if spec.prefix else name
           for name, spec in sorted(_REGISTRY.specs["models"].items()) if not spec.plugin.startswith("tests.")]
PAIR = "unet,diff-add"
# The main job's pair runs in the default suite; the other built-in models in the slow one (CI runs both).
DEFAULT_SUITE = ("unet", "diff-add")


def _run(models: str) -> tuple[str, ...]:
    # 24 training images: 6 steps per epoch at the U-Nets' tiny batch of 4, 3 at the diffusion models' 8;
    # 10 test images x 2 members in batches of 3: 7 prediction batches per model. toy-mixed has the healthy
    # images (no foreground) that anomaly-ddpm trains on.
    return ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", models, "--preset", "tiny",
            "--image-size", "32", "--ensemble", "2", "--eval-batch-size", "3", "--seed", "3", "--quiet")


def _compared(models: str) -> list[str]:
    return ["per_image.csv", "summary.csv", "predictions/_reference.npz",
            *(prediction_file(m) for m in models.split(","))]


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> Callable[[str], Path]:
    """The uninterrupted run of `models` (with `extra` options), made once per module."""
    made: dict[tuple[str, ...], Path] = {}

    def reference(models: str, *extra: str) -> Path:
        if (models, *extra) not in made:
            out = tmp_path_factory.mktemp("reference") / "run"
            code, _, stderr = cli(*_run(models), *extra, "--out", str(out))
            assert code == 0, stderr
            made[(models, *extra)] = out
        return made[(models, *extra)]

    return reference


def _killed(where: str, n: int, models: str, out: Path, *extra: str) -> None:
    killed = killed_run(where, n, *_run(models), "--out", str(out), *extra)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]


def _finish_and_compare(reference: Path, out: Path, models: str, *extra: str) -> None:
    code, _, stderr = cli(*_run(models), *extra, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert differing_files(reference, out, _compared(models)) == []
    assert not (out / "partial").exists()


def _augmented(model: str) -> bool:
    """Whether `standard` augments any of `model`'s stages (anomaly-ddpm's, on healthy images, it does not:
    its run under `standard` would reuse the stored stages of the one under `none` and train nothing)."""
    return any(stage.augmented for stage in _REGISTRY.model(model).stages)


@pytest.mark.parametrize(("model", "augment"), [
    (m, a) if m in DEFAULT_SUITE else pytest.param(m, a, marks=pytest.mark.slow)
    for m in BUILTIN for a in ("none", "standard") if a == "none" or _augmented(m)])
def test_builtin_model_killed_in_training_and_in_evaluation_resumes_exactly(references, tmp_path, model, augment):
    """Under each augmentation policy that changes the model's training: the standard one's draws come from
    (seed, epoch, sample id), which a resumed epoch knows."""
    out, policy = tmp_path / "run", ("--augment", augment)
    # training step 2 starts after step 1 was checkpointed (every step): a resume mid-epoch
    _killed(f"train@{model}", 2, model, out, *policy, "--checkpoint-every", "0")
    assert (out / "checkpoints").is_dir() and not (out / "per_image.csv").exists()
    # the resumed run finishes training, commits two prediction batches and dies in the third
    _killed(f"predict@{model}", 3, model, out, *policy, "--resume")
    assert len(list((out / "partial").rglob("batch-*.npz"))) == 2
    _finish_and_compare(references(model, *policy), out, model, *policy)


def test_main_job_pair_killed_in_each_model_resumes_exactly(references, tmp_path):
    """unet + diff-add in one run: killed in unet's training, then in diff-add's training and evaluation."""
    out = tmp_path / "run"
    _killed("train@unet", 4, PAIR, out, "--checkpoint-every", "0")
    _killed("train@diff-add", 3, PAIR, out, "--resume", "--checkpoint-every", "0")
    assert (out / "predictions/unet.npz").is_file()  # unet finished in the second process
    _killed("predict@diff-add", 5, PAIR, out, "--resume")
    _finish_and_compare(references(PAIR), out, PAIR)


def _appears(out: Path, pattern: str) -> Callable[[], bool]:
    return lambda: any(out.glob(pattern))


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


MOMENTS: dict[str, Callable[[Path], Callable[[], bool]]] = {
    "0.5s": lambda out: _after(0.5),  # still importing: no run directory yet
    "3s": lambda out: _after(3.0),
    "first-epoch": lambda out: _appears(out, "checkpoints/unet/last.pt"),  # written after step 1 (every step)
    "evaluation": lambda out: _appears(out, "partial/*/batch-*.npz"),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_main_job_pair_killed_from_outside_resumes_exactly(references, tmp_path, moment):
    """A real `kill -9` from another process; `--resume` then finishes whatever the run had reached,
    starting it when the kill came before config.json was written."""
    out = tmp_path / "run"
    args = [sys.executable, "-m", "tests.reliability.killer", "train", "0", *_run(PAIR), "--out", str(out),
            "--checkpoint-every", "0"]
    process = subprocess.Popen(args, cwd=repo_root(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    is_ready, deadline = MOMENTS[moment](out), time.monotonic() + 120
    while not is_ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait(60) == -signal.SIGKILL, f"the run ended before the kill at {moment}"
    _finish_and_compare(references(PAIR), out, PAIR)
