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

from segbench.data.prepare import SplitData
from segbench.engine.device import Runtime, batch_shape
from segbench.engine.distributed import Distributed, gather
from segbench.engine.stopping import Stopped
from segbench.errors import SegbenchError
from segbench.fusion import fuse
from segbench.plan.run_plan import EvaluationPlan, model_fusion
from segbench.seeds import sample_seed
from segbench.specs import Prediction

Key = tuple[str, int]  # (sample id, ensemble member): what a mask's seed derives from and is committed under
MaskOutput = tuple[np.ndarray, np.ndarray | None]  # one mask's probabilities (1, H, W), the model's own uncertainty or None


class BatchStore(Protocol):
    """Where finished prediction batches are committed, so a resumed evaluation reads them back instead of
    predicting again (`segbench.results.committed.CommittedBatches` in a run directory)."""

    def get(self, key: Key) -> MaskOutput | None: ...

    def commit(self, keys: Sequence[Key], probabilities: torch.Tensor,
               uncertainty: torch.Tensor | None) -> None: ...


@dataclass
class SplitPredictions:
    """Per-sample outputs: probabilities float32 (N, 1, H, W) in [0, 1]; uncertainty (the fusion's, or the
    model's own) or None; seconds this process predicted; the batch shape the network ran on (smaller than
    asked after GPU out-of-memory, larger on the CPU: see `batch_shape`)."""

    probabilities: torch.Tensor
    uncertainty: torch.Tensor | None
    seconds: float
    batch_size: int
    flops_per_mask: float | None = None  # of one mask, counted in a pass of its own, where asked


@dataclass(frozen=True)
class _Members:
    """Every mask to predict, member k of sample i, member-major inside each sample, and this process's share."""

    items: list[tuple[int, int]]  # (sample index i, member k)
    keys: list[Key]
    mine: list[int]  # indices into items: the samples i with i % world == rank

    @classmethod
    def of(cls, ids: Sequence[str], ensemble: int, dist: Distributed) -> _Members:
        items = [(i, k) for i in range(len(ids)) for k in range(ensemble)]
        return cls(items, [(ids[i], k) for i, k in items],
                   [j for j, (i, _) in enumerate(items) if i % dist.world == dist.rank])


def _unpack(output: torch.Tensor | Prediction, expected: torch.Size, model_name: str, method: str) -> Prediction:
    pred = output if isinstance(output, Prediction) else Prediction(output)
    if not isinstance(pred.probabilities, torch.Tensor) or pred.probabilities.shape != expected:
        got = getattr(pred.probabilities, "shape", type(pred.probabilities).__name__)
        raise SegbenchError(f"model {model_name!r}: {method} returned {got}, expected maps of shape {tuple(expected)}")
    return pred


def _flops_per_mask(model: nn.Module, inputs: torch.Tensor, seeds: torch.Tensor, precision: Any) -> float:
    """FLOPs of predicting one mask, counted by torch.utils.flop_counter in a pass of its own whose output is
    dropped: under FlopCounterMode some CPU kernels round differently, so no result may come from it."""
    with precision, FlopCounterMode(display=False) as counter:
        model.predict(inputs, seeds)
    return counter.get_total_flops() / len(inputs)


