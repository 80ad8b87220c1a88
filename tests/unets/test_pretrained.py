"""unet-pretrained: unet's network and parameters; a Models Genesis pretext drawn per sample; a pretrain stage on
every image with the budget of ddpm-features' DDPM stage, learning to restore, stored once and reused across
label budgets; a finetune stage that starts from its weights and trains as unet does."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from segbench.data.views import TrainingView
from segbench.engine import stages as engine_stages
from segbench.engine.device import Runtime
from segbench.engine.training import Objective, train
from segbench.plan.build import plan_model
from segbench.results import read_models
from segbench_unets.pretext import draw
from segbench_unets.pretrained import pretext_seeds
from tests.conftest import single_thread
from tests.reliability.conftest import cli

NAME = "unet-pretrained"
one_thread = pytest.fixture(autouse=True)(single_thread)


def _images(n: int, size: int = 32) -> torch.Tensor:
    """Smooth random images (B, 1, S, S) on the uint8 grey levels, as the engine gives them."""
    g = torch.Generator().manual_seed(0)
    return F.interpolate(torch.rand(n, 1, 4, 4, generator=g), size=size, mode="bilinear").mul(255).round().div(255)


def test_it_is_unets_network_with_unets_parameter_count(build):
    pretrained, unet = build(NAME), build("unet")
    assert type(pretrained.net) is type(unet.net)
    shapes = {k: v.shape for k, v in unet.state_dict().items()}
    assert {k: v.shape for k, v in pretrained.state_dict().items()} == shapes
    assert sum(p.numel() for p in pretrained.parameters()) == sum(p.numel() for p in unet.parameters())


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
@pytest.mark.parametrize("task", ["lung", "infection"])
def test_pretrain_has_the_ddpm_stages_budget_and_finetune_trains_as_unet(registry, preset, task):
    plan = plan_model(registry.model(NAME), NAME, preset, task, 64)
    ddpm = plan_model(registry.model("ddpm-features"), "ddpm-features", preset, task, 64).stage_training("ddpm")
    pretrain = plan.stage_training("pretrain")
    assert (pretrain.steps, pretrain.epochs, pretrain.batch_size) == (ddpm.steps, ddpm.epochs, ddpm.batch_size)
    assert plan.stage_training("finetune") == plan_model(registry.model("unet"), "unet", preset, task, 64).training
    assert [(s.name, s.view, s.needs_labels) for s in registry.model(NAME).stages] == [
        ("pretrain", "images", False), ("finetune", "labelled", True)]


def test_a_samples_corruption_depends_on_its_seed_alone(build):
    model, images = build(NAME, image_size=32), _images(6)
    seeds = pretext_seeds(images, step=5)
    full = model.corrupted(images, seeds)
    order = [4, 1, 5]
    # the same image in another batch, position and batch size: the same seed and the same corruption, bit for bit
    assert pretext_seeds(images[order], step=5) == [seeds[i] for i in order]
    assert torch.equal(model.corrupted(images[order], [seeds[i] for i in order]), full[order])
    assert torch.equal(model.corrupted(images[2:3], seeds[2:3]), full[2:3])
    assert torch.equal(model.corrupted(images, seeds), full)  # deterministic
    # another step corrupts anew, and every sample is changed by something
    assert pretext_seeds(images, step=6) != seeds
    assert all((full[i] != images[i]).any() for i in range(6))
    drawn = draw(seeds, (32, 32), torch.device("cpu"))
    assert drawn.keep.shape == (6, 1, 32, 32) and drawn.source.shape == (6, 32 * 32)


def test_the_pretrain_stage_learns_to_restore(registry):
    spec = registry.model(NAME)
    plan = plan_model(spec, NAME, "tiny", "lung", 32)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(32))
    images = _images(16)[:, 0].mul(255).round().to(torch.uint8).numpy()
    view = TrainingView([f"train/{i}" for i in range(16)], images, None)
    state = train(model, view, plan.stage_training("pretrain"), seed=3, runtime=Runtime(torch.device("cpu"), "fp32"),
                  objective=Objective("restoration_loss"))
    assert len(state.losses) == 12  # the tiny preset's 24 steps of 8 images: 12 epochs of 16
    assert sum(state.losses[-3:]) / 3 < 0.8 * state.losses[0], state.losses


RUN = ("run", "--task", "infection", "--dataset", "toy-mixed", "--models", NAME, "--preset", "tiny", "--image-size",
       "32", "--eval-samples", "2", "--quiet", f"--set={NAME}.pretrain.steps=3", f"--set={NAME}.finetune.steps=2")


@pytest.fixture(scope="module")
def two_budgets(tmp_path_factory) -> dict[int, tuple]:
    """Runs at 4 and 8 labels sharing a stage store of their own: per budget, its stage records and, per trained
    stage, the model's weights when the stage began and when it ended."""
    folder = tmp_path_factory.mktemp("pretrained")
    seen: dict[int, list] = {}
    original = engine_stages.train

    def spy(network, *args, objective, **kwargs):
        began = {k: v.clone() for k, v in network.state_dict().items()}
        state = original(network, *args, objective=objective, **kwargs)
        calls.append((objective.loss, began, {k: v.clone() for k, v in network.state_dict().items()}))
        return state

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGBENCH_CACHE", str(folder / "cache"))
        patch.setattr(engine_stages, "train", spy)
        for labels in (4, 8):
            calls: list = []
            out = folder / f"labels-{labels}"
            code, _, stderr = cli(*RUN, "--labels", str(labels), "--out", str(out))
            assert code == 0, stderr
            seen[labels] = ({s.name: s for s in read_models(out)[NAME].stages}, calls)
    return seen


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str = "") -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if k.startswith(prefix))


def test_finetuning_starts_from_every_pretrained_weight(two_budgets):
    _, calls = two_budgets[4]
    (first, began, pretrained), (second, start, _) = calls
    assert (first, second) == ("restoration_loss", "training_loss")
    assert not _equal(began, pretrained, "net.encoder.")  # pretraining changed the encoder
    assert _equal(start, pretrained)  # and fine-tuning began where it ended, the head included


def test_the_pretrain_stage_is_trained_once_and_reused_by_another_budget(two_budgets):
    (stages_4, calls_4), (stages_8, calls_8) = two_budgets[4], two_budgets[8]
    assert not stages_4["pretrain"].reused_from and stages_8["pretrain"].reused_from
    assert not stages_8["finetune"].reused_from and (stages_4["finetune"].masks, stages_8["finetune"].masks) == (4, 8)
    assert stages_8["pretrain"].training_flops == stages_4["pretrain"].training_flops > 0
    assert _equal(calls_8[1][1], calls_4[0][2])  # the budget of 8 fine-tunes the weights the budget of 4 pretrained
