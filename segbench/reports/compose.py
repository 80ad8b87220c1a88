"""`segbench report`: merge runs, re-score if asked, make figures, render one format."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

from segbench.errors import SegbenchError, unknown
from segbench.io import atomic_write_text
from segbench.plugins import Registry
from segbench.reports.comparison import compared_metric
from segbench.reports.options import ReportOptions
from segbench.reports.strata import subgroups
from segbench.reports.uncertainty import uncertainty_quality
from segbench.reports.upper_bound import upper_bounds
from segbench.results import RunResults, load_run, merge_runs
from segbench.results.rescore import select_scores
from segbench.specs import FormatSpec
from segbench.study.directory import is_study

TIMING_KEYS = ("train_seconds", "predict_seconds", "masks_per_second", "compile_seconds")


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
    by: str | None = None,
) -> tuple[str, list[str]]:
    """(report text, notes for the user); figures of md/latex are written beside `out_file` when given.

    timings=False leaves out wall-clock numbers, so the same runs give the same bytes; `by` breaks the
    results down by a metadata column of per_image.csv.
    """
    spec = registry.format(format_name)
    if len(run_dirs) == 1 and is_study(run_dirs[0]):
        if by is not None:
            raise SegbenchError(f"--by {by}: breaks down run directories, not a study; give one of its cells' run directories")
        return compose_study_report(registry, Path(run_dirs[0]), spec, out_file=out_file, standalone=standalone,
                                    figures=figures, baseline=baseline), []
    results = select_scores(merge_runs(list(run_dirs)), metrics, threshold, registry.metric)
    if not timings:
        results = without_timings(results)
    if baseline is not None and baseline not in results.scored_models:  # before any figure is written
        raise unknown("--baseline model", baseline, results.scored_models)
    if by is not None:
        subgroups(results, by)  # an unknown column fails before any figure is written
    options, notes = analysis_options(registry, results)
    options.update(standalone=standalone, transpose=transpose, baseline=baseline, by=by)
    embed = spec.figures == "embedded"
    if spec.figures != "none":
        made: list = []
        if figures and (embed or out_file is not None):
            from segbench.reports.figures import make_figures, write_beside

            made, notes = make_figures(results, compared_metric(results), spec.figure_file)
            if not embed:
                made = write_beside(made, Path(out_file))
        options["figures"] = made
    return spec.render(results, options), notes


def metric_options(registry: Registry, results: RunResults) -> ReportOptions:
    """What the tables take from the specs of the run's metrics: higher_is_better, labels and empty-mask
    rules (a metric of a plugin no longer installed is reported as stored, by its name, higher better)."""
    specs = {}
    for name in results.metric_names:
        with contextlib.suppress(SegbenchError):
            specs[name] = registry.metric(name)
    return {"higher_is_better": {m: s.higher_is_better for m, s in specs.items()},
            "labels": {m: s.label for m, s in specs.items() if s.label},
            "empty_rules": {s.label or m: s.empty_rule for m, s in specs.items() if s.empty_rule}}  # by display name


def analysis_options(registry: Registry, results: RunResults) -> tuple[ReportOptions, list[str]]:
    """What every report of `results` (the run's report.md too) takes from the metrics' specs and the saved
    predictions: higher_is_better, the metrics' empty-mask rules, the uncertainty table (a note when the
    run's saved predictions do not allow it)."""
    options = metric_options(registry, results)
    notes = []
    try:
        options["uncertainty"] = uncertainty_quality(results)
    except SegbenchError as exc:
        notes.append(f"no uncertainty table: {exc}")
    scored = [m for m in results.scored_models if _spec_says(registry, m, "upper_bound")]
    if scored:
        try:
            options["upper_bound"] = upper_bounds(results, scored)
        except SegbenchError as exc:
            notes.append(f"no upper-bound table: {exc}")
    return options, notes


def _spec_says(registry: Registry, model: str, flag: str) -> bool:
    """Whether `model`'s spec sets `flag` (False for a model whose plugin is no longer installed)."""
    try:
        return bool(getattr(registry.model(model), flag))
    except SegbenchError:
        return False


def compose_study_report(registry: Registry, directory: Path, spec: FormatSpec, *, out_file: Path | None,
                         standalone: bool, figures: bool, baseline: str | None) -> str:
    """The report of a study directory in one format (its per-seed figure, and with a labels axis its
    learning curve, embedded or written beside)."""
    from segbench.reports.study import learning_curve_figure, seed_figure
    from segbench.study.results import load_study

    if spec.render_study is None:
        raise SegbenchError(f"format {spec.name!r} (plugin {spec.plugin!r}) cannot render a study; formats that can: "
                            f"{', '.join(n for n, f in registry.specs['formats'].items() if f.render_study)}")
    results = load_study(directory)
    if baseline is not None:
        models = list(dict.fromkeys(results.under(e, None) for e in results.entries))  # under every policy
        if baseline not in models:
            raise unknown("--baseline model", baseline, models)
        results = replace(results, baseline=baseline)
    known = registry.specs["metrics"]
    options: dict = {"standalone": standalone,
                     "higher_is_better": {m: known[m].higher_is_better for m in results.metrics if m in known},
                     "upper_bound": [e for e in results.entries if _spec_says(registry, results.model(e), "upper_bound")]}
    made = []
    if figures and spec.figures != "none" and (spec.figures == "embedded" or out_file is not None):
        made = [f for f in (learning_curve_figure(results, spec.figure_file), seed_figure(results, spec.figure_file)) if f]
        if spec.figures == "linked":
            from segbench.reports.figures import write_beside

            made = write_beside(made, Path(out_file))
    options["figures"] = made
    return spec.render_study(results, options)


def without_timings(results: RunResults) -> RunResults:
    """The results with training time and masks/s removed, marked so that the report says so."""
    models = {name: replace(info, **dict.fromkeys(TIMING_KEYS), stages=[replace(s, seconds=None) for s in info.stages])
              for name, info in results.models.items()}
    return replace(results, models=models, timings_omitted=True)


def write_run_report(run_dir: Path, registry: Registry) -> None:
    """A run directory's report.md: the Markdown report of its results, with the analyses every report takes."""
    results = load_run(run_dir)
    atomic_write_text(run_dir / "report.md", registry.format("md").render(results, analysis_options(registry, results)[0]))
