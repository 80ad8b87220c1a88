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


def test_a_log_file_gets_plain_lines_at_most_every_30_seconds_and_at_the_end():
    """Not a terminal (a SLURM job, `> log`): lines with steps, loss, elapsed time and ETA, never cut."""
    from segbench.progress import LineBar

    lines: list[str] = []
    now = [0.0]
    bar = LineBar(lines.append, "diff-add train (1 of 2)", 1200, clock=lambda: now[0])
    for step in range(1, 1201):
        now[0] = step * 0.5  # half a second a step: 600 s in all
        bar.step(step, loss=1 / step)
    assert len(lines) == 600 // 30  # one every 30 s; the last is the end's
    assert lines[0] == "diff-add train (1 of 2): 60/1,200 (5%), loss 0.0167, elapsed 0:00:30, ETA 0:09:30"
    assert lines[-1] == "diff-add train (1 of 2): 1,200/1,200 (100%), loss 0.0008, elapsed 0:10:00"


def test_progress_to_a_file_is_lines_not_a_live_display():
    console = Console(file=io.StringIO(), force_terminal=False, width=80)
    progress = Progress(console)
    with progress.task("unet train (1 of 1) with a long name that would not fit in 80 columns", total=3) as bar:
        for step in (1, 2, 3):
            bar.step(step, loss=0.5)
    assert console.file.getvalue() == ("unet train (1 of 1) with a long name that would not fit in 80 columns: "
                                       "3/3 (100%), loss 0.5000, elapsed 0:00:00\n")
