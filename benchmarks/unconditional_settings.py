"""What the settings of the DDPM-based segmenters do, on a finished run's trained DDPM (nothing is trained
again but ddpm-features' pixel MLPs): the evidence behind their presets and the label study's closing note.

    python benchmarks/unconditional_settings.py anomaly RUN_DIR   # an anomaly-ddpm run
    python benchmarks/unconditional_settings.py features RUN_DIR  # a ddpm-features run
    # results/unconditional_settings-<anomaly|features>.json

anomaly: for start steps, reconstructions per start (noise draws whose residuals are averaged) and
smoothing: the threshold calibrated on the run's healthy validation images at its false-positive rate,
the image-level AUROC of the score (an image's 99% quantile, images with infection against healthy ones),
and the per-image Dice over the test images with foreground at that threshold and at the best threshold
on the test set (an upper bound). Seeds: test image i draws from seed i, validation image i from 10000 + i.

features: for feature timesteps and decoder blocks, a fresh ensemble of pixel MLPs (the run's preset:
members, widths, pixels per step, steps, Adam with cosine decay; torch seed 0) on the run's labelled
images' features, computed once; the per-image Dice over all test images and over those with foreground.
"""

from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import write_json

from segbench.data.labels import labelled_subset
from segbench.data.prepare import SplitData, load_split
from segbench.data.views import healthy
from segbench.metrics.calibration import auroc
from segbench.plugins import Registry, load_plugins
from segbench.reports.upper_bound import per_image_dice
from segbench.results import load_run

ANOMALY_STARTS = ((100,), (200,), (300,), (100, 200, 300))
ANOMALY_DRAWS = (1, 4)
ANOMALY_SIGMAS = (1.0, 2.0)
FEATURE_CONFIGS = (  # (timesteps, decoder blocks of the small U-Net: 0-1 at 16 px, 2-3 at 32 px, 4-5 at 64 px)
    ((50, 150, 250), (1, 2, 3, 4)),  # the preset: the paper's blocks mapped by position
    ((50, 150, 250), (0, 1, 2, 3, 4, 5)), ((50, 150, 250), (2, 3, 4, 5)),
    ((10, 50, 100), (1, 2, 3, 4)), ((100, 250, 400), (1, 2, 3, 4)), ((150,), (1, 2, 3, 4)),
)


def trained_model(registry: Registry, run_dir: Path, name: str, last_stage: str):
    """(model with the run's weights, its run plan)."""
    plan = load_run(run_dir).record_of(name).plan
    model_plan = next(m for m in plan.models if m.name == name)
    model = registry.model(name).factory(model_plan.factory_input(plan.data.image_size))
    state = torch.load(run_dir / "checkpoints" / name / last_stage / "last.pt", weights_only=False, map_location="cpu")
    model.load_state_dict(state["model"])
    return model.eval(), plan, model_plan


def splits(registry: Registry, plan) -> dict[str, SplitData]:
    spec = registry.dataset(plan.data.dataset)
    options = plan.data.options(plan.seed)
    source = spec.factory(options)
    return {split: load_split(spec, source, options, split) for split in ("train", "val", "test")}


def tensor(data: SplitData, index=slice(None)) -> torch.Tensor:
    return data.tensors(index)[0]


def anomaly(registry: Registry, run_dir: Path) -> dict:
    from segbench.noise import sample_generators
    from segbench_unconditional.anomaly import fit_threshold, gaussian_smooth, score_probability

    model, plan, _ = trained_model(registry, run_dir, "anomaly-ddpm", "calibration")
    data = splits(registry, plan)
    validation = tensor(data["val"], healthy(data["val"], registry.dataset(plan.data.dataset).healthy))
    test, masks = tensor(data["test"]), data["test"].masks.astype(bool)
    foreground = masks.reshape(len(masks), -1).any(1)
    hp = model.hparams

    def residuals(images: torch.Tensor, first_seed: int, t: int, draws: int) -> list[torch.Tensor]:
        generators = sample_generators(torch.arange(len(images)) + first_seed)
        return [(images - model.ddpm.reconstruct(images, t, hp.reconstruction_steps, generators)).abs()
                for _ in range(draws)]

    starts = sorted({t for combo in ANOMALY_STARTS for t in combo})
    cached = {(split, t): (residuals(validation, 10000, t, max(ANOMALY_DRAWS)) if split == "val" else
                           residuals(test, 0, t, max(ANOMALY_DRAWS)))
              for split, t in itertools.product(("val", "test"), starts)}
    rows = []
    for combo, draws, sigma in itertools.product(ANOMALY_STARTS, ANOMALY_DRAWS, ANOMALY_SIGMAS):
        def score(split: str) -> torch.Tensor:
            maps = [r for t in combo for r in cached[(split, t)][:draws]]
            return gaussian_smooth(torch.stack(maps).mean(0), sigma)
        tau, scale = fit_threshold(score("val"), hp.false_positive_rate)
        p = score_probability(score("test"), tau, scale)[:, 0].numpy()
        at_threshold = float(per_image_dice(p, masks, 0.5)[foreground].mean())
        searched = {round(float(t), 2): float(per_image_dice(p, masks, t)[foreground].mean())
                    for t in np.arange(0.05, 1.0, 0.05)}
        best = max(searched, key=searched.get)
        image_auroc = float(auroc(np.quantile(p.reshape(len(p), -1), 0.99, axis=1), foreground))
        rows.append({"start_steps": list(combo), "reconstructions": draws, "smoothing_sigma": sigma,
                     "network_evaluations": len(combo) * draws * hp.reconstruction_steps, "image_auroc": image_auroc,
                     "dice_foreground": at_threshold, "best_threshold": best, "best_dice_foreground": searched[best]})
        print(f"starts {combo} x {draws} draws, sigma {sigma:g}: AUROC {image_auroc:.4f}, Dice (foreground) "
              f"{at_threshold:.4f}, best {searched[best]:.4f} at {best:g}", flush=True)
    return {"run": str(run_dir), "seed": plan.seed, "validation_healthy": len(validation), "test": len(test),
            "test_with_foreground": int(foreground.sum()), "rows": rows}


