"""Peak memory of ddpm-features' MLP stage on a training set the size of COVID-QU-Ex's infection training
split (3,728 images at 64x64) against the phantom's 480, and what holding every feature at once would take.

    python benchmarks/ddpm_features_memory.py [--preset small] [--steps 5]
    # results/ddpm_features_memory-<preset>.json

Each size runs in a fresh process (the peak resident memory, ru_maxrss, is a process's): the model at the
preset, its `mlp` stage trained by the engine's loop for a few steps on random uint8 images, masks and a
frozen (untrained) DDPM; the features are computed batch by batch inside the loss, so the peak should not
grow with the training set beyond the images themselves (4 KB each at 64x64, uint8).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from _common import write_json

SIZES = (480, 3728)  # the phantom's training split, COVID-QU-Ex infection's


def measure(preset: str, images: int, steps: int) -> dict[str, float]:
    """In this process: train the mlp stage for `steps` steps on `images` random images; peak RSS in MB."""
    import numpy as np
    import torch

    from segbench.data.views import TrainingView
    from segbench.engine.device import Runtime
    from segbench.engine.training import Objective, train
    from segbench.plan.build import plan_model
    from segbench.plugins import load_plugins

    registry = load_plugins()
    spec = registry.model("ddpm-features")
    plan = plan_model(spec, "ddpm-features", preset, "infection", 64)
    model = spec.factory(plan.factory_input(64))
    rng = np.random.default_rng(0)
    view = TrainingView([f"train/{i}" for i in range(images)], rng.integers(0, 256, (images, 64, 64), np.uint8),
                        (rng.random((images, 64, 64)) > 0.8).astype(np.uint8))
    settings = plan.stage_training("mlp").__class__(**{**plan.stage_training("mlp").to_json(), "steps": steps,
                                                       "epochs": None})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train(model, view, settings, seed=0, runtime=Runtime(torch.device("cpu"), "fp32"),
          objective=Objective("training_loss", "ensemble"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    d = model.hparams.features_per_pixel
    return {"images": images, "steps": steps, "batch_size": settings.batch_size, "features_per_pixel": d,
            "peak_rss_mb": round(peak, 1), "rss_before_training_mb": round(before, 1),
            "all_features_gb": round(images * 64 * 64 * d * 4 / 1e9, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--images", type=int, default=None, help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()
    if args.images is not None:
        print(json.dumps(measure(args.preset, args.images, args.steps)))
        return
    rows = []
    for images in SIZES:
        done = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                               "--images", str(images)], check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    write_json(f"ddpm_features_memory-{args.preset}", {"preset": args.preset, "runs": rows})


if __name__ == "__main__":
    main()
