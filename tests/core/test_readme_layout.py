"""The README's Layout section names every plugin folder and study file the tree has."""

from __future__ import annotations

from tests.conftest import repo_root


def _layout() -> str:
    readme = (repo_root() / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_layout_names_every_plugin_and_study_file() -> None:
    root = repo_root()
    names = [path.name for path in (root / "plugins").iterdir() if path.name.startswith("segbench")]
    names += [path.name for path in (root / "studies").glob("*.toml")]
    assert [name for name in names if name not in _layout()] == []
