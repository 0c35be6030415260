"""The class explorer in a real browser: JupyterLab + headless Chromium driven by Playwright.

What it checks that the pytest widget tests cannot: the notebook's widgets render in JupyterLab
(the widget manager, the comm channel to the kernel, the front-end extension), and picking another
class in the rendered dropdown reaches the kernel and changes the image the page shows.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; no ``playwright install``) and runs
only with ``-m browser`` (``make test-browser``). The notebook is served from a temporary copy
with its parameters pointing at a tiny trained run, so the repository's notebook never gets
outputs written into it by JupyterLab's autosave.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from analysis.notebook.execute import inject_parameters
from tdrag.train.demo import ensure_demo

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "06_class_explorer.ipynb"
CHROMIUM = os.environ.get("TDRAG_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Seconds: JupyterLab start, then kernel start + the notebook's cells (the explorer's first
# pass over the clips), then one redraw.
SERVER_TIMEOUT = 90
RUN_TIMEOUT = int(os.environ.get("TDRAG_BROWSER_RUN_TIMEOUT", 240))
CHANGE_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    keep = os.environ.get("TDRAG_NOTEBOOK_DEMO")
    root = Path(keep) if keep else tmp_path_factory.mktemp("browser_demo")
    return Path(ensure_demo(root, small=True, progress=False))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, demo_run):
    """A JupyterLab server on a free port serving a copy of the explorer notebook; yields
    ``(base_url, token, notebook path relative to the server root)``."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set TDRAG_CHROMIUM)")
    root = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    inject_parameters(nb, {"RUN_DIR": str(demo_run), "SMALL": True, "DEVICE": "cpu"})
    (root / "notebooks").mkdir()
    nbformat.write(nb, root / "notebooks" / NOTEBOOK.name)
    # Private config/settings/workspace folders: no user state is read or written, and the
    # "news" announcements (a network fetch and a pop-up) are switched off.
    config_dir = root / ".jupyter"
    (config_dir / "labconfig").mkdir(parents=True)
    (config_dir / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir), JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    port, token = free_port(), secrets.token_hex(16)
    log_path = root / "jupyter.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, f"notebooks/{NOTEBOOK.name}", log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def image_digest(page, selector: str) -> str | None:
    """SHA-256 of the bytes behind the first ``<img>`` matching ``selector`` (None if absent)."""
    data = page.evaluate(
        """async (sel) => {
            const img = document.querySelector(sel);
            if (!img || !img.src) return null;
            const buf = await (await fetch(img.src)).arrayBuffer();
            return Array.from(new Uint8Array(buf));
        }""",
        selector,
    )
    return None if data is None else hashlib.sha256(bytes(data)).hexdigest()


def test_class_dropdown_changes_the_figure(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, notebook, log_path = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                check_explorer(page, base, token, notebook)
            except Exception:
                # Leave evidence: what the page showed, and the server's log.
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                print(f"screenshot: {tmp_path / 'failure.png'}\nJupyterLab log tail:\n{log_path.read_text()[-3000:]}")
                raise
        finally:
            browser.close()


def check_explorer(page, base: str, token: str, notebook: str) -> None:
    """Open the notebook, run all cells, see the strip and the animation, switch the class, and check
    the strip changes."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    strip = "img.tdrag-explorer-strip"
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/lab/tree/{notebook}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=SERVER_TIMEOUT * 1000)
    # JupyterLab may ask which kernel to start: accept its choice (the notebook's python3).
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(timeout=15_000)
        dialog.locator("button.jp-mod-accept").click()
    except PlaywrightTimeout:
        pass
    # Wait for the kernel to be ready, then Run > Run All Cells.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=SERVER_TIMEOUT * 1000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    page.wait_for_selector(strip, timeout=RUN_TIMEOUT * 1000)
    page.wait_for_function(f"document.querySelector('{strip}').naturalWidth > 0", timeout=RUN_TIMEOUT * 1000)
    error_outputs = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] >> text=Traceback")
    assert error_outputs.count() == 0, error_outputs.first.inner_text()
    # The animation plays beside it (a GIF the page decodes) with its MP4 to download.
    page.wait_for_function("document.querySelector('img.tdrag-explorer-animation').naturalWidth > 0",
                           timeout=RUN_TIMEOUT * 1000)
    mp4 = page.locator(".tdrag-explorer-mp4 a[download]")
    assert mp4.count() == 1 and mp4.get_attribute("href").startswith("data:video/mp4;base64,")
    header = page.locator(".tdrag-explorer-header").inner_text()
    assert "Checkpoint:" in header and "checkpoints/" in header and "Step readouts:" in header, header
    title_before = page.locator(".tdrag-explorer-title").inner_text()
    before = image_digest(page, strip)
    assert before is not None

    select = page.locator(".tdrag-explorer-class select")
    options = select.locator("option").all_inner_texts()
    assert len(options) >= 2, f"need two classes to switch between, the dropdown has {options}"
    current = select.evaluate("s => s.options[s.selectedIndex].text")
    target = next(o for o in options if o != current)
    select.select_option(label=target)

    # The kernel redraws and sends new bytes; the page swaps the image.
    deadline = time.monotonic() + CHANGE_TIMEOUT
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = image_digest(page, strip)
    assert after != before, f"the keyframe strip did not change within {CHANGE_TIMEOUT} s of choosing {target!r}"
    title_after = page.locator(".tdrag-explorer-title").inner_text()
    assert title_after != title_before
    # The clip dropdown now lists clips of the new class, and the title names that class.
    # (The browser renders the option's spaces as no-break spaces.)
    assert target.replace("\xa0", " ").split(" (")[0] in title_after
    assert not errors, f"JavaScript errors on the page: {errors}"
