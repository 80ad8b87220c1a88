"""Registers the chest X-ray datasets. Factories import their module on first use,
so listing plugins does not pay for numpy, scipy or PIL."""

from __future__ import annotations

from segbench import DatasetOptions, DatasetSpec, hookimpl


def _phantom(options: DatasetOptions):
    from segbench_cxr.phantom import PhantomSource

    return PhantomSource.from_options(options)


def _covid_qu_ex(options: DatasetOptions):
    from segbench_cxr.covid_qu_ex import CovidQuExSource

    return CovidQuExSource.from_options(options)


def _folder(options: DatasetOptions):
    from segbench_cxr.folder import FolderSource

    return FolderSource.from_options(options)


@hookimpl
def register_datasets(register) -> None:
    register(
        DatasetSpec(
            name="cxr-phantom",
            tasks=("lung", "infection"),
            factory=_phantom,
            description="procedural chest X-ray phantoms with lung and infection masks; no download",
            synthetic="synthetic chest X-ray phantoms, not patient data",
        )
    )
    register(
        DatasetSpec(
            name="covid-qu-ex",
            tasks=("lung", "infection"),
            factory=_covid_qu_ex,
            description="Kaggle COVID-QU-Ex chest X-rays (lung and infection sets) under --data-root",
            needs_root=True,
            healthy=("group", "Normal"),
        )
    )
    register(
        DatasetSpec(
            name="folder",
            tasks=("lung", "infection"),
            factory=_folder,
            description="images/ + masks/ with matching stems under --data-root; optional splits.json",
            needs_root=True,
        )
    )
