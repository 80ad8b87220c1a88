"""What a finished run or evaluation prints on the terminal: the per-image mean [95% CI] table (rich, the
best per metric in bold when separated from the runner-up), its label budget, the total time, where the
results are and the command for HTML and LaTeX."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table as RichTable

from segbench.plugins import Registry
from segbench.reports.compose import metric_options
from segbench.reports.console import print_table
from segbench.reports.settings import header_items
from segbench.reports.table import BOLD_RULE, Entry, build_table, fmt, grid
from segbench.results import RunResults, load_run


def _cell(entry: Entry | None) -> str:
    if entry is None:
        return "–"
    value = f"[bold]{fmt(entry.value)}[/]" if entry.best else fmt(entry.value)
    return value if entry.ci is None else f"{value} [dim]\\[{fmt(entry.ci[0])}, {fmt(entry.ci[1])}][/]"


def mean_table(registry: Registry, results: RunResults, title: str) -> RichTable:
    labels, rows = grid(build_table(results, metric_options(registry, results)))
    table = RichTable(*labels, title=title, caption=BOLD_RULE, box=box.SIMPLE_HEAD, header_style="bold",
                      title_justify="left", caption_justify="left")
    for column in table.columns[1:]:
        column.justify = "right"
    for label, entries in rows:
        table.add_row(label, *map(_cell, entries))
    return table


def print_finished(console: Console, registry: Registry, run_dir: Path, title: str, seconds: float) -> None:
    results = load_run(run_dir)
    settings = dict(header_items(results))
    minutes, rest = divmod(round(seconds), 60)
    print_table(console, mean_table(registry, results, title))
    console.print(f"label budget: {settings['Label budget']}; labels seed: {settings['Labels seed']}",
                  markup=False, highlight=False, soft_wrap=True)
    console.print(f"done in {minutes} min {rest:02d} s; results in {run_dir}/ (report.md, summary.csv, "
                  "per_image.csv, predictions/)", highlight=False, soft_wrap=True)
    console.print(f"HTML or LaTeX: segbench report {run_dir} --format html --out {run_dir}/report.html "
                  "(or --format latex --standalone)", highlight=False, soft_wrap=True)
