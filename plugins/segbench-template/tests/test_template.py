"""Hold the plugin to segbench's contract with the checks segbench ships for plugin authors."""

from segbench.plugins import load_plugins
from segbench.testing import check_model


def test_template_model_meets_the_contract():
    registry = load_plugins(["segbench_template"])
    check_model(registry.model("template-fcn"))
