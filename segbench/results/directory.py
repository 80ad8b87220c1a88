"""Opening a run directory for a run: created, locked, and checked against what is already in it."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

from segbench.errors import SegbenchError
from segbench.io.lock import LOCK_FILE, run_lock
from segbench.plan.run_plan import first_difference
from segbench.results.record import RunRecord
from segbench.results.store import RunStore, partial_dir


def open_run_directory(out: str | None, task: str, resume: bool, held: contextlib.ExitStack,
                       note=print) -> tuple[RunStore, bool]:
    """(the run directory's store, whether there is a run to continue). The directory is created and
    locked until `held` closes. `--resume` on a folder that holds no run yet (a requeued job killed before
    it wrote config.json) starts the run, with a `note`, as nnU-Net's --c does."""
    path = Path(out or f"runs/{task}-{time.strftime('%Y%m%d-%H%M%S')}")
    store = RunStore(path)
    try:
        if not path.exists():
            path.mkdir(parents=True)
            held.callback(_remove_if_unused, path)  # after the lock is released
        held.enter_context(run_lock(path))  # creating the lock file also proves the folder writable
    except OSError as exc:
        raise SegbenchError(f"--out {path} is not writable: {exc.strerror or exc}") from None
    if store.has_record() and not resume:
        raise SegbenchError(f"{path} already holds a run; add --resume to continue it, or choose another --out")
    if resume and not store.has_record():
        note(f"--resume: {path} holds no run yet; starting it")
        return store, False
    return store, resume


def _remove_if_unused(path: Path) -> None:
    """Remove a run directory this run created when the run wrote nothing into it (it failed first)."""
    if [p.name for p in path.iterdir()] == [LOCK_FILE]:
        (path / LOCK_FILE).unlink()
        path.rmdir()


def check_resume(store: RunStore, record: RunRecord) -> None:
    """--resume continues the same run: the settings results depend on must be unchanged (compared in
    config.json's JSON form, so a tuple read back as a list is the same value)."""
    old, new = store.read_record().plan.shaping(), record.plan.shaping()
    changed = first_difference(old, {k: new[k] for k in old}, "")
    if changed:
        raise SegbenchError(f"--resume: {store.path} was run with different settings ({changed}); "
                            "use the same options or another --out")


def clear_partial(store: RunStore, model: str) -> None:
    """Remove a finished model's committed batches (and partial/ once no model has any there)."""
    shutil.rmtree(store.file(partial_dir(model)), ignore_errors=True)
    with contextlib.suppress(OSError):
        store.file("partial").rmdir()
