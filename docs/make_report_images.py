"""The report images under docs/: a run's qualitative figure and its compiled LaTeX report's first page.

    python docs/make_report_images.py RUN_DIR     # docs/qualitative.png, docs/latex-report.png

Renders with `segbench report` (--no-timings), compiles the standalone LaTeX with pdflatex, rasterises
its first page with pdftoppm (Debian: texlive-latex-base texlive-latex-recommended poppler-utils) and
crops it to what is printed above the page number.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

DOCS = Path(__file__).parent
MARGIN = 20  # pixels of white kept around the printed part of the page
FOOTER = 0.85  # the part of the page above its footer (the page number sits at 88 % of a letter page)


def report(run: Path, out: Path, *options: str) -> None:
    subprocess.run([sys.executable, "-m", "segbench", "report", str(run), "--no-timings", "--out", str(out), *options],
                   check=True)


def main() -> None:
    run = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report(run, work / "report.md")
        shutil.copy(work / "report-figures" / "qualitative.png", DOCS / "qualitative.png")
        report(run, work / "report.tex", "--format", "latex", "--standalone")
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=work, check=True,
                       capture_output=True)
        subprocess.run(["pdftoppm", "-png", "-r", "130", "-f", "1", "-l", "1", "-singlefile", "report.pdf", "page"],
                       cwd=work, check=True)
        with Image.open(work / "page.png") as page:
            grey = page.convert("L")
            body = grey.crop((0, 0, grey.width, int(grey.height * FOOTER)))  # without the page number
            left, top, right, bottom = ImageOps.invert(body).getbbox()
            grey.crop((left - MARGIN, top - MARGIN, right + MARGIN, bottom + MARGIN)).save(DOCS / "latex-report.png")
    print(f"wrote {DOCS / 'qualitative.png'} and {DOCS / 'latex-report.png'}")


if __name__ == "__main__":
    main()
