"""Prediction over a split: per-sample seeds, a fixed batch shape, ensembles folded into batches, shards per process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segbench.data import SplitData
from segbench.engine.device import Runtime, batch_shape
from segbench.engine.distributed import gather
from segbench.engine.stopping import Stopped
from segbench.errors import SegbenchError
from segbench.plan.run_plan import EvaluationPlan
from segbench.seeds import sample_seed
from segbench.specs import Prediction


class BatchStore(Protocol):
    """Where finished prediction batches are committed, so a resumed evaluation reads them back instead of
    predicting again (`segbench.results.committed.CommittedBatches` in a run directory)."""

    def get(self, key: tuple[str, int]) -> tuple | None: ...

    def commit(self, keys: Sequence[tuple[str, int]], probabilities: torch.Tensor,
               uncertainty: torch.Tensor | None) -> None: ...


@dataclass
class SplitPredictions:
    """Per-sample outputs: probabilities float32 (N, 1, H, W) in [0, 1]; uncertainty (per-pixel std) or
    None; seconds this process predicted; the batch shape the network ran on (smaller than asked after
    GPU out-of-memory, larger on the CPU: see `batch_shape`)."""

    probabilities: torch.Tensor
    uncertainty: torch.Tensor | None
    seconds: float
    batch_size: int
    flops_per_mask: float | None = None  # of one mask, counted in a pass of its own, where asked


def _unpack(output: torch.Tensor | Prediction, expected: torch.Size, model_name: str) -> Prediction:
    pred = output if isinstance(output, Prediction) else Prediction(output)
    if not isinstance(pred.probabilities, torch.Tensor) or pred.probabilities.shape != expected:
        got = getattr(pred.probabilities, "shape", type(pred.probabilities).__name__)
        raise SegbenchError(f"model {model_name!r}: predict returned {got}, expected probabilities of shape {tuple(expected)}")
    return pred


def _flops_per_mask(model: nn.Module, inputs: torch.Tensor, seeds: torch.Tensor, precision: Any) -> float:
    """FLOPs of predicting one mask, counted by torch.utils.flop_counter in a pass of its own whose output is
    dropped: under FlopCounterMode some CPU kernels round differently, so no result may come from it."""
    with precision, FlopCounterMode(display=False) as counter:
        model.predict(inputs, seeds)
    return counter.get_total_flops() / len(inputs)


@torch.inference_mode()
def predict_split(
    model: nn.Module,
    data: SplitData,
    evaluation: EvaluationPlan,
    *,
    run_seed: int,
    runtime: Runtime,
    model_name: str = "model",
    on_batch: Callable[[int, int], None] | None = None,
    committed: BatchStore | None = None,
    should_stop: Callable[[], bool] | None = None,
    count_flops: bool = False,
) -> SplitPredictions:
    """Predict every sample `evaluation.ensemble` times; members of all samples are folded into batches.

    Member k of sample i is predicted with seed sample_seed(run_seed, id_i, k), in batches of
    `evaluation.batch_size` masks, and the network always runs on batches of exactly
    `batch_shape(evaluation.batch_size, ...)` masks (on the CPU a multiple of 32, 64 in bf16; padded with
    copies of the batch's first mask, whose outputs are discarded), so every mask sees the same kernels: a
    sample's probabilities do not depend on which samples share its batch, its position, the evaluated
    subset or the process count.
    With several processes (`runtime.dist`) each predicts the samples i with i % world == rank and the
    results are gathered in sample order. With ensemble > 1 the probabilities are the members' mean and
    the uncertainty their per-pixel (population) std; with 1 member, the model's own uncertainty if any.
    With `committed`, each batch is committed as it finishes and committed masks are read back instead of
    predicted, so a resumed evaluation (with any process count) is bit-identical. A batch that runs out of
    GPU memory is halved and redone (a smaller batch shape, which may change the last bits; the caller
    records `SplitPredictions.batch_size`). `should_stop()` is asked between batches: True raises Stopped.
    With `count_flops`, torch.utils.flop_counter counts the FLOPs of predicting one mask (what it knows how to
    count: convolutions, matrix products, attention) in an extra pass whose output is dropped.
    """
    ensemble, dist = evaluation.ensemble, runtime.dist
    if ensemble < 1:
        raise SegbenchError(f"--ensemble must be at least 1, got {ensemble}")
    if evaluation.batch_size < 1:
        raise SegbenchError(f"--eval-batch-size must be at least 1, got {evaluation.batch_size}")
    batch_size = evaluation.batch_size  # masks per batch
    shape = batch_shape(batch_size, runtime.device, runtime.precision)  # masks the network runs on
    model.to(runtime.device).eval()
    n = len(data)
    items = [(i, k) for i in range(n) for k in range(ensemble)]  # member-major inside each sample
    keys = [(data.ids[i], k) for i, k in items]
    mine = [j for j, (i, _) in enumerate(items) if i % dist.world == dist.rank]
    results: dict[int, tuple] = {}
    if committed is not None:
        results = {j: found for j in mine if (found := committed.get(keys[j])) is not None}
    todo = [j for j in mine if j not in results]
    images, _ = data.tensors()
    start = time.perf_counter()
    network_precision = runtime.autocast()
    flops: float | None = None
    lo = 0
    while lo < len(todo):
        if should_stop is not None and should_stop():
            raise Stopped(f"while predicting with {model_name} ({len(results)} of {len(mine)} masks committed)")
        batch = todo[lo:lo + batch_size]
        padded = batch + [batch[0]] * (shape - len(batch))
        seeds = torch.tensor([sample_seed(run_seed, *keys[j]) for j in padded], dtype=torch.int64)
        inputs = images[[items[j][0] for j in padded]].to(runtime.device)
        try:
            if flops is None and count_flops:
                flops = _flops_per_mask(model, inputs[:1], seeds[:1].to(runtime.device), network_precision)
            with network_precision:
                output = model.predict(inputs, seeds.to(runtime.device))
        except torch.cuda.OutOfMemoryError:
            # redo this batch in a smaller shape (results may change in the last bits; recorded by the caller)
            if batch_size == 1:
                raise SegbenchError(f"model {model_name!r} runs out of GPU memory on a single mask; "
                                    "use a smaller --image-size or preset, or --device cpu") from None
            del inputs
            if runtime.device.type == "cuda":
                torch.cuda.empty_cache()
            batch_size //= 2
            shape = batch_shape(batch_size, runtime.device, runtime.precision)
            continue
        pred = _unpack(output, inputs.shape, model_name)
        probs = pred.probabilities.float().cpu()[:len(batch)]
        own = pred.uncertainty.float().cpu()[:len(batch)] if pred.uncertainty is not None and ensemble == 1 else None
        if committed is not None:
            committed.commit([keys[j] for j in batch], probs, own)
        results.update({j: (probs[b].numpy(), None if own is None else own[b].numpy()) for b, j in enumerate(batch)})
        lo += len(batch)
        if on_batch:
            on_batch(lo + len(mine) - len(todo), len(mine))
    seconds = time.perf_counter() - start
    merged = {j: value for part in gather({j: results[j] for j in mine}, dist) for j, value in part.items()}
    probs = torch.from_numpy(np.stack([merged[j][0] for j in range(len(items))]))
    own_parts = [merged[j][1] for j in range(len(items))]
    own_uncertainty = None if any(u is None for u in own_parts) else torch.from_numpy(np.stack(own_parts))
    size = images.shape[-2:]
    if ensemble == 1:
        return SplitPredictions(probs.clamp_(0, 1), own_uncertainty, seconds, shape, flops)
    members = probs.clamp_(0, 1).view(n, ensemble, 1, *size)
    return SplitPredictions(members.mean(1), members.std(1, correction=0), seconds, shape, flops)
