"""What a training stage sees of the data (`segbench.specs.Stage.view`): labelled pairs, images without
masks, or healthy images without masks; from the training split or, where a stage asks, validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from segbench.data.labels import labelled_subset
from segbench.data.prepare import SplitData
from segbench.errors import SegbenchError
from segbench.specs import Stage


@dataclass(frozen=True)
class TrainingView:
    """A stage's data: ids (N,), images uint8 (N, H, W), masks uint8 (N, H, W) in {0, 1} for the labelled
    view and None for the others, so a stage that asks for images never receives a mask."""

    ids: list[str]
    images: np.ndarray
    masks: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> int:
        """How many masks the stage reads."""
        return 0 if self.masks is None else len(self.ids)


def healthy(data: SplitData, group: tuple[str, str] | None) -> np.ndarray:
    """Indices of the healthy images: the dataset's healthy group (metadata key, value) where it names one,
    else the images whose reference is empty."""
    if group is not None:
        key, value = group
        return np.flatnonzero(np.asarray(data.metadata[key]) == value)
    return np.flatnonzero(~data.masks.reshape(len(data), -1).any(axis=1))


def labelled_view(data: SplitData, labels: int | None, labels_seed: int) -> TrainingView:
    """`data`'s labelled images under a budget of `labels` (None: all), with their masks: a labelled stage's
    view of its split and, drawn from the validation split, the masks checkpoint selection scores on."""
    index = labelled_subset(data, labels, labels_seed)
    return TrainingView([data.ids[i] for i in index], data.images[index], data.masks[index])


def stage_view(stage: Stage, splits: Mapping[str, SplitData], labels: int | None, labels_seed: int,
               healthy_group: tuple[str, str] | None, task: str) -> TrainingView:
    """The data `stage` trains on: its split's labelled images (a budget of `labels`, the same images for
    every model and machine), every image of its split, or the healthy ones."""
    data = splits[stage.split]
    if stage.view == "labelled":
        return labelled_view(data, labels, labels_seed)
    index = np.arange(len(data)) if stage.view == "images" else healthy(data, healthy_group)
    if stage.view == "healthy":
        what = (f"the dataset's healthy group {healthy_group[0]}={healthy_group[1]}" if healthy_group
                else "images with an empty reference")
        if not len(index) or data.masks[index].any():
            found = "has none" if not len(index) else "shows the target in them"
            raise SegbenchError(f"stage {stage.name!r} trains on healthy images ({what}), and the {stage.split} split "
                                f"of task {task!r} {found}: a model of anomalies segments what healthy images "
                                "lack, so it needs a task whose target is absent from them (e.g. infection, not lung)")
    return TrainingView([data.ids[i] for i in index], data.images[index], None)
