"""The CLI's tables never cut a cell to "…": piped (a log, a file) at COLUMNS=80 or 40, each cell stays whole
on its line; on a terminal narrower than a table, a cell folds onto more lines."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from segbench import cli
from segbench.plugins import load_plugins
from segbench.reports.console import print_table
from segbench.study.run import plan_study
from tests.study.conftest import TOY, write

WIDTHS = ("80", "40")
PLUGIN = ("--plugin", "tests.toy_plugin")
LABELS_STUDY = TOY.replace("seeds = [0, 1]", 'seeds = [0, 1]\nlabels = [8, "all"]')


def piped(columns: str, *args: str) -> str:
    """stdout of `segbench ARGS` written to a pipe (not a terminal) with COLUMNS=`columns`."""
    result = CliRunner().invoke(cli.app, [*PLUGIN, *args], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("args", [("list", "models"), ("list", "datasets"), ("list", "metrics"), ("list", "formats"),
                                  ("list", "trackers"), ("info", "toy-staged"), ("plugins",)])
def test_list_info_and_plugins_tables_cut_no_cell(columns, args):
    assert "…" not in piped(columns, *args)


@pytest.mark.parametrize("columns", WIDTHS)
def test_study_plan_gives_each_cell_whole_on_one_line_with_its_label_budget(tmp_path, columns):
    path, out = write(tmp_path, LABELS_STUDY), tmp_path / "study"
    stdout = piped(columns, "study", "plan", str(path), "--out", str(out))
    assert "…" not in stdout
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip().startswith("squares-")}
    cells = plan_study(path, str(out), load_plugins(("tests.toy_plugin",))).cells
    assert sorted(rows) == sorted(cell.id for cell in cells)  # every id whole, on the line of its row
    header = stdout.splitlines()[0].split()
    assert header[:4] == ["cell", "task", "model", "labels"]
    assert {cell.id: rows[cell.id][3] for cell in cells} == {
        cell.id: "all" if cell.request.labels is None else str(cell.request.labels) for cell in cells}
    assert {row[3] for row in rows.values()} == {"8", "all"}


@pytest.mark.parametrize("columns", WIDTHS)
def test_the_end_of_a_run_cuts_no_cell_and_gives_the_label_budget(tmp_path, columns):
    stdout = piped(columns, "run", "--task", "lung", "--dataset", "toy", "--models", "toy-cnn", "--image-size", "32",
                   "--epochs", "1", "--labels", "8", "--labels-seed", "3", "--quiet", "--out", str(tmp_path / "run"))
    assert "…" not in stdout
    dice = next(line for line in stdout.splitlines() if line.strip().startswith("Dice"))
    assert dice.count("[") == 1 and dice.rstrip().endswith("]")  # the mean and its CI on one line
    assert "label budget: 8 of 24 images; labels seed: 3" in stdout


def test_a_terminal_narrower_than_a_table_folds_its_cells():
    cell = "infection-anomaly-ddpm-labels16-seed0-30c0518a"
    for columns, width in ((("cell", "model", "state"), 40), (("cell",), 20)):
        console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)
        table = Table(*columns, box=None)
        table.add_row(*(cell, "anomaly-ddpm", "done")[:len(columns)])
        print_table(console, table)
        lines = console.file.getvalue().splitlines()
        assert "…" not in "".join(lines) and max(map(len, lines)) <= width
    assert "".join(line.strip() for line in lines[1:]) == cell  # one column: folded, every character kept
