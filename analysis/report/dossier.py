"""Per-class dossiers: ``python -m analysis dossier RUN_DIR --out DIR [--classes ...]``.

For each class of the run's dataset (or those asked for), ``notebooks/dossier_class.ipynb`` is
executed with papermill (``CLASS_NAME`` and the run injected after its ``parameters`` cell) and
exported to ``DIR/<class>.html`` with nbconvert; ``DIR/index.html`` links the pages with each
class's support, precision, recall and F1, the checkpoint shown and why, and lists any class whose
page failed (one failing class does not stop the others).

The output folder follows tdrag's ownership rule: ``DIR`` must be absent, empty or a previous
dossier (recognised by its marker file :data:`MARKER`); anything else is refused. The dossier is
built in a hidden staging folder beside ``DIR`` and moved into place at the end, so an interrupted
build leaves the previous dossier as it was.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdrag.errors import OutputError

log = logging.getLogger(__name__)

#: The marker file that makes a folder recognisably a dossier (and so replaceable).
MARKER = ".tdrag-dossier.json"
FORMAT = "tdrag-dossier/1"
#: The class-page notebook (in a clone of the repository).
TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks" / "dossier_class.ipynb"


@dataclass
class DossierResult:
    """What :func:`build_dossier` wrote: ``index`` (index.html), ``pages`` (class -> HTML page) and
    ``failed`` (class -> one-line reason)."""

    out: Path
    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def is_dossier(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`build_dossier` (it holds a valid marker)."""
    try:
        return json.loads((Path(path) / MARKER).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_destination(out: str | os.PathLike) -> None:
    """Refuse an ``out`` that is not absent, an empty folder or a previous dossier (OutputError)."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; choose another --out")
    if any(out.iterdir()) and not is_dossier(out):
        raise OutputError(f"{out}: folder holds files that are not a dossier (no {MARKER}); refusing to replace it, "
                          "choose an empty or new --out")


def page_name(class_name: str) -> str:
    """A safe file stem for a class name."""
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in class_name)
    return keep or "class"


def _failure(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    return " ".join(str(text).split())[:300]


def export_html(notebook_path: Path, html_path: Path, title: str) -> Path:
    """The executed notebook as a standalone HTML page (outputs and prose; code cells hidden)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook_path, as_version=4)
    nb.metadata["title"] = title
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def _index_html(run, summary, pages: dict[str, str], failed: dict[str, str]) -> str:
    from tdrag import metrics

    war = metrics.war(run.labels, run.predictions, run.num_classes)
    uar = metrics.uar(run.labels, run.predictions, run.num_classes)
    rows = []
    for name in run.class_names:
        if name not in pages and name not in failed:
            continue
        r = summary.loc[name]
        link = (f'<a href="{html.escape(pages[name])}">{html.escape(name)}</a>' if name in pages
                else html.escape(name))
        status = ("ok" if name not in failed else
                  f'<span class="failed">failed: {html.escape(failed[name])}</span>')
        rows.append(f"<tr><td>{link}</td><td>{int(r['support'])}</td><td>{100 * r['precision']:.1f}</td>"
                    f"<td class=\"recall\">{100 * r['recall']:.1f}</td><td>{100 * r['f1']:.1f}</td><td>{status}</td></tr>")
    esc = html.escape
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Dossier: {esc(str(run.run_dir))}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:right}}td:first-child,th:first-child{{text-align:left}}
.failed{{color:#b00}}</style></head>
<body>
<h1>Per-class dossier</h1>
<p>Run <code>{esc(str(run.run_dir))}</code>: model <code>{esc(run.config.model.name)}</code>, dataset
{esc(str(run.cache.dataset))} ({run.num_classes} classes), fold {run.config.data.fold}, {esc(run.split)} split,
{len(run)} clips analysed. WAR {100 * war:.2f} %, UAR {100 * uar:.2f} %.</p>
<p><b>Checkpoint shown:</b> {esc(run.checkpoint.reason)}.</p>
<p><b>Step readouts:</b> {esc(run.step_readout_meaning())}</p>
<table id="classes"><thead><tr><th>class</th><th>support</th><th>precision %</th><th>recall %</th><th>F1 %</th>
<th>page</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
{'<h2>Failed</h2><ul id="failed">' + ''.join(f'<li>{esc(k)}: {esc(v)}</li>' for k, v in failed.items()) + '</ul>' if failed else ''}
</body></html>
"""


def build_dossier(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    classes: list[str] | None = None,
    small: bool = False,
    device: str = "auto",
    max_clips: int | None = None,
    checkpoint: str = "auto",
    method: str = "integrated_gradients",
    template: str | os.PathLike | None = None,
    timeout: int = 1200,
    kernel_name: str = "python3",
    progress: bool = True,
) -> DossierResult:
    """Execute the class-page notebook once per class and write ``out/index.html`` (see the module docstring).

    Args:
        run_dir: a trained run (``analysis.internals.run.open_run`` opens it; nothing is trained).
        out: the dossier folder (absent, empty or a previous dossier).
        classes: class names (default: every class of the run's dataset, from its cache).
        small: coarse, seconds-long settings; device, max_clips, checkpoint: as ``open_run``.
        method: the attribution method shown on each page.
        template: the class-page notebook (default ``notebooks/dossier_class.ipynb``).
        timeout: seconds allowed per notebook cell.
    """
    import papermill
    from tqdm.auto import tqdm

    from analysis.internals.run import open_run
    from analysis.plotting import class_index
    from analysis.report.class_page import class_summary

    out = Path(out)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(f"{template}: class-page notebook not found (run from a clone of the repository)")
    check_destination(out)
    run = open_run(run_dir, device=device, max_clips=max_clips, checkpoint=checkpoint, progress=False)
    names = list(run.class_names) if not classes else [run.class_names[class_index(c, run.class_names)] for c in classes]
    summary = class_summary(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    pages: dict[str, str] = {}
    failed: dict[str, str] = {}
    parameters: dict[str, Any] = {"RUN_DIR": str(Path(run_dir).resolve()), "DEVICE": device, "SMALL": bool(small),
                                  "MAX_CLIPS": int(max_clips or 0), "CHECKPOINT": checkpoint, "METHOD": method}
    try:
        (staging / "notebooks").mkdir()
        for name in tqdm(names, desc="dossier", unit="class", disable=not progress):
            stem = page_name(name)
            executed = staging / "notebooks" / f"{stem}.ipynb"
            try:
                papermill.execute_notebook(str(template), str(executed), parameters={**parameters, "CLASS_NAME": name},
                                           kernel_name=kernel_name, language="python", cwd=str(template.parent), progress_bar=False,
                                           execution_timeout=timeout, log_output=False)
            except Exception as exc:  # noqa: BLE001 -- one class's failure must not stop the others
                failed[name] = _failure(exc)
                log.warning("dossier: class %s failed: %s", name, failed[name])
            try:
                if executed.is_file():
                    export_html(executed, staging / f"{stem}.html", f"{name}: {Path(run_dir).name}")
                    pages[name] = f"{stem}.html"
            except Exception as exc:  # noqa: BLE001 -- listed in the index like a failed page
                failed.setdefault(name, f"HTML export failed: {_failure(exc)}")
        (staging / "index.html").write_text(_index_html(run, summary, pages, failed), encoding="utf-8")
        marker = {"format": FORMAT, "run": str(run_dir), "checkpoint": run.checkpoint.reason, "classes": names,
                  "pages": pages, "failed": failed}
        (staging / MARKER).write_text(json.dumps(marker, indent=2))
        check_destination(out)  # again: nothing may have appeared there meanwhile
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "dossier")
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return DossierResult(out=out, index=out / "index.html", pages={k: out / v for k, v in pages.items()}, failed=failed)
