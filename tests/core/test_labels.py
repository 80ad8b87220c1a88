"""Label budgets: nested, stratified, fixed by the labels seed and the sample ids alone."""

from __future__ import annotations

import numpy as np

from segbench.data.labels import labelled_order, labelled_subset, strata
from segbench.data.prepare import SplitData
from segbench.seeds import derive_seed


def _split(empty: int, foreground: int, groups: list[str] | None = None, order: np.ndarray | None = None) -> SplitData:
    n = empty + foreground
    masks = np.zeros((n, 4, 4), np.uint8)
    masks[empty:, 1, 1] = 1
    ids = [f"train/{i}" for i in range(n)]
    metadata = {"group": groups} if groups is not None else {}
    data = SplitData(ids, np.zeros((n, 4, 4), np.uint8), masks, metadata)
    return data if order is None else data.subset(order)


def _ids(data: SplitData, labels: int, seed: int = 0) -> set[str]:
    return {data.ids[i] for i in labelled_subset(data, labels, seed)}


def test_budgets_are_nested():
    data = _split(30, 10)
    chosen = [_ids(data, n) for n in (1, 4, 8, 20, 40)]
    assert all(a < b for a, b in zip(chosen, chosen[1:]))
    assert len(chosen[-1]) == 40


def test_a_budget_keeps_each_stratum_in_proportion():
    data = _split(30, 10)
    for budget in (4, 8, 12, 20):
        foreground = sum(data.masks[i].any() for i in labelled_subset(data, budget, 0))
        assert abs(foreground - budget / 4) <= 1, (budget, foreground)  # a quarter of the images have foreground


def test_groups_are_strata_too():
    groups = ["COVID-19"] * 20 + ["Normal"] * 20
    data = _split(20, 20, groups)
    assert len(set(strata(data))) == 2  # the Normal images are the empty ones here
    chosen = labelled_subset(data, 10, 3)
    assert sorted(groups[i] for i in chosen).count("Normal") == 5


def test_the_subset_depends_on_the_labels_seed_and_ids_not_on_the_split_order():
    data = _split(30, 10)
    shuffled = _split(30, 10, order=np.random.default_rng(1).permutation(40))
    assert _ids(data, 8) == _ids(shuffled, 8)
    assert _ids(data, 8, seed=1) != _ids(data, 8, seed=0)


def test_the_order_is_its_definition_computed_by_hand():
    """Within a stratum by derive_seed("labels", seed, id); the k-th of n at (k + 0.5) / n; ties: the
    strata's names in order ("empty|" before "foreground|")."""
    data = _split(6, 2)
    empty = sorted(data.ids[:6], key=lambda i: derive_seed("labels", 0, i))
    foreground = sorted(data.ids[6:], key=lambda i: derive_seed("labels", 0, i))
    by_hand = sorted([((k + 0.5) / 6, 0, i) for k, i in enumerate(empty)]
                     + [((k + 0.5) / 2, 1, i) for k, i in enumerate(foreground)])
    assert [data.ids[i] for i in labelled_order(data, 0)] == [i for _, _, i in by_hand]


def test_all_labels_is_the_whole_split_in_its_order():
    data = _split(3, 2)
    assert labelled_subset(data, None, 0).tolist() == [0, 1, 2, 3, 4]
    assert labelled_subset(data, 99, 0).tolist() == [0, 1, 2, 3, 4]