def features(registry: Registry, run_dir: Path) -> dict:
    from segbench_unconditional.features import PixelMLPEnsemble, as_pixels, pixel_features

    model, plan, model_plan = trained_model(registry, run_dir, "ddpm-features", "mlp")
    data = splits(registry, plan)
    index = labelled_subset(data["train"], plan.data.labels, plan.data.labels_seed)
    images, labelled_masks = data["train"].tensors(index)
    test, masks = tensor(data["test"]), data["test"].masks.astype(bool)
    foreground = masks.reshape(len(masks), -1).any(1)
    hp, mlp = model.hparams, model_plan.stages["mlp"]
    blocks = range(len(hp.decoder_blocks))
    offsets = np.cumsum([0, *(c for c, _ in hp.decoder_blocks)])
    timesteps = sorted({t for ts, _ in FEATURE_CONFIGS for t in ts})

    def all_features(x: torch.Tensor) -> dict[int, torch.Tensor]:
        return {t: torch.cat([pixel_features(model.ddpm, x[i:i + 32], [t], blocks, model.feature_noise)
                              for i in range(0, len(x), 32)]) for t in timesteps}

    train_features, test_features = all_features(images), all_features(test)

    def chosen(cache: dict[int, torch.Tensor], ts, bs) -> torch.Tensor:
        return torch.cat([cache[t][:, offsets[b]:offsets[b + 1]] for t in ts for b in bs], dim=1)

    rows = []
    for ts, bs in FEATURE_CONFIGS:
        torch.manual_seed(0)
        pixels, targets = as_pixels(chosen(train_features, ts, bs)), labelled_masks.reshape(-1)
        ensemble = PixelMLPEnsemble(pixels.shape[1], hp.mlp_widths, hp.ensemble_size)
        optimiser = torch.optim.Adam(ensemble.parameters(), mlp.lr)
        steps = mlp.steps
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
        for _ in range(steps):
            pick = torch.rand(hp.ensemble_size, len(pixels)).argsort(1)[:, :hp.pixels_per_step]
            loss = F.binary_cross_entropy_with_logits(ensemble.member_logits(pixels[pick]), targets[pick])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        ensemble.eval()
        with torch.no_grad():
            maps = chosen(test_features, ts, bs)
            p = torch.cat([ensemble(as_pixels(maps[i:i + 8])).sigmoid().mean(0) for i in range(0, len(maps), 8)])
        per_image = per_image_dice(p.reshape(masks.shape).numpy(), masks, 0.5)
        rows.append({"feature_timesteps": list(ts), "feature_blocks": list(bs), "features_per_pixel": pixels.shape[1],
                     "dice": float(per_image.mean()), "dice_foreground": float(per_image[foreground].mean())})
        print(f"t {ts}, blocks {bs}: Dice {per_image.mean():.4f}, with foreground {per_image[foreground].mean():.4f}",
              flush=True)
    return {"run": str(run_dir), "seed": plan.seed, "labelled": len(index), "test": len(test),
            "test_with_foreground": int(foreground.sum()), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("anomaly", "features"))
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    registry = load_plugins()
    result = (anomaly if args.what == "anomaly" else features)(registry, args.run_dir)
    write_json(f"unconditional_settings-{args.what}", result)


if __name__ == "__main__":
    main()
