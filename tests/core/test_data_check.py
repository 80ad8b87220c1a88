"""segbench.data.check: any dataset's images per task, split and group against its DatasetSpec.expected."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from segbench import SegbenchError
from segbench.data.check import check_counts


def test_a_source_without_groups_is_counted_as_all(registry, tmp_path: Path) -> None:
    toy = replace(registry.dataset("toy"), expected={"lung": {"train": {"all": 24}, "test": {"all": 12}}})
    result = check_counts(toy, tmp_path)
    assert result.found == ["lung train: 24 images (all 24)", "lung test: 10 images (all 10)"]
    assert result.problems == ["lung test all: 10 images, expected 12 (2 missing)"]


def test_what_cannot_be_checked_is_one_clear_error(registry, tmp_path: Path) -> None:
    with pytest.raises(SegbenchError, match="dataset 'toy' publishes no counts"):
        check_counts(registry.dataset("toy"), tmp_path)
    with pytest.raises(SegbenchError, match="gives expected counts for task 'heart', which it does not serve; its "
                                            "tasks: lung, infection"):
        replace(registry.dataset("toy"), expected={"heart": {}})
    toy = replace(registry.dataset("toy"), expected={"lung": {"train": {"all": 24}}})
    with pytest.raises(SegbenchError, match="dataset 'toy' publishes no counts for task 'infection'; tasks with "
                                            "counts: lung$"):
        check_counts(toy, tmp_path, ["infection"])
