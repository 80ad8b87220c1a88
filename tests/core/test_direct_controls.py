"""Registry-driven: every direct control ("<model>:direct") is its diffusion model's network, parameters,
presets and training settings, run once at t = T-1 on a zero noisy-mask input, and it learns; its name
(with ':') works from --models and --set to the run directory, the report and a study's cell ids."""

from __future__ import annotations

import json

import pytest
import torch

from segbench import direct_control
from segbench.controls import DIRECT
from segbench.errors import SegbenchError
from segbench.losses import bce_dice_loss
from segbench.plan.build import plan_model
from segbench.plugins import load_plugins
from segbench.study.run import plan_study
from tests.conftest import single_thread
from tests.core.test_registry_contracts import REGISTRY
from tests.diffusion.test_segmenter import assert_learns
from tests.segmenters import perturbed, random_images
from tests.study.conftest import TOY, write

CONTROLS = [name for name in REGISTRY.names("models") if name.endswith(f":{DIRECT}")]
SIZE = 16  # the synthetic batches' (tests.diffusion.test_segmenter)

one_thread = pytest.fixture(autouse=True)(single_thread)


def diffusion_of(control: str) -> str:
    return control.removesuffix(f":{DIRECT}")


def factory_input(name: str, preset: str = "tiny", size: int = SIZE) -> dict:
    return plan_model(REGISTRY.model(name), name, preset, "infection", size).factory_input(size)


def test_the_conditional_diffusion_segmenters_declare_their_controls():
    assert {"diff-add:direct", "diff-concat:direct", "medsegdiff:direct", "berdiff:direct"} <= set(CONTROLS)
    for name in CONTROLS:
        control, diffusion = REGISTRY.model(name), REGISTRY.model(diffusion_of(name))
        assert control.family == "control" and control.factory.diffusion is diffusion.factory
        assert control.plugin == diffusion.plugin


@pytest.mark.parametrize("name", CONTROLS)
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_a_control_has_exactly_its_diffusion_models_parameters_presets_and_training(name, preset):
    plans = [plan_model(REGISTRY.model(n), n, preset, "infection", 64) for n in (name, diffusion_of(name))]
    assert plans[0].hyperparameters == plans[1].hyperparameters and plans[0].training == plans[1].training
    control, diffusion = (REGISTRY.model(plan.name).factory(plan.factory_input(64)) for plan in plans)
    count = [sum(p.numel() for p in model.parameters()) for model in (control, diffusion)]
    assert count[0] == count[1]  # the timestep embedding stays, fed the fixed timestep
    assert {k: v.shape for k, v in control.state_dict().items()} == {
        f"network.{k}": v.shape for k, v in diffusion.state_dict().items()}


@pytest.mark.parametrize("name", CONTROLS)
def test_one_pass_is_the_network_at_the_last_timestep_on_a_zero_noisy_mask(name):
    values = factory_input(name)
    control = perturbed(REGISTRY.model(name).factory, values)
    network = REGISTRY.model(diffusion_of(name)).factory(dict(values)).eval()
    network.load_state_dict({k.removeprefix("network."): v for k, v in control.state_dict().items()})
    images = random_images(SIZE, 3)
    masks = (random_images(SIZE, 3, seed=1) > 0.5).float()
    last = torch.full((3,), values["timesteps"] - 1)
    with torch.no_grad():
        condition = network.encode(images)
        logit = network.network_output(torch.zeros_like(images), last, condition)
        # the network sees both inputs, so a control fed another timestep or mask would differ
        assert not torch.allclose(logit, network.network_output(torch.zeros_like(images), last // 2, condition))
        assert not torch.allclose(logit, network.network_output(masks * 2 - 1, last, condition))
        torch.testing.assert_close(control.training_loss(images, masks), bce_dice_loss(logit, masks))
    probabilities = control.predict(images, torch.tensor([1, 2, 3]))
    torch.testing.assert_close(probabilities, torch.sigmoid(logit), rtol=0, atol=1e-6)
    assert probabilities.dtype == torch.float32


@pytest.mark.parametrize("name", CONTROLS)
def test_a_tiny_control_learns(name):
    torch.manual_seed(0)
    assert_learns(REGISTRY.model(name).factory(factory_input(name)).train(), 60)


def test_a_staged_or_prefix_model_cannot_declare_a_control():
    for name in ("toy-staged", "smp"):
        with pytest.raises(SegbenchError, match="direct control needs a model of one name trained in one stage"):
            direct_control(REGISTRY.specs["models"][name])


def test_info_names_the_fixed_timestep_and_one_evaluation(run_cli):
    code, stdout, _ = run_cli("info", "diff-add:direct", "--preset", "tiny", "--image-size", "32")
    assert code == 0
    text = " ".join(stdout.split())
    assert "t = T-1 = 999 on a zero noisy-mask input" in text and "network evaluations per mask: 1" in text


def test_a_run_and_its_report_take_a_control_by_its_name(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = run_cli("run", "--task", "lung", "--dataset", "toy", "--models", "diff-add:direct",
                              "--preset", "tiny", "--image-size", "32", "--epochs", "1", "--eval-samples", "4",
                              "--set", "diff-add:direct.timesteps=10", "--quiet", "--out", str(out))
    assert code == 0, stderr
    config = json.loads((out / "config.json").read_text())
    [model] = config["plan"]["models"]
    assert model["name"] == "diff-add:direct" and model["hyperparameters"]["timesteps"] == 10
    assert (out / "predictions" / "diff-add_direct.npz").is_file()
    assert (out / "checkpoints" / "diff-add_direct").is_dir()
    report = (out / "report.md").read_text()
    assert "| Metric | diff-add:direct |" in report
    assert "| 1 x 1 |" in next(line for line in report.splitlines() if line.startswith("| diff-add:direct | tiny |"))
    code, latex, _ = run_cli("report", str(out), "--format", "latex")
    assert code == 0 and "diff-add:direct" in latex


def test_a_study_gives_a_control_a_cell_id_safe_as_a_file_name(tmp_path):
    text = TOY.replace("toy-cnn = {}", '"diff-add:direct" = {}')
    cells = plan_study(write(tmp_path, text), str(tmp_path / "study"), load_plugins(("tests.toy_plugin",))).cells
    assert [cell.id.split("-seed")[0] for cell in cells] == ["squares-diff-add_direct"] * 2
    assert all(cell.request.models == ["diff-add:direct"] for cell in cells)
