"""Markdown and LaTeX rendering of a fixed results table against golden files.

After an intended change of the output: SEGBENCH_UPDATE_GOLDEN=1 pytest tests/reports/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from segbench.reports import latex, markdown
from tests.reports.conftest import literal_results

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SEGBENCH_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with SEGBENCH_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize(("name", "render", "options"), [
    ("report.md", markdown.render, {}),
    ("report-transposed.md", markdown.render, {"transpose": True, "baseline": "diff-add"}),
    ("report.tex", latex.render, {}),
    ("report-standalone.tex", latex.render, {"standalone": True, "transpose": True}),
])
def test_rendering_matches_golden(name, render, options):
    check_golden(name, render(literal_results(), options))


def test_golden_content_is_what_the_issue_asks():
    md = (GOLDEN / "report.md").read_text()
    assert "| Metric | unet | diff-add | smp:FPN:res_net |" in md  # metrics as rows, models as columns
    # diff-add has the best mean, but unet's 0.8450 lies inside its CI: not bold
    assert "| dice | 0.8450 [0.7783, 0.9067] | 0.8667 [0.8083, 0.9183] |" in md
    assert "Holm" in md and "Wilcoxon signed-rank" in md and "synthetic" in md and "Empty-mask policy" in md
    assert "failed: training diverged" in md
    # the paired effect beside the test, and the strata note (no reference of the literal results is empty)
    assert "| diff-add | all | 6 | 0.0217 [0.0050, 0.0383] | 5 / 0 / 1 | 6 | 0.0200 [0.0000, 0.0450] | 0.0938 |" in md
    assert "- diff-add against unet: over all 6 images, per-image dice is higher by 0.0217 on average" in md
    assert "Every evaluated reference has foreground" in md and "All evaluated images (6 images)." in md
    tex = (GOLDEN / "report.tex").read_text()
    assert "0.8667" in tex and r"\textbf{0.8667}" not in tex  # the best, not separated from the runner-up
    assert r"smp:FPN:res\_net" in tex and r"balanced accuracy" in tex
    assert r"\toprule" in tex and r"\caption{" in tex and r"\label{tab:segbench-infection}" in tex


@pytest.mark.parametrize(("runner_up", "higher", "bold"), [
    (0.80, True, {"a"}),      # outside a's CI [0.85, 0.95]: a is bold
    (0.86, True, set()),      # inside: noise, nothing bold
    (0.9001, True, set()),    # the same when printed
    (0.96, False, {"a"}),     # lower is better: a's 0.90 is best, 0.96 outside its CI
])
def test_bold_marks_only_a_best_separated_from_the_runner_up(runner_up, higher, bold):
    from segbench.reports.table import Cell, _best, _best_pooled

    worst = 0.5 if higher else 1.5
    cells = {"a": Cell(0.90, 0.85, 0.95, 0.91), "b": Cell(runner_up, runner_up - 0.05, runner_up + 0.05, 0.80),
             "c": Cell(worst, worst - 0.1, worst + 0.1, 0.5)}
    assert _best(cells, higher) == bold
    # pooled: bold only where the per-image best is the best pooled too (a's 0.91 is, if higher is better)
    assert _best_pooled(cells, higher, bold) == (bold if higher else set())
