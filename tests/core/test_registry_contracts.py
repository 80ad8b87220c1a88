"""Registry-driven: every registered model, dataset and metric gets these tests automatically."""

from __future__ import annotations

import pytest

from segbench import DatasetOptions
from segbench.plugins import load_plugins
from segbench.testing import check_dataset, check_metric, check_model

REGISTRY = load_plugins(["tests.toy_plugin"])
# A prefix spec stands for a family; test one concrete member of each.
PREFIX_EXAMPLES = {"smp": "smp:UnetPlusPlus:resnet18"}
MODELS = [PREFIX_EXAMPLES.get(n, n) if REGISTRY.specs["models"][n].prefix else n for n in REGISTRY.names("models")]


def test_no_builtin_plugin_failed():
    assert not REGISTRY.failures, REGISTRY.failures


@pytest.mark.parametrize("name", MODELS)
def test_model_contract(name):
    check_model(REGISTRY.model(name), name)


@pytest.mark.parametrize("name", MODELS)
def test_model_spec_is_complete(name):
    spec = REGISTRY.model(name)
    assert spec.description and spec.family
    assert {"tiny", "small", "paper"} <= set(spec.presets), "every model needs tiny, small and paper presets"
    assert spec.name == spec.name.lower() and " " not in spec.name


@pytest.mark.parametrize("name", [n for n in REGISTRY.names("datasets") if not REGISTRY.dataset(n).needs_root])
@pytest.mark.parametrize("task", ["lung", "infection"])
def test_dataset_contract(name, task):
    spec = REGISTRY.dataset(name)
    if task in spec.tasks:
        check_dataset(spec, DatasetOptions(task, None, 32, 0))


@pytest.mark.parametrize("name", REGISTRY.names("metrics"))
def test_metric_contract(name):
    check_metric(REGISTRY.metric(name))
