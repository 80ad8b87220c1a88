"""Hold the plugin to segbench's contract with the checks segbench ships for plugin authors."""

from segbench.plugins import load_plugins
from segbench.testing import check_metric, check_model


def test_template_model_meets_the_contract():
    registry = load_plugins(["segbench_template"])
    check_model(registry.model("template-fcn"))


def test_template_metric_meets_the_contract():
    check_metric(load_plugins(["segbench_template"]).metric("components"))
