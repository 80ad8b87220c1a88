"""`segbench report`: merge runs, re-score if asked, make figures, render one format."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from segbench.errors import unknown
from segbench.plugins import Registry
from segbench.reports.comparison import compared_metric
from segbench.reports.options import ReportOptions
from segbench.results import RunResults, merge_runs
from segbench.results.rescore import select_scores

TIMING_KEYS = ("train_seconds", "predict_seconds", "masks_per_second", "compile_seconds")
EMBEDS_FIGURES = {"html"}  # figures inside the file
LINKS_FIGURES = {"md", "latex"}  # figures written beside --out and referenced


def compose_report(
    registry: Registry,
    run_dirs: list[Path],
    format_name: str,
    *,
    out_file: Path | None = None,
    standalone: bool = False,
    transpose: bool = False,
    baseline: str | None = None,
    metrics: list[str] | None = None,
    threshold: float | None = None,
    figures: bool = True,
    timings: bool = True,
) -> tuple[str, list[str]]:
    """(report text, notes for the user); figures of md/latex are written beside `out_file` when given.

    timings=False leaves out wall-clock numbers, so the same runs give the same bytes.
    """
    spec = registry.format(format_name)
    results = select_scores(merge_runs(list(run_dirs)), metrics, threshold, registry.metric)
    if not timings:
        results = without_timings(results)
    if baseline is not None and baseline not in results.scored_models:  # before any figure is written
        raise unknown("--baseline model", baseline, results.scored_models)
    known = registry.specs["metrics"]
    options: ReportOptions = {
        "standalone": standalone, "transpose": transpose, "baseline": baseline,
        "higher_is_better": {m: known[m].higher_is_better for m in results.metric_names if m in known},
    }
    notes: list[str] = []
    embed = format_name in EMBEDS_FIGURES
    if embed or format_name in LINKS_FIGURES:
        made: list = []
        if figures and (embed or out_file is not None):
            from segbench.reports.figures import make_figures, write_beside

            made, notes = make_figures(results, compared_metric(results))
            if not embed:
                made = write_beside(made, Path(out_file))
        options["figures"] = made
    return spec.render(results, options), notes


def without_timings(results: RunResults) -> RunResults:
    """The results with training time and masks/s removed, and a note in the config saying so."""
    models = {name: {k: v for k, v in info.items() if k not in TIMING_KEYS} for name, info in results.models.items()}
    return replace(results, models=models, config={**results.config, "timings_omitted": True})
