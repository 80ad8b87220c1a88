"""Prediction over a split with per-sample seeds, ensembles folded into the batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from segbench.data import SplitData
from segbench.engine.device import Runtime
from segbench.errors import SegbenchError
from segbench.plan.run_plan import EvaluationPlan
from segbench.results.committed import CommittedBatches
from segbench.seeds import sample_seed
from segbench.specs import Prediction


@dataclass
class SplitPredictions:
    """Per-sample outputs: probabilities float32 (N, 1, H, W) in [0, 1]; uncertainty (per-pixel std) or None."""

    probabilities: torch.Tensor
    uncertainty: torch.Tensor | None
    seconds: float


def _unpack(output: torch.Tensor | Prediction, expected: torch.Size, model_name: str) -> Prediction:
    pred = output if isinstance(output, Prediction) else Prediction(output)
    if not isinstance(pred.probabilities, torch.Tensor) or pred.probabilities.shape != expected:
        got = getattr(pred.probabilities, "shape", type(pred.probabilities).__name__)
        raise SegbenchError(f"model {model_name!r}: predict returned {got}, expected probabilities of shape {tuple(expected)}")
    return pred


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
    committed: CommittedBatches | None = None,
) -> SplitPredictions:
    """Predict every sample `evaluation.ensemble` times; members of all samples are folded into batches
    of at most `evaluation.batch_size`.

    Member k of sample i is predicted with seed sample_seed(run_seed, id_i, k), so
    the result of a sample does not depend on the batch size or its batch neighbours.
    With ensemble > 1 the probabilities are the members' mean and the uncertainty
    their per-pixel (population) std; with 1 member, the model's own uncertainty if any.
    With `committed`, each batch is committed to it as it finishes, and batches it already
    holds are read back instead of predicted, so a resumed evaluation is bit-identical.
    The batch size is a cap: a batch that runs out of GPU memory is halved and redone.
    The network runs in `runtime`'s precision, as in training.
    """
    ensemble, batch_size, device = evaluation.ensemble, evaluation.batch_size, runtime.device
    if ensemble < 1:
        raise SegbenchError(f"--ensemble must be at least 1, got {ensemble}")
    if batch_size < 1:
        raise SegbenchError(f"--eval-batch-size must be at least 1, got {batch_size}")
    model.to(device).eval()
    n = len(data)
    # Work items ordered member-major inside each sample: (sample i, member k).
    items = [(i, k) for i in range(n) for k in range(ensemble)]
    seeds = torch.tensor([sample_seed(run_seed, data.ids[i], k) for i, k in items], dtype=torch.int64)
    sample_index = torch.tensor([i for i, _ in items])
    images, _ = data.tensors()
    size = images.shape[-2:]
    probs = torch.empty((len(items), 1, *size), dtype=torch.float32)
    own_uncertainty: torch.Tensor | None = None
    network_precision = runtime.autocast()
    start = time.perf_counter()
    lo = 0
    while lo < len(items):
        hi = min(lo + batch_size, len(items))
        keys = [(data.ids[i], k) for i, k in items[lo:hi]]
        done = committed.lookup(keys) if committed is not None else None
        if done is None:
            batch = images[sample_index[lo:hi]].to(device)
            try:
                with network_precision:
                    output = model.predict(batch, seeds[lo:hi].to(device))
            except torch.cuda.OutOfMemoryError:
                # the batch size is a cap: halve it and redo this batch (results do not depend on it)
                if hi - lo == 1:
                    raise SegbenchError(f"model {model_name!r} runs out of GPU memory on a single mask; "
                                        "use a smaller --image-size or preset, or --device cpu") from None
                del batch
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                batch_size = (hi - lo) // 2
                continue
            pred = _unpack(output, batch.shape, model_name)
            own = pred.uncertainty.float().cpu() if pred.uncertainty is not None and ensemble == 1 else None
            done = (pred.probabilities.float().cpu(), own)
            if committed is not None:
                committed.commit(lo, keys, *done)
        probs[lo:hi] = done[0]
        if done[1] is not None:
            if own_uncertainty is None:
                own_uncertainty = torch.zeros_like(probs)
            own_uncertainty[lo:hi] = done[1]
        if on_batch:
            on_batch(hi, len(items))
        lo = hi
    seconds = time.perf_counter() - start
    if ensemble == 1:
        return SplitPredictions(probs.clamp_(0, 1), own_uncertainty, seconds)
    members = probs.clamp_(0, 1).view(n, ensemble, 1, *size)
    return SplitPredictions(members.mean(1), members.std(1, correction=0), seconds)
