"""The HTML report in a real headless browser (Chromium through Selenium): every table and figure is on the
page and drawn, and a report of eight models fits the window's width.

Skipped, saying what to install, where no Chromium with its driver is found; .ci/run installs Debian's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from segbench.reports import html
from tests.reports.conftest import results_with

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium missing: pip install -e '.[dev]'")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="no headless browser: apt-get install chromium chromium-driver")

WIDTH, HEIGHT = 1280, 900
# Each figure as the browser drew it: [alt, loaded, natural width, width on the page, height on the page].
FIGURES = """return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth,
                                               i.getBoundingClientRect().width, i.getBoundingClientRect().height]);"""
TABLES = "return [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().height);"


@pytest.fixture(scope="module")
def browser(tmp_path_factory, monkeypatch_module) -> Iterator[object]:
    """Headless Chromium with this machine's driver; no network (Selenium Manager stays offline)."""
    monkeypatch_module.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", f"--window-size={WIDTH},{HEIGHT}",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_table_and_figure_is_drawn(browser, toy_run, run_cli, tmp_path):
    page = tmp_path / "report.html"
    code, _, stderr = run_cli("report", str(toy_run), "--format", "html", "--out", str(page))
    assert code == 0, stderr
    browser.get(page.as_uri())
    figures = browser.execute_script(FIGURES)
    # qualitative grid, per-image Dice, training losses, uncertainty against error: each decoded and shown
    assert len(figures) == 4, figures
    assert all(loaded and natural > 0 and width > 0 and height > 0 for _, loaded, natural, width, height in figures)
    tables = browser.execute_script(TABLES)
    assert len(tables) == page.read_text().count("<table>") >= 3 and all(height > 0 for height in tables), tables
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and _has_content(shot)


@pytest.mark.parametrize("transpose", [False, True], ids=["metrics-as-rows", "transposed"])
def test_eight_models_need_no_horizontal_scrolling(browser, tmp_path, transpose):
    page = tmp_path / "wide.html"
    page.write_text(html.render(results_with(8), {"transpose": transpose}))
    browser.get(page.as_uri())
    page_width, viewport = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")
    assert page_width <= viewport, (page_width, viewport)


def _has_content(png: Path) -> bool:
    """A screenshot that is not one flat colour."""
    from PIL import Image

    with Image.open(png) as image:
        return any(low != high for low, high in image.convert("RGB").getextrema())
