"""k-fold cross-validation: every sample of a dataset in one of k folds, written once to a file that every
model and seed of a study reuses; fold i is the test split, the other folds train."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from segbench.data.prepare import SOURCE_SPLITS, SplitData, load_split
from segbench.progress import Progress
from segbench.errors import SegbenchError
from segbench.io import atomic_write_text
from segbench.seeds import stable_digest
from segbench.specs import DatasetOptions, DatasetSpec, SegmentationSource

FOLDS_FORMAT = 1


def assign_folds(ids: Mapping[str, Sequence[str]], k: int, seed: int) -> list[tuple[str, str, int]]:
    """(split, sample id, fold) for every sample: ordered by a seeded hash of (split, id), then dealt
    round-robin, so folds differ in size by at most one and adding a sample moves few others."""
    if k < 2:
        raise SegbenchError(f"folds.k must be at least 2, got {k}")
    samples = [(split, sample_id) for split, split_ids in ids.items() for sample_id in split_ids]
    if len(samples) < k:
        raise SegbenchError(f"folds.k={k} is more than the {len(samples)} samples of the dataset")
    order = sorted(samples, key=lambda s: stable_digest("fold", seed, *s))
    return [(split, sample_id, i % k) for i, (split, sample_id) in enumerate(order)]


def write_folds(path: Path, source: SegmentationSource, k: int, seed: int) -> None:
    """The folds file of `source` (every split it has), unless one already exists."""
    if path.exists():
        return
    ids = {}
    for split in SOURCE_SPLITS:
        try:
            ids[split] = list(source.sample_ids(split))
        except SegbenchError:  # a dataset without that split
            continue
    samples = assign_folds(ids, k, seed)
    atomic_write_text(path, json.dumps({"format": FOLDS_FORMAT, "k": k, "seed": seed, "samples": samples}) + "\n")


def read_folds(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
        data["samples"] = [(str(split), str(sample_id), int(fold)) for split, sample_id, fold in data["samples"]]
        return data
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SegbenchError(f"folds file {path} cannot be read ({type(exc).__name__}: {exc}); delete it to "
                            "write it again") from None


def fold_splits(spec: DatasetSpec, source: SegmentationSource, options: DatasetOptions, path: Path,
                fold: int, progress: Progress | None = None) -> tuple[SplitData, SplitData]:
    """(train, test) of fold `fold`: the test split is that fold, training is every other fold."""
    data = read_folds(path)
    if not 0 <= fold < data["k"]:
        raise SegbenchError(f"--fold {fold} is not a fold of {path}; valid: 0 to {data['k'] - 1}")
    splits = {split: load_split(spec, source, options, split, progress)
              for split in sorted({s for s, _, _ in data["samples"]})}
    index = {split: {sample_id: i for i, sample_id in enumerate(split_data.ids)} for split, split_data in splits.items()}

    def gather(members: list[tuple[str, str]]) -> SplitData:
        missing = [m for m in members if m[1] not in index[m[0]]]
        if missing:
            raise SegbenchError(f"folds file {path} lists {missing[0][0]} sample {missing[0][1]!r}, which the dataset "
                                "no longer has; delete the folds file to write it again")
        images = np.stack([splits[s].images[index[s][i]] for s, i in members])
        masks = np.stack([splits[s].masks[index[s][i]] for s, i in members])
        keys = [k for k in next(iter(splits.values())).metadata if all(k in d.metadata for d in splits.values())]
        metadata = {key: [splits[s].metadata[key][index[s][i]] for s, i in members] for key in keys}
        return SplitData([i for _, i in members], images, masks, metadata)

    test = [(s, i) for s, i, f in data["samples"] if f == fold]
    train = [(s, i) for s, i, f in data["samples"] if f != fold]
    return gather(train), gather(test)
