"""Report figures (matplotlib, Agg): qualitative masks, synthetic images beside real ones, per-image metric
distribution, training losses, uncertainty against error."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from segbench.errors import SegbenchError
from segbench.io import atomic_write
from segbench.results import RunResults

DPI = 300  # PNG, for print
IMAGE_TYPES = ("png", "pdf")


@dataclass(frozen=True)
class ReportFigure:
    """A rendered figure: its image (PNG or vector PDF, `suffix`), a caption, and its path relative to the
    report once written beside it."""

    name: str
    caption: str
    image: bytes
    suffix: str = "png"
    path: str | None = None


def to_image(figure, suffix: str = "png") -> bytes:
    """A matplotlib Figure as PNG (DPI) or PDF bytes, drawn without a display or pyplot state; the PDF
    without a creation date, so the same figure gives the same bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    metadata = {"CreationDate": None} if suffix == "pdf" else None
    figure.savefig(buffer, format=suffix, dpi=DPI, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def make_figures(results: RunResults, metric: str | None, suffix: str = "png") -> tuple[list[ReportFigure], list[str]]:
    """Every figure the results allow (as `suffix` images), and a note for each one they do not (e.g. an
    old run without images)."""
    from segbench.reports.figures import distribution, losses, qualitative, synthetic, uncertainty

    makers: list[tuple[str, Callable]] = [
        ("qualitative", qualitative.plot),
        ("synthetic", synthetic.plot),
        ("distribution", lambda r: distribution.plot(r, metric)),
        ("losses", losses.plot),
        ("uncertainty", uncertainty.plot),
    ]
    figures, notes = [], []
    for name, plot in makers:
        try:
            made = plot(results)
        except SegbenchError as exc:
            notes.append(f"no {name} figure: {exc}")
            continue
        if made is None:  # a figure that does not apply to these models (synthetic images of CNNs)
            continue
        figure, caption = made
        figures.append(ReportFigure(name, caption, to_image(figure, suffix), suffix))
    return figures, notes


def write_beside(figures: list[ReportFigure], report: Path) -> list[ReportFigure]:
    """Write each figure to <report stem>-figures/<name>.<suffix>; returns them with paths relative to the report."""
    folder = f"{report.stem}-figures"
    written = []
    for figure in figures:
        relative = f"{folder}/{figure.name}.{figure.suffix}"
        with atomic_write(report.parent / relative) as handle:
            handle.write(figure.image)
        written.append(replace(figure, path=relative))
    return written
