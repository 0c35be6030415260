"""Per-class dossiers: ``python -m analysis dossier RUN_DIR --out DIR [--classes ...]``.

For each class of the run's dataset (or those asked for), ``notebooks/dossier_class.ipynb`` is
executed with papermill (``CLASS_NAME`` and the run injected after its ``parameters`` cell) and
exported to ``DIR/<class>.html`` with nbconvert; ``DIR/index.html`` (:mod:`analysis.report.index_page`)
shows the run's summary, confusion matrix and per-class recall, links the pages with each class's
thumbnail, support, precision, recall and F1, shows the facial-region heat table (the whole profile
in ``DIR/region_profile.csv``), and lists any class whose page failed (one failing class does not
stop the others).

The output folder follows tdrag's ownership rule: ``DIR`` must be absent, empty or a previous
dossier (recognised by its marker file :data:`MARKER`); anything else is refused. The dossier is
built in a hidden staging folder beside ``DIR`` and moved into place at the end, so an interrupted
build leaves the previous dossier as it was.
"""

from __future__ import annotations

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
#: The region profile of every analysed clip, written beside the index.
REGION_CSV = "region_profile.csv"
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


def build_dossier(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    classes: list[str] | None = None,
    small: bool = False,
    device: str = "auto",
    max_clips: int | None = None,
    checkpoint: str = "auto",
    method: str = "integrated_gradients",
    stage: str | None = None,
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
        stage: the attention stage each page animates (default the deepest).
        template: the class-page notebook (default ``notebooks/dossier_class.ipynb``).
        timeout: seconds allowed per notebook cell.
    """
    import papermill
    from tqdm.auto import tqdm

    from analysis.internals.run import open_run
    from analysis.plotting import class_index
    from analysis.report.class_page import class_summary
    from analysis.report.index_page import index_html
    from analysis.report.region_profile import region_profile, score_maps
    from tdrag.atomic import atomic_path

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
                                  "MAX_CLIPS": int(max_clips or 0), "CHECKPOINT": checkpoint, "METHOD": method,
                                  "STAGE": stage or ""}
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
        # The index's region heat table and thumbnails: every analysed clip's attention (its cached
        # pass); a model without attention is profiled by Grad-CAM instead.
        scores = score_maps(run, range(len(run)), () if run.has_attention else ("gradcam",), small=small)
        profile = region_profile(scores)
        with atomic_path(staging / REGION_CSV) as tmp:
            profile.to_csv(tmp, index=False, float_format="%.6g")
        (staging / "index.html").write_text(index_html(run, summary, pages, failed, scores, profile, REGION_CSV),
                                            encoding="utf-8")
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
