"""Registers the chest X-ray datasets. Factories import their module on first use,
so listing plugins does not pay for numpy, scipy or PIL."""

from __future__ import annotations

from segbench import DatasetSpec, deferred, hookimpl
from segbench_cxr.covid_qu_ex_counts import EXPECTED as COVID_QU_EX_COUNTS


@hookimpl
def register_datasets(register) -> None:
    register(
        DatasetSpec(
            name="cxr-phantom",
            tasks=("lung", "infection"),
            factory=deferred("segbench_cxr.phantom:PhantomSource.from_options"),
            description="procedural chest X-ray phantoms with lung and infection masks; no download",
            synthetic="synthetic chest X-ray phantoms, not patient data",
        )
    )
    register(
        DatasetSpec(
            name="covid-qu-ex",
            tasks=("lung", "infection"),
            factory=deferred("segbench_cxr.covid_qu_ex:CovidQuExSource.from_options"),
            description="Kaggle COVID-QU-Ex chest X-rays (lung and infection sets) under --data-root",
            needs_root=True,
            healthy=("group", "Normal"),
            expected=COVID_QU_EX_COUNTS,
            layout=deferred("segbench_cxr.covid_qu_ex_layout:lay_out"),
        )
    )
    register(
        DatasetSpec(
            name="folder",
            tasks=("lung", "infection"),
            factory=deferred("segbench_cxr.folder:FolderSource.from_options"),
            description="images/ + masks/ with matching stems under --data-root; optional splits.json",
            needs_root=True,
        )
    )
