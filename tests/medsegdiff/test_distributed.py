"""Slow: medsegdiff evaluated by two processes (torchrun, gloo) is byte-identical to one process, ensemble included."""

import pytest

from tests.distributed.conftest import same_files, single, torchrun
from tests.distributed.test_distributed import TOY, _files

MODEL = "medsegdiff"


@pytest.mark.slow
def test_two_processes_evaluate_byte_identically_to_one(tmp_path):
    trained = tmp_path / "run"
    done = single("run", *TOY, "--models", MODEL, "--preset", "tiny", "--ensemble", "2", "--eval-batch-size", "3",
                  "--out", str(trained))
    assert done.returncode == 0, done.stderr[-3000:]
    done = torchrun("evaluate", str(trained), "--out", str(tmp_path / "sharded"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert same_files(trained, tmp_path / "sharded", _files(MODEL)) == []
