"""`segbench report` end to end: formats, figures, merging, baseline, re-scoring options and their errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pypdf
import pytest

from tests.reports.conftest import results_with, write_run

PNG = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two synthetic runs of the same task and dataset; the second has a model with an uncertainty map."""
    root = tmp_path_factory.mktemp("runs")
    first = write_run(root / "a", {"unet": 0.3, "res50attunet": 0.45})
    second = write_run(root / "b", {"diff-add": 0.35}, uncertainty=True)
    return first, second


def assert_self_contained(html: str) -> None:
    """No reference leaves the file: every src is a data: URI, and no URL remains once those are removed."""
    assert re.findall(r'src="([^"]*)"', html) and all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', html))
    rest = DATA_URI.sub("", html)
    for needle in ("http:", "https:", "//", "href=", "url(", "@import", "<link", "<script"):
        assert needle not in rest, needle


def test_html_is_one_self_contained_file(toy_run, run_cli, tmp_path):
    target = tmp_path / "report.html"
    code, _, stderr = run_cli("report", str(toy_run), "--format", "html", "--out", str(target))
    assert code == 0, stderr
    html = target.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert_self_contained(html)
    assert html.count("<img ") == 4  # qualitative grid, per-image Dice, training losses, uncertainty against error
    assert "Empty-mask policy" in html and "toy-cnn std" not in html  # titles are inside the PNGs
    assert list(tmp_path.iterdir()) == [target]  # nothing written beside an HTML report


def test_markdown_writes_its_figures_beside_the_report(two_runs, run_cli, tmp_path):
    target = tmp_path / "cmp.md"
    code, _, stderr = run_cli("report", *map(str, two_runs), "--out", str(target))
    assert code == 0, stderr
    text = target.read_text()
    for name in ("qualitative", "distribution", "losses"):
        assert f"![{name}](cmp-figures/{name}.png)" in text
        assert (tmp_path / "cmp-figures" / f"{name}.png").read_bytes().startswith(PNG)
    assert "per-pixel uncertainty map" in text  # diff-add stored an uncertainty map, shown in the grid
    assert "| Metric | unet | res50attunet | diff-add |" in text and "- **Runs**:" in text
    assert "## Paired comparison with unet (per-image dice)" in text and "Holm" in text


def test_baseline_option_and_transpose(two_runs, run_cli):
    code, stdout, stderr = run_cli("report", *map(str, two_runs), "--baseline", "diff-add", "--transpose",
                                   "--no-figures")
    assert code == 0, stderr
    assert "## Paired comparison with diff-add" in stdout and "| Model | Dice | Jaccard |" in stdout
    assert "![" not in stdout


def test_unknown_baseline_is_one_clear_line(two_runs, run_cli):
    code, _, stderr = run_cli("report", str(two_runs[0]), "--baseline", "nope")
    assert code == 2 and "unknown --baseline model 'nope'; valid: res50attunet, unet" in stderr


def test_runs_of_different_datasets_are_refused(two_runs, run_cli, tmp_path):
    other = write_run(tmp_path / "c", {"other": 0.3}, dataset="folder")
    code, _, stderr = run_cli("report", str(two_runs[0]), str(other))
    assert code == 2 and "cannot merge runs with different dataset" in stderr


def test_a_metric_plugin_installed_later_scores_an_old_run(toy_run, run_cli):
    code, stdout, stderr = run_cli("--plugin", "tests.reports.extra_metric", "report", str(toy_run),
                                   "--metrics", "dice,fpr", "--threshold", "0.4")
    assert code == 0, stderr
    assert "| Dice |" in stdout and "| fpr |" in stdout and "| Jaccard |" not in stdout
    assert "- **Threshold**: 0.4" in stdout


