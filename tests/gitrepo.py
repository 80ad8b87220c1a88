"""A bare git repository made in a test: `git init --bare` and one commit of a folder's files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH")


def commit_bare(files: Path, bare: Path) -> Path:
    """A bare repository at `bare` whose HEAD commits everything under `files`; no work tree is kept."""
    git = ["git", "-c", "user.name=segbench", "-c", "user.email=tests@segbench.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "--bare", str(bare)], check=True)
    into = [*git, "--git-dir", str(bare), "--work-tree", str(files)]
    subprocess.run([*into, "add", "-A"], check=True)
    subprocess.run([*into, "commit", "-q", "-m", "data"], check=True)
    return bare
