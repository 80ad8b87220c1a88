"""Sample ids of sources whose samples are numbered within each split: "<split>/<index>" (the phantom's,
MedSegBench's); part of the plugin API."""

from __future__ import annotations

from segbench.errors import SegbenchError


def numbered_ids(split: str, count: int) -> list[str]:
    """["train/0", "train/1", ...]: the ids of a split of `count` numbered samples."""
    return [f"{split}/{index}" for index in range(count)]


def numbered_index(sample_id: str, split: str, count: int, source: str) -> int:
    """The index of `sample_id` ("<split>/<index>") in a split of `count` samples; any other id is an error
    naming `source` (e.g. "cxr-phantom") and the valid ids."""
    number = sample_id.partition("/")[2]
    index = int(number) if number.isdigit() else -1
    if sample_id != f"{split}/{index}" or not 0 <= index < count:
        raise SegbenchError(f"{source} has no {split} sample {sample_id!r}; ids: {split}/0 .. {split}/{count - 1}")
    return index
