"""Plugin discovery and isolation: entry points, --plugin, env vars, broken plugins, duplicates."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from segbench import hookspecs
from segbench.plugins import load_plugins


def _by_name(registry):
    return {p.name: p for p in registry.plugins}


def test_builtins_load_through_entry_points(registry):
    plugins = _by_name(registry)
    for name in ("metrics", "formats", "cxr", "unets", "diffusion"):
        assert plugins[name].source == "entry point" and not plugins[name].error, plugins.get(name)
        assert plugins[name].distribution == "segbench"
    assert {"unet", "res50attunet", "diff-add", "diff-concat"} <= set(registry.names("models"))
    assert {"cxr-phantom", "covid-qu-ex", "folder"} <= set(registry.names("datasets"))


def test_plugin_module_route(registry):
    assert "toy-cnn" in registry.names("models")
    assert registry.model("toy-cnn").plugin == "tests.toy_plugin"


def test_env_plugins_and_disable(monkeypatch):
    monkeypatch.setenv("SEGBENCH_PLUGINS", "tests.toy_plugin")
    monkeypatch.setenv("SEGBENCH_DISABLE_PLUGINS", "diffusion")
    reg = load_plugins()
    assert "toy-cnn" in reg.names("models")
    assert "diff-add" not in reg.names("models")
    assert "diffusion" not in _by_name(reg)


def test_third_party_entry_point(tmp_path, monkeypatch):
    """A distribution installed elsewhere on sys.path is found through the entry-point group."""
    (tmp_path / "thirdparty_seg.py").write_text(textwrap.dedent('''
        from segbench import MetricSpec, hookimpl

        @hookimpl
        def register_metrics(register):
            register(MetricSpec("fp_rate", lambda tp, fp, fn, tn: fp / (fp + tn + 1), "false positives"))
    '''))
    dist = tmp_path / "thirdparty_seg-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-seg\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[segbench]\nthirdparty = thirdparty_seg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = load_plugins()
    info = _by_name(reg)["thirdparty"]
    assert (info.distribution, info.version, info.error) == ("thirdparty-seg", "1.2.3", "")
    assert reg.metric("fp_rate").plugin == "thirdparty"
    sys.modules.pop("thirdparty_seg", None)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("tests.plugin_fixtures.broken_import", "broken on purpose"),
        ("tests.plugin_fixtures.broken_register", "registration broken on purpose"),
        ("tests.plugin_fixtures.misspelled", "register_modles"),
        ("tests.plugin_fixtures.duplicate", "'tests.toy_plugin' and by plugin 'tests.plugin_fixtures.duplicate'"),
    ],
)
def test_broken_plugin_is_reported_and_the_rest_works(module, message):
    reg = load_plugins(["tests.toy_plugin", module])
    failed = _by_name(reg)[module]
    assert message in failed.error
    assert {"unet", "toy-cnn"} <= set(reg.names("models"))
    assert reg.model("toy-cnn").plugin == "tests.toy_plugin"


def test_broken_plugin_does_not_break_cli_list(run_cli):
    code, stdout, stderr = run_cli("--plugin", "tests.plugin_fixtures.broken_import", "list", "models")
    assert code == 0
    assert "unet" in stdout and "toy-cnn" in stdout
    assert "tests.plugin_fixtures.broken_import" in stderr and "broken on purpose" in stderr


def test_plugins_command_shows_failures(run_cli):
    code, stdout, _ = run_cli("--plugin", "tests.plugin_fixtures.broken_register", "plugins")
    assert code == 0
    assert "segbench" in stdout and "failed" in stdout and "broken_register" in stdout


def test_every_hook_is_documented_and_exercised():
    """Each hookspec has a docstring and is named in a test (datasette's meta-test)."""
    names = [n for n in dir(hookspecs) if n.startswith(("register_", "on_"))]
    tests_text = "".join(p.read_text() for p in Path(__file__).parents[1].rglob("test_*.py"))
    for name in names:
        assert getattr(hookspecs, name).__doc__, f"hook {name} has no docstring"
        assert name in tests_text, f"hook {name} is not exercised by any test"
