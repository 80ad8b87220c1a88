"""The options a report format's `render(results, options)` receives from `segbench report`.

A plain dict, so third-party formats keep working; every key is optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from segbench.reports.figures import ReportFigure
    from segbench.reports.uncertainty import UncertaintyQuality


class ReportOptions(TypedDict, total=False):
    standalone: bool  # LaTeX: a complete document
    transpose: bool  # models as rows, metrics as columns
    baseline: str | None  # the model the paired comparison uses (default: the first)
    higher_is_better: dict[str, bool]  # per metric, from its MetricSpec; default True
    labels: dict[str, str]  # per metric, how tables name it (MetricSpec.label); default its name
    empty_rules: dict[str, str]  # per metric that states one (MetricSpec.empty_rule), by its label; printed with the policy
    uncertainty: list[UncertaintyQuality]  # the uncertainty table, when the saved predictions allow it
    by: str | None  # a metadata column to break the results down by (`--by`)
    figures: list[ReportFigure]  # rendered figures; `path` set when written beside the report
