"""The study files shipped in studies/ read and plan: every model is registered, its `set` keys and values
are valid for it at the study's preset, and every dataset serves the study's task (the data themselves are
not needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from segbench.plan.build import plan_model
from segbench.plugins import Registry
from segbench.presets import resolve_preset
from segbench.study.schema import read_study
from tests.conftest import repo_root

STUDIES = sorted((repo_root() / "studies").glob("*.toml"))


def test_there_are_example_studies() -> None:
    assert len(STUDIES) >= 10


@pytest.mark.parametrize("path", STUDIES, ids=lambda path: path.stem)
def test_example_study_plans_every_model(path: Path, registry: Registry) -> None:
    study = read_study(path)
    preset = resolve_preset(study.options.get("preset", "auto"), "cpu")
    for data in study.datasets:
        assert data.task in registry.dataset(data.dataset).tasks, (data.label, data.task)
        for model in study.models:
            # a model, set key or set value the model does not take raises a SegbenchError naming it
            plan_model(registry.model(model.model), model.label, preset, data.task, data.image_size or 64,
                       sets=model.sets)