def test_rescoring_a_run_without_reference_says_why(two_runs, run_cli, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(two_runs[0], old)
    (old / "predictions/_reference.npz").unlink()
    code, _, stderr = run_cli("report", str(old), "--threshold", "0.3")
    assert code == 2 and "_reference.npz" in stderr and "\n" not in stderr.strip()
    code, stdout, stderr = run_cli("report", str(old), "--metrics", "dice", "--out", str(tmp_path / "r.md"))
    assert code == 0 and "no qualitative figure" in stderr  # the report still works, without that figure


def test_unknown_metric_lists_the_valid_ones(toy_run, run_cli):
    code, _, stderr = run_cli("report", str(toy_run), "--metrics", "dice,hausdorff")
    assert code == 2 and "unknown metric 'hausdorff'; valid:" in stderr and "jaccard" in stderr


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex missing: apt-get install texlive-latex-base texlive-latex-recommended")
def test_standalone_latex_with_figures_compiles(two_runs, run_cli, tmp_path):
    renamed = tmp_path / "run"
    shutil.copytree(two_runs[0], renamed)
    target = tmp_path / "table.tex"
    code, _, stderr = run_cli("report", str(renamed), str(two_runs[1]), "--format", "latex", "--standalone",
                              "--out", str(target))
    assert code == 0, stderr
    assert r"\includegraphics[width=\linewidth]{table-figures/qualitative.pdf}" in target.read_text()
    first = (tmp_path / "table-figures/qualitative.pdf").read_bytes()
    assert first.startswith(b"%PDF")  # text and lines stay vector; the image panels are the images themselves
    code, _, stderr = run_cli("report", str(renamed), str(two_runs[1]), "--format", "latex", "--standalone",
                              "--out", str(target))
    assert code == 0 and (tmp_path / "table-figures/qualitative.pdf").read_bytes() == first  # no creation date
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", target.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "table.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex missing: apt-get install texlive-latex-base texlive-latex-recommended")
def test_latex_escapes_every_special_character_in_names(tmp_path):
    from dataclasses import replace

    from segbench.reports import latex
    from tests.reports.conftest import literal_results

    results = literal_results()
    odd = "a_b&c%d$e#f{g}h~i^j\\k<l>m"
    results.summary["model"] = results.summary["model"].replace("unet", odd)
    results.per_image["model"] = results.per_image["model"].replace("unet", odd)
    plan = results.record.plan
    renamed = tuple(replace(m, name=odd) if m.name == "unet" else m for m in plan.models)
    results.record = replace(results.record, plan=replace(plan, models=renamed))
    results.models[odd] = results.models.pop("unet")
    (tmp_path / "odd.tex").write_text(latex.render(results, {"standalone": True}))
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "odd.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    text = "".join(page.extract_text() for page in pypdf.PdfReader(tmp_path / "odd.pdf").pages)
    assert "¡" not in text and "¿" not in text  # what a bare < and > print as
    assert "<l>m" in text.replace(" ", "")


def test_lower_is_better_metric_bolds_the_lowest(two_runs, run_cli):
    code, stdout, stderr = run_cli("--plugin", "tests.reports.extra_metric", "report", *map(str, two_runs),
                                   "--metrics", "fpr", "--no-figures")
    assert code == 0, stderr
    row = next(line for line in stdout.splitlines() if line.startswith("| fpr |"))
    means = [float(cell.strip().strip("*").split()[0].strip("*")) for cell in row.strip("|").split("|")[1:]]
    bold = [i for i, cell in enumerate(row.strip("|").split("|")[1:]) if "**" in cell]
    assert bold == [means.index(min(means))]


def test_no_timings_gives_the_same_bytes_whatever_the_wall_clock(toy_run, run_cli, tmp_path):
    """Two runs that differ only in measured times render to identical files with --no-timings."""
    slower = tmp_path / "slower"
    shutil.copytree(toy_run, slower)
    models = json.loads((slower / "models.json").read_text())
    for info in models.values():
        info.update(train_seconds=info["train_seconds"] * 3 + 1, masks_per_second=0.5, predict_seconds=99.0)
    (slower / "models.json").write_text(json.dumps(models))
    texts = []
    for run in (toy_run, slower):
        target = tmp_path / f"{run.name}.html"
        code, _, stderr = run_cli("report", str(run), "--format", "html", "--no-timings", "--out", str(target))
        assert code == 0, stderr
        texts.append(target.read_bytes())
    assert texts[0] == texts[1]
    assert b"left out (--no-timings)" in texts[0]
    code, with_times, _ = run_cli("report", str(slower), "--no-figures")
    assert code == 0 and "| 0.50 |" in with_times  # the default report shows them


def test_html_to_a_terminal_asks_for_out(toy_run):
    """`report --format html` on a terminal would print its base64 figures: one line asking for --out."""
    import os
    import pty
    import subprocess
    import sys

    main, terminal = pty.openpty()
    done = subprocess.run([sys.executable, "-c", "from segbench.cli import main; main()", "--plugin", "tests.toy_plugin",
                           "report", str(toy_run), "--format", "html"], stdout=terminal, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    os.close(terminal)
    os.close(main)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --format html embeds its figures as base64") and "--out FILE" in done.stderr


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex missing: apt-get install texlive-latex-base texlive-latex-recommended")
@pytest.mark.parametrize("models", [2, 4, 8])
@pytest.mark.parametrize("transpose", [False, True], ids=["metrics-as-rows", "transposed"])
def test_latex_tables_fit_the_text_width(tmp_path, models, transpose):
    from segbench.reports import latex

    (tmp_path / "t.tex").write_text(latex.render(results_with(models), {"standalone": True, "transpose": transpose}))
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)


@pytest.mark.parametrize("sync", [False, True])
def test_a_run_of_several_processes_says_what_differs_from_one(sync):
    from dataclasses import replace

    from segbench.reports import markdown
    from tests.reports.conftest import literal_results

    results = literal_results()
    assert "**Processes**" not in markdown.render(results, {})
    results.record = replace(results.record, plan=replace(results.record.plan, processes=4, sync_batchnorm=sync))
    line = next(line for line in markdown.render(results, {}).splitlines() if line.startswith("- **Processes**"))
    assert "4 (torch.distributed)" in line and "not to the byte" in line and "evaluation sharded by sample" in line
    assert ("over the global batch" if sync else "per process") in line


@pytest.mark.parametrize(("args", "warning"), [
    (("--format", "md", "--standalone"), "warning: --standalone makes a LaTeX document; --format md ignores it"),
    (("--format", "csv", "--transpose"), "warning: --transpose lays out tables; CSV has one row per model and "
                                         "metric and ignores it"),
])
def test_report_options_that_do_nothing_are_warned_about(toy_run, run_cli, args, warning):
    code, _, stderr = run_cli("report", str(toy_run), "--no-figures", *args)
    assert code == 0 and warning in " ".join(stderr.split()), stderr
