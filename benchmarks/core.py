"""Core throughput on this machine: phantom generation, cache build and cached loading,
U-Net and Res50AttUNet training and inference (images/s at 64x64).

    python benchmarks/core.py            # writes benchmarks/results/core.json
"""

from __future__ import annotations

import os
import tempfile
import time

import torch

from _common import build, median_seconds, write_json
from segbench import DatasetOptions
from segbench.data.prepare import load_split
from segbench.plugins import load_plugins

SIZE = 64


def data_throughput(registry) -> dict[str, float]:
    spec = registry.dataset("cxr-phantom")
    options = DatasetOptions("infection", None, SIZE, 0)
    source = spec.factory(options)
    ids = source.sample_ids("train")
    n = len(ids)
    start = time.perf_counter()
    for sample_id in ids:
        source.load("train", sample_id)
    generate = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SEGBENCH_CACHE"] = cache
        start = time.perf_counter()
        load_split(spec, source, options, "train")  # generate, resize, validate, write the cache
        build = time.perf_counter() - start
        cached = median_seconds(lambda: load_split(spec, source, options, "train"), repeats=10)
    return {"images": n, "generate_images_per_s": n / generate, "cache_build_images_per_s": n / build, "cached_load_images_per_s": n / cached}


def model_throughput(registry, name: str, batch: int = 16) -> dict[str, float]:
    model, _ = build(registry, name, "small", SIZE, seed=0)
    images = torch.rand(batch, 1, SIZE, SIZE)
    masks = (torch.rand(batch, 1, SIZE, SIZE) > 0.5).float()
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

    def step() -> None:
        loss = model.training_loss(images, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    train_s = median_seconds(step, repeats=5)
    model.eval()
    seeds = torch.arange(batch)
    with torch.inference_mode():
        infer_s = median_seconds(lambda: model.predict(images, seeds), repeats=5)
    return {"batch": batch, "train_images_per_s": batch / train_s, "predict_images_per_s": batch / infer_s,
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    registry = load_plugins()
    results = {"data": data_throughput(registry)}
    print(f"phantom: {results['data']}")
    for name in ("unet", "res50attunet"):
        results[name] = model_throughput(registry, name)
        print(f"{name}: {results[name]}")
    write_json("core", results)


if __name__ == "__main__":
    main()
