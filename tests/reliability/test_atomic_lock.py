"""Issue point 2: every write is atomic, and a run directory is locked while a run uses it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from segbench.errors import SegbenchError
from segbench.io import atomic_write, atomic_write_text
from segbench.io.lock import run_lock
from tests.conftest import repo_root
from tests.reliability.conftest import cli, killed_run

RUN = ("run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--quiet", "--image-size", "32",
       "--epochs", "1")
RAW_WRITE = re.compile(r"write_text\(|write_bytes\(|open\([^)]*['\"][wax]b?\+?['\"]|np\.save|torch\.save\(|"
                       r"to_csv\(|savefig\(|json\.dump\(|pickle\.dump\(")


def test_every_write_in_segbench_and_plugins_goes_through_atomic_write():
    """Source audit: outside segbench/io, a file is only ever written through atomic_write/atomic_save."""
    offenders = []
    for path in [*(repo_root() / "segbench").rglob("*.py"), *(repo_root() / "plugins").rglob("*.py")]:
        relative = path.relative_to(repo_root()).as_posix()
        if relative.startswith(("segbench/io/", "plugins/segbench-template/")):
            continue
        for line in path.read_text().splitlines():
            if RAW_WRITE.search(line) and "atomic_" not in line and "buffer" not in line:
                offenders.append(f"{relative}: {line.strip()}")
    assert offenders == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.csv"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("half of the new conte")
            raise RuntimeError("writer died")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


def test_killed_writer_leaves_old_file_and_next_run_removes_its_temporary(tmp_path):
    """SIGKILL after the temporary file is written, before the rename: readers see no half file."""
    out = tmp_path / "run"
    killed = killed_run("per_image.csv", 1, *RUN, "--out", str(out))
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "per_image.csv").exists()
    assert len(list(out.glob(".per_image.csv.*.tmp"))) == 1  # the dead writer's, never renamed
    code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert not list(out.rglob("*.tmp")) and (out / "per_image.csv").is_file()


def test_second_run_on_a_locked_directory_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from segbench.io.lock import run_lock\n"
         f"with run_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(120)"],
        cwd=repo_root(), stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, stderr = cli(*RUN, "--out", str(out))
        assert code == 2
        assert f"{out} is in use by another segbench run (pid {holder.pid} on " in stderr
        assert "choose another --out" in stderr and not (out / "config.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
    # The holder was killed: its lock went with it, the directory is free at once.
    code, _, stderr = cli(*RUN, "--out", str(out))
    assert code == 0, stderr


def test_resume_of_a_running_run_is_refused_and_the_lock_is_released_after(tmp_path):
    out = tmp_path / "run"
    assert cli(*RUN, "--out", str(out))[0] == 0
    with run_lock(out):
        code, _, stderr = cli(*RUN, "--out", str(out), "--resume")
        assert code == 2 and "is in use by another segbench run" in stderr
    assert cli(*RUN, "--out", str(out), "--resume")[0] == 0


def test_lock_error_is_a_segbench_error(tmp_path):
    with run_lock(tmp_path), pytest.raises(SegbenchError, match="in use"):
        with run_lock(tmp_path):
            pass


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_are_written_with_the_umasks_permissions(tmp_path, umask, mode):
    import os

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "summary.csv", "a\n")
    finally:
        os.umask(old)
    assert (tmp_path / "summary.csv").stat().st_mode & 0o777 == mode
