"""A sample's prediction does not depend on which samples share its batch, its position, the evaluated
subset — to the byte — for every registered model (tiny preset): the network always runs on batches of
the same shape (the last one padded). Shards of several processes are the same problem; tests/distributed
runs them with torchrun."""

from __future__ import annotations

from collections.abc import Iterator

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
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, SIZE, SIZE, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, SIZE, SIZE, generator=g) > 0.6).to(torch.uint8).numpy()
    return SplitData([f"test/{i}" for i in range(n)], images, masks)


@pytest.fixture(params=[(1, 3), (2, 4)], ids=["1-thread-batch-3", "2-threads-batch-4"])
def threads_and_batch(request) -> Iterator[tuple[int, int]]:
    """One CPU thread (a torchrun worker's) with an odd batch, and the suite's two threads with an even one:
    CPU kernels pick their loops by thread count and shape."""
    threads = torch.get_num_threads()
    torch.set_num_threads(request.param[0])
    yield request.param
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", MODELS)
def test_predictions_do_not_depend_on_batch_companions_subset_or_shard(name, threads_and_batch):
    spec = REGISTRY.model(name)
    plan = plan_model(spec, name, "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(SIZE)).eval()
    data = _data()
    # 7 samples x 2 members in batches of 3 or 4 (the last padded)
    evaluation = EvaluationPlan(None, threads_and_batch[1], 2, 0.5)
    cpu = Runtime(torch.device("cpu"), "fp32")
    full = predict_split(model, data, evaluation, run_seed=1, runtime=cpu)
    reordered = predict_split(model, data.subset([6, 2, 0, 5, 1]), evaluation, run_seed=1, runtime=cpu)
    for position, sample in enumerate([6, 2, 0, 5, 1]):
        assert torch.equal(reordered.probabilities[position], full.probabilities[sample]), (name, sample)
        if full.uncertainty is not None:
            assert torch.equal(reordered.uncertainty[position], full.uncertainty[sample])
