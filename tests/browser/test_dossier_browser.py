"""The dossier's index page in headless Chromium: its figures, thumbnails and region heat table
decode, it lists each class with its recall, and its links open class pages whose figures load and
whose animation plays.

Runs only with ``-m browser`` (``make test-browser``); needs Debian's ``chromium`` or
``TDRAG_CHROMIUM``. The dossier is built at small size on the tiny trained run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from analysis.internals.run import open_run
from analysis.report.class_page import class_summary
from analysis.report.dossier import build_dossier

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TDRAG_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def test_index_lists_classes_with_recall_and_links_open_pages(tiny_run, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set TDRAG_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    result = build_dossier(tiny_run, tmp_path / "dossier", classes=["Happy", "Sad"], small=True, device="cpu",
                           progress=False)
    assert not result.failed
    summary = class_summary(open_run(tiny_run, device="cpu", progress=False))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(result.index.as_uri())
            # The run at a glance: its figures, each class's thumbnail and the region heat table all decode.
            assert "WAR" in page.locator("body > p").first.inner_text()
            for alt in ("confusion matrix (row-normalised)", "per-class recall", "facial-region heat table"):
                assert page.locator(f'img[alt="{alt}"]').evaluate("i => i.naturalWidth") > 0, alt
            rows = page.locator("#classes tbody tr")
            assert rows.count() == 2
            for i, name in enumerate(["Happy", "Sad"]):
                cells = rows.nth(i).locator("td").all_inner_texts()
                assert cells[0] == name and cells[4] == f"{100 * summary.loc[name, 'recall']:.1f}" and cells[6] == "ok"
                assert rows.nth(i).locator("img.thumb").evaluate("i => i.naturalWidth") > 0
            links = page.locator('a[href$=".csv"]')  # the region profile, the order tests, the temporal agreement
            hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
            assert sorted(hrefs) == ["order_tests.csv", "region_profile.csv", "temporal_agreement.csv"]
            assert all((result.out / href).is_file() for href in hrefs)
            for alt in ("order tests", "temporal agreement"):  # the Time section's figures decode too
                assert page.locator(f'img[alt="{alt}"]').evaluate("i => i.naturalWidth") > 0, alt
            # A class page: its figures render and its animation plays.
            page.locator("#classes a", has_text="Sad").click()
            page.wait_for_load_state("load")
            assert page.url.endswith("Sad.html")
            assert page.locator("h1", has_text="Sad").count() >= 1
            loaded = page.evaluate("Array.from(document.images).filter(i => i.naturalWidth > 0).length")
            assert loaded >= 5, f"only {loaded} figures rendered on the Sad page"
            gif = page.locator('img[src^="data:image/gif"]')
            assert gif.count() == 1 and gif.evaluate("i => i.naturalWidth") > 0
            assert page.locator('a[download][href^="data:video/mp4"]').count() == 1
            assert not errors, f"JavaScript errors: {errors}"
        finally:
            browser.close()
