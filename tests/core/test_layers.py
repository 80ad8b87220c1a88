"""The layering is a check: import-linter's contracts ([tool.importlinter] in pyproject.toml) hold, so an
upward import (the engine reading segbench.results, the plan importing torch, the core importing a
plugin) fails the fast suite; and the contracts cover every plugin package there is."""

from __future__ import annotations

from importlinter import api, cli

from tests.conftest import repo_root

CONFIG = str(repo_root() / "pyproject.toml")
CORE_CONTRACT = "Core never imports a plugin package"


def test_every_import_keeps_the_contracts(capsys) -> None:
    code = cli.lint_imports(config_filename=CONFIG, no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_the_contracts_cover_every_plugin_package() -> None:
    config = api.read_configuration(CONFIG)
    plugins = sorted(path.name for path in (repo_root() / "plugins").iterdir() if (path / "__init__.py").is_file())
    core = next(c for c in config["contracts_options"] if c["name"] == CORE_CONTRACT)
    assert sorted(core["forbidden_modules"]) == plugins
    assert sorted(config["session_options"]["root_packages"]) == ["segbench", *plugins]
