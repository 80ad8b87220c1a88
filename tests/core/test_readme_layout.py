"""The README stays a front page whose links resolve, docs/layout.md names every package, plugin folder and
study file the tree has, and docs/models.md names every built-in model."""

from __future__ import annotations

import re

from segbench.plugins import load_plugins
from tests.conftest import repo_root

README_LINES = 300


def _layout() -> str:
    layout = (repo_root() / "docs" / "layout.md").read_text()
    return layout.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_layout_names_every_plugin_and_study_file() -> None:
    root = repo_root()
    names = [path.name for path in (root / "plugins").iterdir() if path.name.startswith("segbench")]
    names += [path.name for path in (root / "studies").glob("*.toml")]
    assert [name for name in names if name not in _layout()] == []


def test_the_layout_names_every_package_of_segbench() -> None:
    packages = [f"{path.parent.name}/" for path in (repo_root() / "segbench").glob("*/__init__.py")]
    assert packages and [name for name in packages if name not in _layout()] == []


def test_the_models_page_names_every_built_in_model() -> None:
    registry = load_plugins()
    built_in = {info.name for info in registry.plugins if info.distribution == "segbench"}
    models = (repo_root() / "docs" / "models.md").read_text()
    specs = [spec for spec in registry.specs["models"].values() if spec.plugin in built_in]
    assert specs
    missing = [spec.name for spec in specs
               if f"`{spec.name}`" not in models and not (spec.prefix and f"`{spec.name}:" in models)]
    assert missing == []


def test_the_readme_is_a_front_page() -> None:
    lines = (repo_root() / "README.md").read_text().count("\n")
    assert lines <= README_LINES, f"README.md has {lines} lines; move detail to a page under docs/"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes (code blocks skipped)."""
    anchors, code = set(), False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            code = not code
        elif not code and (heading := re.match(r"#{1,6} (.*)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def _links(markdown: str) -> list[str]:
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", prose) + re.findall(r'<img src="([^"]+)"', prose)


def test_every_relative_link_of_the_readme_and_docs_resolves() -> None:
    root = repo_root()
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for link in _links(page.read_text()):
            if re.match(r"[a-z]+:", link):
                continue  # https:, mailto:
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(root)}: {link}")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target.read_text()):
                broken.append(f"{page.relative_to(root)}: {link} (no such heading)")
    assert broken == []


def test_every_docs_page_is_listed_in_the_docs_index_and_the_readme_links_the_index() -> None:
    docs = repo_root() / "docs"
    index = (docs / "README.md").read_text()
    pages = [page.name for page in docs.glob("*.md") if page.name != "README.md"]
    assert pages and [name for name in pages if f"]({name})" not in index] == []
    assert "](docs/README.md)" in (repo_root() / "README.md").read_text()


def test_the_link_check_sees_headings_and_skips_code_blocks() -> None:
    """The link check's own parts: anchors as GitHub makes them, links outside code blocks only."""
    page = "# Title\n\n## Two words\n[a](#two-words) [b](#three) [c](missing.md)\n```\n[d](in-code.md)\n```\n"
    assert _anchors(page) == {"title", "two-words"}
    assert _links(page) == ["#two-words", "#three", "missing.md"]
