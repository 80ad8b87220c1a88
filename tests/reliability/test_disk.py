"""Issue point 8: a failing write (full disk, read-only folder) is one clear error; after space is
freed, `--resume` finishes the run with results bit-identical to an uninterrupted one."""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.reliability.conftest import cli, differing_files

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn,faulty-cnn", "--quiet", "--image-size", "32",
       "--epochs", "2", "--ensemble", "2", "--eval-batch-size", "3", "--checkpoint-every", "0")
COMPARED = ["per_image.csv", "summary.csv", "predictions/toy-cnn.npz", "predictions/faulty-cnn.npz"]
ERRORS = {errno.ENOSPC: "No space left on device", errno.EROFS: "Read-only file system"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("disk") / "run"
    code, _, stderr = cli(*RUN, "--out", str(out))
    assert code == 0, stderr
    return out


def fail_nth_write(monkeypatch, name: str, n: int, code: int) -> None:
    """The `n`th atomic write of a file whose name matches the pattern `name` fails with `code`."""
    replace, seen = os.replace, []

    def failing(src, dst, *args, **kwargs):
        if fnmatch.fnmatch(Path(dst).name, name):
            seen.append(dst)
            if len(seen) == n:
                raise OSError(code, os.strerror(code))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)


@pytest.mark.parametrize(("name", "n", "code"), [
    ("last.pt", 3, errno.ENOSPC),        # a mid-epoch checkpoint of the first model
    ("batch-*.npz", 2, errno.ENOSPC),    # the second committed prediction batch
    ("per_image.csv", 2, errno.EROFS),   # the second model's results
    ("models.json", 1, errno.ENOSPC),    # the first model's status
    ("report.md", 1, errno.EROFS),
])
def test_failed_write_is_reported_and_resume_finishes_identically(reference, tmp_path, monkeypatch, name, n, code):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        fail_nth_write(patch, name, n, code)
        status, _, stderr = cli(*RUN, "--out", str(out))
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write ")
    assert re.search(fnmatch.translate(name)[:-2] + f": {ERRORS[code]}; what was written before is kept", lines[0])
    assert "then rerun the same command with --resume" in lines[0]
    assert not list(out.rglob("*.tmp"))  # the failed write left no temporary behind
    status, _, stderr = cli(*RUN, "--out", str(out), "--resume")  # space is free again
    assert status == 0, stderr
    assert differing_files(reference, out, COMPARED) == []


def test_full_disk_before_the_temporary_file_exists(tmp_path, monkeypatch):
    """Even creating the temporary file can fail; the message is the same kind."""
    out = tmp_path / "run"

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", no_space)
        status, _, stderr = cli(*RUN, "--out", str(out))
    assert status == 2 and stderr.startswith(f"error: cannot write {out / 'config.json'}: No space left on device")


def test_unwritable_run_directory_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where a folder should be: unwritable for every user, root included
    status, _, stderr = cli(*RUN, "--out", str(blocker / "run"))
    assert status == 2 and stderr.startswith(f"error: --out {blocker / 'run'} is not writable")
