"""A sample's prediction does not depend on which samples share its batch, its position, the evaluated
subset — to the byte — for every registered model (tiny preset): the network always runs on batches of
the same shape (the last one padded), on the CPU a multiple of 32 masks, so that no sample falls into the
scalar remainder of an element-wise kernel. Shards of several processes are the same problem;
tests/distributed runs them with torchrun. tests/core/test_kernel_paths.py reruns this file on ATen's other
CPU kernel paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from segbench.data.prepare import SplitData
from segbench.data.views import TrainingView
from segbench.engine.augment import Augmenter
from segbench.engine.device import Runtime, batch_shape
from segbench.engine.evaluation import predict_split
from segbench.engine.training import Objective, global_batches, train
from segbench.plan.build import plan_model
from segbench.plan.run_plan import EvaluationPlan
from segbench.testing import fit_stages
from tests.core.test_augment import ALWAYS as ALL_ON
from tests.core.test_registry_contracts import MODELS, REGISTRY

SIZE = 32
SAMPLES = 20  # x 2 members: two batches of 32 masks
SUBSET = [19, 6, 2, 0, 15, 5, 1]  # every sample at another position, some in the other batch


def _data(n: int = SAMPLES) -> SplitData:
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, SIZE, SIZE, generator=g) * 255).to(torch.uint8).numpy()
    masks = (torch.rand(n, SIZE, SIZE, generator=g) > 0.6).to(torch.uint8).numpy()
    return SplitData([f"test/{i}" for i in range(n)], images, masks)


# Asked for, these batch shapes put samples into a partial vector: at 32x32, res50attunet's gate at 4x4 has
# 16 values per sample, so with 3 masks (48 values) sigmoid computes the last sample with scalar std::exp under
# AVX-512 (32 values per step), while its first sample is vectorised; at 2 threads, MKL splits the 5 rows of
# the diffusion models' time-embedding GEMM unevenly. Both failed before batches became a multiple of 32.
@pytest.fixture(params=[(1, 3), (2, 5)], ids=["1-thread-batch-3", "2-threads-batch-5"])
def threads_and_batch(request) -> Iterator[tuple[int, int]]:
    """One CPU thread (a torchrun worker's) and the suite's two threads: CPU kernels pick their loops by
    thread count and shape."""
    threads = torch.get_num_threads()
    torch.set_num_threads(request.param[0])
    yield request.param
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", MODELS)
def test_predictions_do_not_depend_on_batch_companions_subset_or_shard(name, threads_and_batch):
    spec = REGISTRY.model(name)
    plan = plan_model(spec, name, "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = fit_stages(spec.factory(plan.factory_input(SIZE)), spec, SIZE)
    data = _data()
    evaluation = EvaluationPlan(None, threads_and_batch[1], 2, 0.5)
    cpu = Runtime(torch.device("cpu"), "fp32")
    # counting FLOPs, as runs do, changes no result (under FlopCounterMode some CPU kernels round differently)
    full = predict_split(model, data, evaluation, run_seed=1, runtime=cpu, count_flops=True)
    reordered = predict_split(model, data.subset(SUBSET), evaluation, run_seed=1, runtime=cpu)
    assert full.flops_per_mask is not None and full.flops_per_mask > 0
    for position, sample in enumerate(SUBSET):
        assert torch.equal(reordered.probabilities[position], full.probabilities[sample]), (name, sample)
        if full.uncertainty is not None:
            assert torch.equal(reordered.uncertainty[position], full.uncertainty[sample])


@pytest.mark.parametrize("fusion", ["vote", "staple"])  # mean: the test above
def test_a_fused_ensemble_is_deterministic_and_independent_of_batch_companions(fusion):
    """One sampling model suffices: the fusion runs on each sample's own members, after prediction."""
    spec = REGISTRY.model("diff-add")
    plan = plan_model(spec, "diff-add", "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = fit_stages(spec.factory(plan.factory_input(SIZE)), spec, SIZE)
    data, cpu = _data(), Runtime(torch.device("cpu"), "fp32")
    evaluation = EvaluationPlan(None, 5, 2, 0.5, fusion=fusion)
    full, again = (predict_split(model, data, evaluation, run_seed=1, runtime=cpu) for _ in range(2))
    reordered = predict_split(model, data.subset(SUBSET), evaluation, run_seed=1, runtime=cpu)
    assert torch.equal(full.probabilities, again.probabilities) and torch.equal(full.uncertainty, again.uncertainty)
    assert torch.equal(reordered.probabilities, full.probabilities[SUBSET])
    assert torch.equal(reordered.uncertainty, full.uncertainty[SUBSET])


def _probe_input(x: torch.Tensor) -> torch.Tensor:
    return x * 8 - 4


class TailProbe(torch.nn.Module):
    """Sigmoid of 31 pixels per sample (the rest of the mask 0): with 3 masks per batch (93 values) the third
    one's last 29 values are the scalar remainder under AVX-512 (32 values per step), its last 13 under AVX2
    (16), where sigmoid rounds differently from its vectorised path for about 4% of inputs (3.9% of 64,000
    normal values)."""

    def predict(self, images: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        probabilities = torch.zeros_like(images)
        pixels = images.view(len(images), -1)[:, :31]
        probabilities.view(len(images), -1)[:, :31] = torch.sigmoid(_probe_input(pixels))
        return probabilities


def _levels_rounded_apart() -> torch.Tensor:
    """The grey levels whose probe value gets other bits from sigmoid's scalar remainder than from its
    vector loop on this kernel path (all 256 where there are none, as on the scalar path)."""
    x = _probe_input(torch.arange(256).float().div(255))
    vector = torch.sigmoid(x.repeat(2))[:256]  # 512 values: no remainder
    scalar = torch.cat([torch.sigmoid(x[i:i + 1]) for i in range(256)])  # one value each: all remainder
    apart = torch.nonzero(vector != scalar).flatten()
    return apart if len(apart) else torch.arange(256)


def test_a_sample_predicted_where_a_kernel_would_leave_a_partial_vector_gets_the_same_bits():
    data = _data()
    levels = _levels_rounded_apart()
    g = torch.Generator().manual_seed(1)
    data.images.reshape(len(data), -1)[:, :31] = levels[torch.randint(len(levels), (len(data), 31), generator=g)].numpy()
    cpu = Runtime(torch.device("cpu"), "fp32")
    evaluation = EvaluationPlan(None, 3, 2, 0.5)
    full = predict_split(TailProbe(), data, evaluation, run_seed=1, runtime=cpu)
    reordered = predict_split(TailProbe(), data.subset(SUBSET), evaluation, run_seed=1, runtime=cpu)
    assert torch.equal(reordered.probabilities, full.probabilities[SUBSET])


def test_the_network_predicts_cpu_batches_of_a_multiple_of_32_masks_in_fp32_and_64_in_bf16():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert [batch_shape(n, cpu, "fp32") for n in (1, 3, 32, 33, 64)] == [32, 32, 32, 64, 64]
    assert [batch_shape(n, cpu, "bf16") for n in (1, 64, 65)] == [64, 64, 128]
    assert batch_shape(3, gpu, "bf16") == 3  # GPU kernels have no scalar remainder; memory decides there
    shapes = []

    class Recorder(torch.nn.Module):
        def predict(self, images, seeds):
            shapes.append(len(images))
            return images

    predict_split(Recorder(), _data(), EvaluationPlan(None, 3, 2, 0.5), run_seed=1,
                  runtime=Runtime(cpu, "fp32"))
    assert shapes == [32] * 14  # 40 masks, 3 to a batch


@pytest.mark.parametrize("name", MODELS)
def test_each_trained_stage_gets_every_sample_augmented_as_it_would_be_alone(name):
    """Under --augment standard (every transform on, both flips allowed), the first step of each stage that
    trains sees each sample of its batch as the sample augmented alone, where the stage is augmented (a
    labelled one, or one that asks), and the data as they are where it is not."""
    spec = REGISTRY.model(name)
    plan = plan_model(spec, name, "tiny", "lung", SIZE)
    torch.manual_seed(0)
    model = spec.factory(plan.factory_input(SIZE))
    data, cpu = _data(8), Runtime(torch.device("cpu"), "fp32")
    for stage in (s for s in spec.stages if not s.fit):
        view = TrainingView(data.ids, data.images, data.masks if stage.needs_labels else None)
        seen: list[tuple[torch.Tensor, ...]] = []
        loss = getattr(model, stage.loss)
        setattr(model, stage.loss, lambda *batch, loss=loss: seen.append(tuple(x.clone() for x in batch)) or loss(*batch))
        try:
            train(model, view, replace(plan.stage_training(stage.name), steps=1, epochs=None, batch_size=4), seed=7,
                  runtime=cpu, objective=Objective(stage.loss, stage.trains),
                  augment=Augmenter(ALL_ON, 1, data.ids) if stage.augmented else None)
        finally:
            delattr(model, stage.loss)
        index = global_batches(len(view), 4, 7, 0)[0]
        raw = (torch.from_numpy(data.images[index.numpy()]).unsqueeze(1).float().div_(255),
               *([torch.from_numpy(data.masks[index.numpy()]).unsqueeze(1).float()] if stage.needs_labels else []))
        for position, sample in enumerate(index.tolist()):
            alone = tuple(x[position:position + 1] for x in raw)
            if stage.augmented:
                alone = Augmenter(ALL_ON, 1, data.ids)(alone, index[position:position + 1], 0)
            assert all(torch.equal(a[0], s[position]) for a, s in zip(alone, seen[0])), (name, stage.name, sample)
