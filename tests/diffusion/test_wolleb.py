"""Wolleb et al. 2021's recipe as the named configuration diff-concat-wolleb: its presets, its summary, and its
ensemble of 5 through the engine's --ensemble (mean of the members, per-pixel std as uncertainty)."""

import torch

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.plan.build import plan_model
from segbench.plan.run_plan import EvaluationPlan
from segbench.seeds import sample_seed
from segbench_backbone.hyperparameters import BACKBONE, TRAINING
from segbench_diffusion import plugin
from segbench_diffusion.hyperparameters import WOLLEB_PRESETS
from segbench_diffusion.segmenter import DiffusionSegmenter
from tests.segmenters import registered

SIZE = 16


def spec():
    return registered(plugin)["diff-concat-wolleb"]


def test_paper_preset_is_the_recipe_on_the_seed_backbone():
    model, training = WOLLEB_PRESETS["paper"].model, WOLLEB_PRESETS["paper"].training
    assert {k: model[k] for k in BACKBONE["paper"]} == BACKBONE["paper"] and dict(training) == TRAINING["paper"]
    assert (model["prediction"], model["loss"], model["timesteps"], model["sampler"]) == ("epsilon", "mse", 1000, "ddpm")
    assert (model["beta_start"], model["beta_end"], model["clip_x0"]) == (1e-4, 0.02, True)
    for name in ("small", "tiny"):  # the recipe's DDIM option on the CPU backbones
        assert (WOLLEB_PRESETS[name].model["prediction"], WOLLEB_PRESETS[name].model["sampler"]) == ("epsilon", "ddim")


def test_summary_names_the_ensemble_and_counts_its_network_evaluations():
    s = spec()
    paper = {**WOLLEB_PRESETS["paper"].model, "image_size": 64}
    assert s.network_evaluations(paper) == 1000
    assert s.network_evaluations({**paper, "sampler": "ddim"}) == 50
    line = s.summary(paper)
    assert "ensemble of 5" in line and "--ensemble 5" in line and "5000 network evaluations per image" in line


def test_it_is_diff_concat():
    s = spec()
    plan = plan_model(s, s.name, "tiny", "lung", SIZE)
    model = s.factory(plan.factory_input(SIZE))
    assert isinstance(model, DiffusionSegmenter) and model.conditioning == "concat"


def test_an_ensemble_of_5_is_the_members_mean_with_their_std_as_uncertainty():
    s = spec()
    plan = plan_model(s, s.name, "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = s.factory(plan.factory_input(SIZE)).eval()
    with torch.no_grad():  # perturbed, so that members differ
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(3, SIZE, SIZE, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(3, SIZE, SIZE, generator=g) > 0.5).to(torch.uint8).numpy()
    data = SplitData(["test/0", "test/1", "test/2"], images, masks)
    result = predict_split(model, data, EvaluationPlan(None, 32, 5, 0.5), run_seed=4,
                           runtime=Runtime(torch.device("cpu"), "fp32"))
    x, _ = data.tensors()
    for i, sample_id in enumerate(data.ids):
        seeds = torch.tensor([sample_seed(4, sample_id, k) for k in range(5)])
        members = model.predict(x[i:i + 1].expand(5, -1, -1, -1), seeds).probabilities
        assert torch.allclose(result.probabilities[i], members.mean(0), atol=1e-5)
        assert torch.allclose(result.uncertainty[i], members.std(0, correction=0), atol=1e-5)
        assert result.uncertainty[i].max() > 0
