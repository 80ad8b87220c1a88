"""Memorisation check for a few-label run on the phantom (docs/results.md, "Why the 16-label U-Net collapsed").

Scores a finished run's model on its own labelled training images and on training images it never saw
labelled, with `segbench predict` (the run's own preprocessing and threshold): a model that reproduces its
labelled images and predicts nothing on the others has memorised them.

    python docs/check_memorisation.py RUN_DIR --model unet --out /tmp/memorisation [--unseen 64]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segbench.metrics.confusion import confusion_counts
from segbench.metrics.definitions import dice


def image_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """The protocol's per-image Dice (its confusion counts and empty-mask policy) of two boolean masks."""
    counts = confusion_counts(torch.from_numpy(prediction).float()[None, None],
                              torch.from_numpy(reference).float()[None, None])
    return float(dice(*counts)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--unseen", type=int, default=64, help="training images not labelled, the first N by id order")
    args = parser.parse_args()
    cache = sorted(Path.home().glob(".cache/segbench/cxr-phantom-infection-train-64-*.npz"))
    if not cache:
        raise SystemExit("no prepared phantom training split in ~/.cache/segbench: run the run's command first")
    data = np.load(cache[0])
    ids = [str(i) for i in data["ids"]]
    with open(args.run_dir / "labelled.csv") as f:
        labelled = [row["sample_id"] for row in csv.DictReader(f) if row["split"] == "train"]
    groups = {"labelled": labelled, "unseen": [i for i in ids if i not in set(labelled)][:args.unseen]}
    for group, members in groups.items():
        folder = args.out / group / "images"
        folder.mkdir(parents=True, exist_ok=True)
        for sample in members:
            Image.fromarray(data["images"][ids.index(sample)]).save(folder / f"{sample.replace('/', '_')}.png")
        predicted = args.out / group / "predicted"
        subprocess.run(["segbench", "predict", str(args.run_dir), str(folder), "--model", args.model,
                        "--out", str(predicted)], check=True, capture_output=True)
        scores, infected = [], []
        for sample in members:
            reference = data["masks"][ids.index(sample)] > 0
            mask = np.array(Image.open(predicted / "images" / f"{sample.replace('/', '_')}.mask.png")) > 0
            scores.append(image_dice(mask, reference))
            infected.append(bool(reference.any()))
        scores_a, infected_a = np.array(scores), np.array(infected)
        print(f"{group}: {len(members)} images; Dice {scores_a[infected_a].mean():.3f} on the {infected_a.sum()} with "
              f"infection, {scores_a[~infected_a].mean():.3f} on the {(~infected_a).sum()} without")


if __name__ == "__main__":
    main()
