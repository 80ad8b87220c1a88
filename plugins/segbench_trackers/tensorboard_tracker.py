"""TensorBoard: event files in <run>/tensorboard/, one TensorBoard run per model (so their curves share
charts) and one named "report" for the report's figures; written by torch.utils.tensorboard.

Every scalar's x is the model's steps done. Each step is flushed to the event file (about 80 µs with its
two scalars), so a killed run's file holds every step it finished; a resumed run opens a model's writer
with `purge_step` at the first step it trains again, so TensorBoard drops what the interrupted run logged
from that step on, and each step shows once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from segbench.results import RunRecord
from segbench.results.store import safe_name
from segbench_trackers.tracker import (EPOCH_LOSS, TRAIN_LOSS, TRAIN_LR, Tracker, model_settings, report_figures,
                                       summary_scalars)

FOLDER = "tensorboard"
REPORT = "report"  # the TensorBoard run holding the report's figures


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, run_dir: Path, record: RunRecord) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ImportError without the tensorboard package

        super().__init__(run_dir, record)
        self._writer_type = SummaryWriter
        self.folder = run_dir / FOLDER
        self.writers: dict[str, Any] = {}

    def _writer(self, run: str, purge_step: int | None) -> Any:
        """The writer of TensorBoard run `run` (a model, or the report), opened at its first event here;
        TensorBoard hides what earlier writers logged at `purge_step` and after."""
        if run not in self.writers:
            folder = self.folder / safe_name(run)
            fresh = not folder.exists()
            writer = self._writer_type(str(folder), purge_step=purge_step)
            if fresh and run != REPORT:
                settings = json.dumps(model_settings(self.record, run), indent=1)
                writer.add_text("settings", f"```\n{settings}\n```", 0)
            self.writers[run] = writer
        return self.writers[run]

    def train_step(self, model: str, step: Any) -> None:
        writer = self._writer(model, step.done)
        writer.add_scalar(TRAIN_LOSS, step.loss, step.done)
        writer.add_scalar(TRAIN_LR, step.lr, step.done)
        writer.flush()

    def epoch_end(self, model: str, epoch: int, loss: float) -> None:
        done = self.step_of_epoch(model, epoch)
        writer = self._writer(model, done)
        writer.add_scalar(EPOCH_LOSS, loss, done)
        writer.flush()

    def evaluation_end(self, model: str, summary: dict[str, dict[str, float]]) -> None:
        total = self.total_steps(model)
        writer = self._writer(model, None)  # a model evaluated after a resume keeps its training curves
        for tag, value in summary_scalars(summary).items():
            writer.add_scalar(tag, value, total)
        writer.flush()

    def run_end(self) -> None:
        writer = self._writer(REPORT, 0)  # purge_step 0: a resumed run's figures replace the earlier ones
        for name, image in report_figures(self.run_dir):
            writer.add_image(f"figures/{name}", image, 0, dataformats="HWC")

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