@dataclass
class _Network:
    """The model as prediction runs it: on the runtime's device and precision, on batches of masks padded to
    a fixed shape with copies of the batch's first mask, whose outputs are discarded."""

    model: nn.Module
    images: torch.Tensor  # (N, 1, H, W) of the split, on the CPU
    members: _Members
    run_seed: int
    runtime: Runtime
    model_name: str
    keep_own_uncertainty: bool  # a single member: the model's own uncertainty is the output's
    method: str = "predict"  # the model's method run: `predict`, or what a fitted stage fits on

    def shape(self, batch_size: int) -> int:
        """The masks the network runs on for batches of `batch_size` (see `batch_shape`)."""
        return batch_shape(batch_size, self.runtime.device, self.runtime.precision)

    def run(self, batch: list[int], shape: int, count_flops: bool) -> tuple[Prediction, float | None] | None:
        """The members `batch` (indices into items) predicted in a batch of `shape` masks: (probabilities
        float32 (len(batch), 1, H, W) on the CPU with the model's own uncertainty where kept, FLOPs per mask
        where counted); None where the GPU ran out of memory (the inputs are freed on return)."""
        padded = batch + [batch[0]] * (shape - len(batch))
        seeds = torch.tensor([sample_seed(self.run_seed, *self.members.keys[j]) for j in padded], dtype=torch.int64)
        inputs = self.images[[self.members.items[j][0] for j in padded]].to(self.runtime.device)
        seeds = seeds.to(self.runtime.device)
        try:
            flops = _flops_per_mask(self.model, inputs[:1], seeds[:1], self.runtime.autocast()) if count_flops else None
            with self.runtime.autocast():
                output = getattr(self.model, self.method)(inputs, seeds)
        except torch.cuda.OutOfMemoryError:
            return None
        pred = _unpack(output, inputs.shape, self.model_name, self.method)
        own = pred.uncertainty if self.keep_own_uncertainty else None
        return Prediction(pred.probabilities.float().cpu()[:len(batch)],
                          None if own is None else own.float().cpu()[:len(batch)]), flops

    def halved(self, batch_size: int) -> int:
        """The batch size to redo a batch with after GPU out-of-memory (with the cache emptied)."""
        if batch_size == 1:
            raise SegbenchError(f"model {self.model_name!r} runs out of GPU memory on a single mask; "
                                "use a smaller --image-size or preset, or --device cpu")
        if self.runtime.device.type == "cuda":
            torch.cuda.empty_cache()
        return batch_size // 2


def _predict_pending(network: _Network, results: dict[int, MaskOutput], batch_size: int, *,
                     committed: BatchStore | None, on_batch: Callable[[int, int], None] | None,
                     should_stop: Callable[[], bool] | None, count_flops: bool) -> tuple[int, float | None]:
    """Predict this process's members missing from `results` into it, batch by batch; returns (the batch
    shape the network last ran on, FLOPs per mask where counted)."""
    mine = network.members.mine
    todo = [j for j in mine if j not in results]
    shape, flops, lo = network.shape(batch_size), None, 0
    while lo < len(todo):
        if should_stop is not None and should_stop():
            raise Stopped(f"while predicting with {network.model_name} ({len(results)} of {len(mine)} masks committed)")
        batch = todo[lo:lo + batch_size]
        done = network.run(batch, shape, count_flops and flops is None)
        if done is None:  # redo this batch in a smaller shape (results may change in the last bits; recorded by the caller)
            batch_size = network.halved(batch_size)
            shape = network.shape(batch_size)
            continue
        pred, counted = done
        flops = flops if counted is None else counted
        probs, own = pred.probabilities, pred.uncertainty
        if committed is not None:
            committed.commit([network.members.keys[j] for j in batch], probs, own)
        results.update({j: (probs[b].numpy(), None if own is None else own[b].numpy()) for b, j in enumerate(batch)})
        lo += len(batch)
        if on_batch:
            on_batch(lo + len(mine) - len(todo), len(mine))
    return shape, flops


def _gathered(results: dict[int, MaskOutput], members: _Members, dist: Distributed) -> list[MaskOutput]:
    """Every process's masks in item order."""
    merged = {j: value for part in gather({j: results[j] for j in members.mine}, dist) for j, value in part.items()}
    return [merged[j] for j in range(len(members.items))]


