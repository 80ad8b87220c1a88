"""Study fixtures: study files written into tmp_path, and the CLI with the toy plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

TOY = """
name = "toy"
seeds = [0, 1]
preset = "tiny"
image_size = 32
ensemble = 2
eval_batch_size = 3

[datasets.squares]
dataset = "toy"
task = "lung"

[models]
toy-cnn = {}
"""


def write(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def toy_study(tmp_path: Path) -> Path:
    return write(tmp_path, TOY)
