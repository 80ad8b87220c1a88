"""segbench.data.tree and atomic_link: a downloaded copy's files from a folder or a bare git repository,
placed by hard link where possible, else by atomic copy."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from segbench import SegbenchError
from segbench.data import tree as tree_module
from segbench.data.tree import FolderTree, GitTree, open_tree
from segbench.io import atomic_link
from tests.gitrepo import commit_bare, needs_git


@pytest.fixture
def files(tmp_path: Path) -> Path:
    top = tmp_path / "files"
    for path, text in {"a/one.txt": "1", "a/two.txt": "same", "b/three.txt": "same", ".hidden/x": "h",
                       "a/.DS_Store": "h"}.items():
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        (top / path).write_text(text)
    return top


def test_a_link_replaces_the_target_and_a_copy_stands_in_where_links_fail(files: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out/deep/one.txt"
    assert atomic_link(files / "a/one.txt", target) and target.samefile(files / "a/one.txt")
    assert atomic_link(files / "a/two.txt", target) and target.read_text() == "same"

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    assert not atomic_link(files / "a/one.txt", target)
    assert target.read_text() == "1" and not target.samefile(files / "a/one.txt")
    assert sorted(path.name for path in target.parent.iterdir()) == ["one.txt"]  # no temporaries
    with pytest.raises(SegbenchError, match="cannot read .*nowhere.txt"):
        atomic_link(files / "nowhere.txt", target)


def test_a_folder_lists_its_files_without_hidden_ones_and_links_them(files: Path, tmp_path: Path) -> None:
    source = open_tree(files)
    assert isinstance(source, FolderTree)
    assert source.files() == ["a/one.txt", "a/two.txt", "b/three.txt"]
    placed = source.place({"a/one.txt": tmp_path / "out/1.txt", "b/three.txt": tmp_path / "out/3.txt"})
    assert (placed.linked, placed.written) == (2, 0) and (tmp_path / "out/3.txt").read_text() == "same"
    assert open_tree(files, "a").files() == ["one.txt", "two.txt"]


@needs_git
def test_a_bare_repository_is_read_without_a_work_tree(files: Path, tmp_path: Path) -> None:
    bare = commit_bare(files, tmp_path / "files.git")
    source = open_tree(bare, "a/")
    assert isinstance(source, GitTree) and source.where == f"{bare} (HEAD:a)"
    assert source.files() == ["one.txt", "two.txt"]  # .DS_Store is hidden
    assert open_tree(bare).files() == ["a/one.txt", "a/two.txt", "b/three.txt"]
    whole = open_tree(bare)
    whole.files()
    placed = whole.place({"a/two.txt": tmp_path / "out/2.txt", "b/three.txt": tmp_path / "out/3.txt",
                          "a/one.txt": tmp_path / "out/1.txt"})
    assert (placed.linked, placed.written) == (1, 2)  # one content, two names: written once
    assert (tmp_path / "out/2.txt").samefile(tmp_path / "out/3.txt") and (tmp_path / "out/1.txt").read_text() == "1"


def test_a_git_repository_without_git_is_one_clear_error(files: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bare = tmp_path / "repo.git"
    for folder in ("objects", "refs"):
        (bare / folder).mkdir(parents=True)
    (bare / "HEAD").write_text("ref: refs/heads/main\n")
    monkeypatch.setattr(tree_module.shutil, "which", lambda name: None)
    with pytest.raises(SegbenchError, match="repo.git is a git repository; reading it needs git on PATH"):
        open_tree(bare)
