"""Label budgets: nested, stratified, fixed by the labels seed and the sample ids alone."""

from __future__ import annotations

import numpy as np

from segbench.data.labels import labelled_ids, labelled_order, labelled_subset, strata
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


def test_strata_are_named_by_emptiness_and_group():
    assert strata(_split(2, 1)) == ["empty|", "empty|", "foreground|"]
    assert strata(_split(2, 2, ["b", "a", "a", "b"])) == ["empty|b", "empty|a", "foreground|a", "foreground|b"]


def _order_by_hand(members: dict[str, list[str]], seed: int) -> list[str]:
    """Within a stratum by derive_seed("labels", seed, id); the k-th of n at (k + 0.5) / n; ties: the strata's
    names in order. members: each stratum's name and ids."""
    keyed = []
    for rank, name in enumerate(sorted(members)):
        ids = sorted(members[name], key=lambda i: derive_seed("labels", seed, i))
        keyed += [((k + 0.5) / len(ids), rank, i) for k, i in enumerate(ids)]
    return [i for _, _, i in sorted(keyed)]


def test_the_order_is_its_definition_computed_by_hand():
    data = _split(6, 2)
    by_hand = _order_by_hand({"empty|": data.ids[:6], "foreground|": data.ids[6:]}, 0)
    assert [data.ids[i] for i in labelled_order(data, 0)] == by_hand


def test_the_order_of_four_strata_computed_by_hand():
    """Groups that cut across empty and foreground images make four strata, of 3, 2, 4 and 3 images."""
    groups = ["x", "x", "x", "y", "y", "x", "x", "x", "x", "y", "y", "y"]
    data = _split(5, 7, groups)
    members: dict[str, list[str]] = {}
    for n, g in enumerate(groups):
        members.setdefault(f"{'empty' if n < 5 else 'foreground'}|{g}", []).append(data.ids[n])
    assert [len(members[name]) for name in sorted(members)] == [3, 2, 4, 3]
    for seed in (0, 5):
        assert [data.ids[i] for i in labelled_order(data, seed)] == _order_by_hand(members, seed)


def test_labelled_ids_are_each_splits_first_ids_of_the_order_in_split_order():
    train, val = _split(6, 2), _split(3, 3)
    chosen = labelled_ids({"train": train, "val": val}, 3, 0)
    for name, data, members in (("train", train, {"empty|": train.ids[:6], "foreground|": train.ids[6:]}),
                                ("val", val, {"empty|": val.ids[:3], "foreground|": val.ids[3:]})):
        first = set(_order_by_hand(members, 0)[:3])
        assert chosen[name] == [i for i in data.ids if i in first]
    assert labelled_ids({"train": train}, None, 0) == {"train": train.ids}


def test_all_labels_is_the_whole_split_in_its_order():
    data = _split(3, 2)
    assert labelled_subset(data, None, 0).tolist() == [0, 1, 2, 3, 4]
    assert labelled_subset(data, 99, 0).tolist() == [0, 1, 2, 3, 4]