def _fused(masks: list[MaskOutput], n: int, evaluation: EvaluationPlan,
           paper_fusion: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(probabilities (n, 1, H, W) clamped to [0, 1], uncertainty or None): with ensemble > 1 the members
    fused by `evaluation.fusion` (`segbench.fusion`; "paper": by `paper_fusion`); with 1 member, the model's
    own uncertainty if every mask has one."""
    probs = torch.from_numpy(np.stack([p for p, _ in masks])).clamp_(0, 1)
    if evaluation.ensemble == 1:
        own = [u for _, u in masks]
        return probs, None if any(u is None for u in own) else torch.from_numpy(np.stack(own))
    members = probs.view(n, evaluation.ensemble, *probs.shape[1:])
    return fuse(model_fusion(evaluation.fusion, paper_fusion), members, evaluation.threshold)


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
    paper_fusion: str = "mean",
) -> SplitPredictions:
    """Predict every sample `evaluation.ensemble` times; members of all samples are folded into batches.

    Member k of sample i is predicted with seed sample_seed(run_seed, id_i, k), in batches of
    `evaluation.batch_size` masks, and the network always runs on batches of exactly
    `batch_shape(evaluation.batch_size, ...)` masks (on the CPU a multiple of 32, 64 in bf16; padded with
    copies of the batch's first mask, whose outputs are discarded), so every mask sees the same kernels: a
    sample's probabilities do not depend on which samples share its batch, its position, the evaluated
    subset or the process count.
    With several processes (`runtime.dist`) each predicts the samples i with i % world == rank and the
    results are gathered in sample order. With ensemble > 1 each sample's members are fused by
    `evaluation.fusion` (`segbench.fusion`: mean and std, vote, STAPLE; "paper": `paper_fusion`, the rule of
    the model's paper, `ModelSpec.fusion`), each sample on its own; with 1 member, the model's own uncertainty
    if any.
    With `committed`, each batch is committed as it finishes and committed masks are read back instead of
    predicted, so a resumed evaluation (with any process count) is bit-identical. A batch that runs out of
    GPU memory is halved and redone (a smaller batch shape, which may change the last bits; the caller
    records `SplitPredictions.batch_size`). `should_stop()` is asked between batches: True raises Stopped.
    With `count_flops`, torch.utils.flop_counter counts the FLOPs of predicting one mask (what it knows how to
    count: convolutions, matrix products, attention) in an extra pass whose output is dropped.
    """
    ensemble = evaluation.ensemble
    if ensemble < 1:
        raise SegbenchError(f"--ensemble must be at least 1, got {ensemble}")
    if evaluation.batch_size < 1:
        raise SegbenchError(f"--eval-batch-size must be at least 1, got {evaluation.batch_size}")
    model.to(runtime.device).eval()
    members = _Members.of(data.ids, ensemble, runtime.dist)
    results: dict[int, MaskOutput] = {}
    if committed is not None:
        results = {j: found for j in members.mine if (found := committed.get(members.keys[j])) is not None}
    images, _ = data.tensors()
    start = time.perf_counter()
    network = _Network(model, images, members, run_seed, runtime, model_name, keep_own_uncertainty=ensemble == 1)
    shape, flops = _predict_pending(network, results, evaluation.batch_size, committed=committed,
                                    on_batch=on_batch, should_stop=should_stop, count_flops=count_flops)
    seconds = time.perf_counter() - start
    probabilities, uncertainty = _fused(_gathered(results, members, runtime.dist), len(data), evaluation, paper_fusion)
    return SplitPredictions(probabilities, uncertainty, seconds, shape, flops)


@torch.inference_mode()
def map_split(model: nn.Module, ids: Sequence[str], images: torch.Tensor, method: str, batch_size: int, *,
              run_seed: int, runtime: Runtime, model_name: str = "model") -> torch.Tensor:
    """`model.<method>(images, seeds)` over every sample, run as `predict_split` runs `predict` with one
    member (the same seeds, batch shape, padding, precision and shards): images float32 (N, 1, H, W) on the
    CPU -> outputs float32 (N, 1, H, W) on the CPU, on every process."""
    model.to(runtime.device).eval()
    members = _Members.of(ids, 1, runtime.dist)
    network = _Network(model, images, members, run_seed, runtime, model_name, keep_own_uncertainty=False,
                       method=method)
    results: dict[int, MaskOutput] = {}
    _predict_pending(network, results, batch_size, committed=None, on_batch=None, should_stop=None, count_flops=False)
    return torch.from_numpy(np.stack([outputs for outputs, _ in _gathered(results, members, runtime.dist)]))
