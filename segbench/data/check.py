"""`segbench data check`: a data root's images per task, split and group against the counts its dataset
publishes (`DatasetSpec.expected`). Lists files only; nothing is decoded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segbench.errors import SegbenchError, did_you_mean
from segbench.specs import DatasetOptions, DatasetSpec, SegmentationSource

NO_GROUP = "all"  # the group of every sample of a source without a metadata "group"


@dataclass(frozen=True)
class CheckResult:
    """`found`: one line per task and split that could be read; `problems`: one line per thing missing or
    different from the expected counts (none: the data root is complete)."""

    found: list[str]
    problems: list[str]


def _groups(source: SegmentationSource, split: str) -> Counter[str]:
    """Images of `split` per metadata group."""
    metadata = getattr(source, "metadata", None)
    ids = source.sample_ids(split)
    if metadata is None:
        return Counter({NO_GROUP: len(ids)})
    return Counter(metadata(split, sample_id).get("group", NO_GROUP) for sample_id in ids)


def _difference(task: str, split: str, group: str, found: int, expected: int) -> str:
    change = f"{expected - found:,} missing" if found < expected else f"{found - expected:,} more"
    return f"{task} {split} {group}: {found:,} images, expected {expected:,} ({change})"


def check_counts(spec: DatasetSpec, root: Path, tasks: Sequence[str] | None = None) -> CheckResult:
    """Count what `spec`'s reader finds under `root` for `tasks` (default: every task with expected counts)."""
    if not spec.expected:
        raise SegbenchError(f"dataset {spec.name!r} publishes no counts to check a data root against")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise SegbenchError(f"data root not found: {root} is not a folder")
    found: list[str] = []
    problems: list[str] = []
    for task in tasks or list(spec.expected):
        if task not in spec.expected:
            raise SegbenchError(f"dataset {spec.name!r} publishes no counts for task {task!r}; tasks with "
                                f"counts: {', '.join(spec.expected)}{did_you_mean(task, list(spec.expected))}")
        source = spec.factory(DatasetOptions(task, root, size=64, seed=0))
        for split, expected in spec.expected[task].items():
            try:
                groups = _groups(source, split)
            except SegbenchError as error:
                problems.append(f"{task} {split}: {error}")
                continue
            shown = ", ".join(f"{group} {count:,}" for group, count in sorted(groups.items()))
            found.append(f"{task} {split}: {groups.total():,} images ({shown})")
            problems += [_difference(task, split, group, groups[group], expected.get(group, 0))
                         for group in sorted({*expected, *groups}) if groups[group] != expected.get(group, 0)]
    return CheckResult(found, problems)
