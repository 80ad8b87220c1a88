"""Each model's stages, run in order the way the engine will (a stage-aware version of
`segbench.testing.check_model`): every stage gets only its view's data, its loss reaches exactly the
parameters it trains, a fit sets the model's state, and `predict` then gives valid, seeded probabilities."""

import pytest
import torch

from segbench import Prediction
from segbench.plan.build import plan_model
from segbench_unconditional import plugin

SPECS = []
plugin.register_models(SPECS.append)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_stages_run_in_order_on_their_views(spec):
    plan = plan_model(spec, spec.name, "tiny", "infection", 32)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(32))
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 32, 32, generator=generator)
    masks = (torch.rand(4, 1, 32, 32, generator=generator) > 0.7).float()
    for stage in spec.stages:
        trained = getattr(model, stage.trains) if stage.trains else model
        model.requires_grad_(False).eval()
        trained.requires_grad_(True).train()
        if stage.fit:
            with torch.no_grad():
                getattr(model, stage.fit)(getattr(model, stage.fit_on)(images, torch.arange(4)))
            continue
        loss = getattr(model, stage.loss)(*((images, masks) if stage.view == "labelled" else (images,)))
        assert loss.ndim == 0 and torch.isfinite(loss), (stage.name, loss)
        loss.backward()
        inside = {id(p) for p in trained.parameters()}
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.parameters()), stage.name
        assert all(p.grad is None for p in model.parameters() if id(p) not in inside), stage.name
        model.zero_grad(set_to_none=True)
    model.eval()
    seeds = torch.tensor([11, 22, 33, 44])
    first = model.predict(images, seeds)
    assert isinstance(first, Prediction)
    p = first.probabilities
    assert p.shape == images.shape and p.dtype == torch.float32
    assert float(p.min()) >= 0 and float(p.max()) <= 1
    assert torch.equal(p, model.predict(images, seeds).probabilities)
    assert model.synthesize(seeds[:2]).shape == (2, 1, 32, 32)
