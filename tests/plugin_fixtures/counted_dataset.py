"""A third-party dataset with published counts and a layout step: "covid-qu-ex-mini", covid-qu-ex's reader
and layout with the counts of the small copy tests/datasets/test_covid_qu_ex_data.py writes."""

from segbench import DatasetSpec, deferred, hookimpl

COUNTS = {
    "train": {"COVID-19": 2, "Non-COVID": 1, "Normal": 1},
    "val": {"COVID-19": 1, "Non-COVID": 1, "Normal": 1},
    "test": {"COVID-19": 1, "Non-COVID": 1, "Normal": 1},
}


@hookimpl
def register_datasets(register) -> None:
    register(DatasetSpec(
        name="covid-qu-ex-mini", tasks=("lung", "infection"),
        factory=deferred("segbench_cxr.covid_qu_ex:CovidQuExSource.from_options"),
        description="COVID-QU-Ex's layout, a few images", needs_root=True,
        expected={"infection": COUNTS, "lung": COUNTS}, layout=deferred("segbench_cxr.covid_qu_ex_layout:lay_out"),
    ))
