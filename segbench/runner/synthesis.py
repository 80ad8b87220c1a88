"""Images a trained generative model synthesises (its optional `synthesize(seeds)`), kept for the report's
grid beside real ones, with FID and KID against the evaluated test images where the user gives Inception
weights on disk (`SEGBENCH_INCEPTION_WEIGHTS`); segbench downloads nothing."""

from __future__ import annotations

import os

import numpy as np
import torch

from segbench.engine.device import batch_shape
from segbench.errors import SegbenchError
from segbench.plan.run_plan import ModelPlan
from segbench.runner.context import RunContext
from segbench.seeds import derive_seed

GRID_IMAGES = 16  # what the report's grid shows
WEIGHTS_VARIABLE = "SEGBENCH_INCEPTION_WEIGHTS"
NO_WEIGHTS = (f"no FID/KID: set {WEIGHTS_VARIABLE} to torch-fidelity's Inception weights file "
              "(weights-inception-2015-12-05-6726825d.pth) to compute them; segbench downloads nothing")


def synthesize(model: ModelPlan, network: torch.nn.Module, context: RunContext) -> dict[str, float | int | str]:
    """What a model with `synthesize` made after training: the images (written to the run directory by
    rank 0), and models.json's record of them (how many; FID and KID, or why there are none). One image per
    seed derived from (run seed, model, index), in batches of the evaluation's shape."""
    make = getattr(network, "synthesize", None)
    if not callable(make):
        return {}
    weights = os.environ.get(WEIGHTS_VARIABLE)
    count = len(context.test_data) if weights else GRID_IMAGES
    seeds = torch.tensor([derive_seed("synthetic", context.plan.seed, model.name, i) for i in range(count)])
    runtime = context.runtime
    shape = batch_shape(context.plan.evaluation.batch_size, runtime.device, runtime.precision)
    images = []
    with torch.inference_mode(), runtime.autocast():
        for part in seeds.split(shape):
            padded = torch.cat([part, part[:1].expand(shape - len(part))])  # the batch shape predictions use
            images.append(make(padded.to(runtime.device)).float().cpu()[:len(part)])
    synthetic = torch.cat(images).clamp(0, 1)
    if runtime.dist.main:
        context.store.write_synthetic(model.name, (synthetic[:, 0].numpy() * 255).round().astype(np.uint8))
    record: dict[str, float | int | str] = {"images": count}
    if not weights:
        return {**record, "fidelity": NO_WEIGHTS}
    from segbench.metrics.fidelity import fid_kid

    real, _ = context.test_data.tensors()
    try:
        scores = fid_kid(real, synthetic, weights=weights)
    except SegbenchError as exc:
        return {**record, "fidelity": f"no FID/KID: {exc}"}
    return {**record, **scores, "fidelity": f"against the {len(real)} evaluated test images"}
