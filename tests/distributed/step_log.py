"""A test plugin that appends every training step's loss to the file named by $SEGBENCH_STEP_LOG."""

from __future__ import annotations

import os

from segbench import hookimpl


@hookimpl
def on_train_step(model_name, step) -> None:
    path = os.environ.get("SEGBENCH_STEP_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(f"{model_name} {step.done} {step.loss!r}\n")
