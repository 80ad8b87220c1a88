"""The template third-party plugin works as shipped, through the --plugin route."""

from __future__ import annotations

from tests.conftest import repo_root


def test_template_plugin(monkeypatch):
    monkeypatch.syspath_prepend(str(repo_root() / "plugins" / "segbench-template"))
    from segbench.plugins import load_plugins
    from segbench.testing import check_model

    registry = load_plugins(["segbench_template"])
    assert registry.model("template-fcn").plugin == "segbench_template"
    check_model(registry.model("template-fcn"))
