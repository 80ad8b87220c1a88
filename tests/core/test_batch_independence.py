"""A sample's prediction does not depend on which samples share its batch, its position, the evaluated
subset — to the byte — for every registered model (tiny preset): the network always runs on batches of
the same shape (the last one padded). Shards of several processes are the same problem; tests/distributed
runs them with torchrun."""

from __future__ import annotations

import pytest
import torch

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime
from segbench.engine.evaluation import predict_split
from segbench.plan.build import plan_model
from segbench.plan.run_plan import EvaluationPlan
from tests.core.test_registry_contracts import MODELS, REGISTRY

SIZE = 32


def _data(n: int = 7) -> SplitData:
    g = torch.Generator().manual_seed(3)
    images = (torch.rand(n, SIZE, SIZE, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, SIZE, SIZE, generator=g) > 0.6).to(torch.uint8).numpy()
    return SplitData([f"test/{i}" for i in range(n)], images, masks)


@pytest.mark.parametrize("name", MODELS)
def test_predictions_do_not_depend_on_batch_companions_subset_or_shard(name):
    spec = REGISTRY.model(name)
    plan = plan_model(spec, name, "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(SIZE)).eval()
    data = _data()
    evaluation = EvaluationPlan(None, 4, 2, 0.5)  # 7 samples x 2 members in batches of 4 (the last padded)
    cpu = Runtime(torch.device("cpu"), "fp32")
    full = predict_split(model, data, evaluation, run_seed=1, runtime=cpu)
    reordered = predict_split(model, data.subset([6, 2, 0, 5, 1]), evaluation, run_seed=1, runtime=cpu)
    for position, sample in enumerate([6, 2, 0, 5, 1]):
        assert torch.equal(reordered.probabilities[position], full.probabilities[sample]), (name, sample)
        if full.uncertainty is not None:
            assert torch.equal(reordered.uncertainty[position], full.uncertainty[sample])
