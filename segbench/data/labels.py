"""Label budgets: which training images keep their masks under `--labels N`.

The order in which images receive labels is fixed by the labels seed and the sample ids alone (not by the
run seed, the machine, the process count or the order a dataset lists its samples), stratified, and a
budget of N takes its first N, so budgets are nested: the 20 labelled images are among the 50.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from segbench.data.prepare import SplitData
from segbench.errors import SegbenchError
from segbench.seeds import derive_seed

STRATUM_KEY = "group"  # a dataset's metadata key that labelled subsets are stratified by, where it has one


def strata(data: SplitData) -> list[str]:
    """Each image's stratum: whether its reference is empty, and its metadata `group` where there is one."""
    empty = ~data.masks.reshape(len(data), -1).any(axis=1)
    groups = data.metadata.get(STRATUM_KEY, [""] * len(data))
    return [f"{'empty' if e else 'foreground'}|{g}" for e, g in zip(empty, groups)]


def labelled_order(data: SplitData, labels_seed: int) -> np.ndarray:
    """Every index of `data`, in the order images receive labels.

    Within a stratum, images are ordered by a seed derived from (labels seed, sample id); the strata are
    interleaved so that any prefix holds each stratum in proportion: the k-th of a stratum of n images
    sits at (k + 0.5) / n, ties broken by the strata's sorted names.
    """
    of = strata(data)
    names = sorted(set(of))
    position = np.empty(len(data))
    for name in names:
        members = [i for i, s in enumerate(of) if s == name]
        members.sort(key=lambda i: derive_seed("labels", labels_seed, data.ids[i]))
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    rank = np.array([names.index(s) for s in of])
    return np.lexsort((rank, position))


def labelled_subset(data: SplitData, labels: int | None, labels_seed: int) -> np.ndarray:
    """The indices of the labelled images of a budget of `labels` (None: all), in the split's own order."""
    if labels is None or labels >= len(data):
        return np.arange(len(data))
    return np.sort(labelled_order(data, labels_seed)[:labels])


def labelled_ids(splits: Mapping[str, SplitData], labels: int | None, labels_seed: int) -> dict[str, list[str]]:
    """Per split a stage may train on, the ids of its labelled images under a budget of `labels`."""
    return {name: [data.ids[i] for i in labelled_subset(data, labels, labels_seed)] for name, data in splits.items()}


def check_budget(labels: int | None, splits: Mapping[str, SplitData]) -> None:
    """A budget below the size of every split it applies to: at or above it, `--labels N` would mean every
    mask, which is `--labels all` (one name for one setting, so a study plans one cell for it)."""
    for name, data in splits.items():
        if labels is not None and labels >= len(data):
            raise SegbenchError(f"--labels {labels}: the {name} split has {len(data)} images, so a budget of "
                                f"{labels} would label all of them; use --labels all, or a number below {len(data)}")
