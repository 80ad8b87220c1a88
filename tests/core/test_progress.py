"""Progress on a terminal: a run's bar over its models, each model's bars opened inside it, and log lines
between them are all shown; --quiet shows the log lines only."""

from __future__ import annotations

import io

from rich.console import Console

from segbench.progress import Progress


def test_model_bars_open_beneath_the_runs_bar_in_one_display():
    console = Console(file=io.StringIO(), force_terminal=True, width=160, color_system=None)
    progress = Progress(console)
    with progress.task("models done", total=2) as overall:
        for done, name in enumerate(("unet", "diff-add"), 1):
            with progress.task(f"{name} train ({done} of 2)", total=3) as bar:
                for step in (1, 2, 3):
                    bar.step(step, loss=0.25)
            progress.log(f"{name}: done")
            overall.step(done)
    text = console.file.getvalue()
    assert "models done" in text and "2/2" in text
    assert "unet train (1 of 2)" in text and "diff-add train (2 of 2)" in text and "3/3" in text
    assert "loss 0.2500" in text and "unet: done" in text


def test_quiet_shows_log_lines_only():
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    progress = Progress(console, quiet=True)
    with progress.task("models done", total=1) as bar:
        bar.step(1)
        progress.log("note")
    assert console.file.getvalue().strip() == "note"
