"""Per-class dossiers: ``python -m analysis dossier RUN_DIR --out DIR [--classes ...]``.

For each class of the run's dataset (or those asked for), ``notebooks/dossier_class.ipynb`` is
executed with papermill (``CLASS_NAME`` and the run injected after its ``parameters`` cell) and
exported to ``DIR/<class>.html`` with nbconvert; ``DIR/index.html`` (:mod:`analysis.report.index_page`)
shows the run's summary, confusion matrix and per-class recall, links the pages with each class's
thumbnail, support, precision, recall and F1, shows the facial-region heat table (the whole profile
in ``DIR/region_profile.csv``) and the Time section (the order tests in ``DIR/order_tests.csv``, and
on synthetic data the temporal agreement in ``DIR/temporal_agreement.csv``), and lists any class whose page failed (one failing class does not
stop the others).

The output folder follows tdrag's ownership rule: ``DIR`` must be absent, empty or a previous
dossier (recognised by its marker file :data:`MARKER`) holding nothing, at any depth, but the files
a dossier writes (:func:`dossier_files`); anything else is refused, naming the file. The dossier is
built in a hidden staging folder beside ``DIR`` and moved into place at the end, so an interrupted
build leaves the previous dossier as it was; the staging folder of a killed build is removed by
the next one. One build at a time writes ``DIR`` (``tdrag.ownership.hold_output``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.report.time_section import AGREEMENT_CSV, ORDER_CSV
from tdrag import ownership
from tdrag.atomic import follow_umask
from tdrag.errors import OutputError

log = logging.getLogger(__name__)

#: The marker file that makes a folder recognisably a dossier (and so replaceable).
MARKER = ".tdrag-dossier.json"
FORMAT = "tdrag-dossier/1"
#: The region profile of every analysed clip, written beside the index.
REGION_CSV = "region_profile.csv"
#: Files every dossier writes beside its class pages, relative to ``DIR``. A rebuild replaces only
#: these and the class files (:data:`CLASS_FILES`): append an output here when the dossier writes a
#: new one, or a rebuild refuses it as somebody else's file.
DOSSIER_FILES: tuple[str, ...] = (MARKER, "index.html", REGION_CSV, ORDER_CSV, AGREEMENT_CSV)
#: Files written per class, by the page's stem (:func:`page_name`).
CLASS_FILES: tuple[str, ...] = ("{stem}.html", "notebooks/{stem}.ipynb")
#: Folders a dossier makes even when they stay empty.
DOSSIER_DIRS: tuple[str, ...] = ("notebooks",)
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


def dossier_files(classes: list[str]) -> set[str]:
    """Every file a dossier of ``classes`` may hold (``/``-separated, relative to its folder)."""
    return {*DOSSIER_FILES, *(name.format(stem=page_name(c)) for c in classes for name in CLASS_FILES)}


def _own_files(out: Path) -> set[str] | None:
    """The files the dossier at ``out`` was written with, by its marker (None: no readable marker)."""
    try:
        classes = json.loads((out / MARKER).read_text())["classes"]
        return dossier_files([str(c) for c in classes])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check_destination(out: str | os.PathLike) -> None:
    """Refuse an ``out`` that is not absent, an empty folder or a previous dossier holding only what
    a dossier writes (OutputError naming what else is there)."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    own = _own_files(out) if is_dossier(out) else None
    if own is None:
        raise OutputError(f"{out}: folder holds files that are not a dossier (no {MARKER}); refusing to replace it, "
                          "choose an empty or new --out")
    ownership.refuse_foreign_files(out, own, "the dossier there", own_dirs=DOSSIER_DIRS)
    ownership.check_removable(out, "the dossier there")


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

    Raises:
        OutputError: ``out`` is not a dossier's to replace, cannot be written, or another process
            is building it.
    """
    from analysis.internals.run import open_run
    from analysis.plotting import class_index
    from analysis.report.class_page import class_summary

    out = Path(out).absolute()  # its name and folder name the staging folders beside it (`--out .` too)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(f"{template}: class-page notebook not found (run from a clone of the repository)")
    with ownership.hold_output(out, "dossier"):  # a second build of out refuses meanwhile
        # Holding out, no other build uses a staging folder of it: those here were left by killed builds.
        ownership.remove_leftovers(out.parent, (f".{out.name}.partial-", f".{out.name}.old-"))
        check_destination(out)
        run = open_run(run_dir, device=device, max_clips=max_clips, checkpoint=checkpoint, progress=False)
        names = list(run.class_names) if not classes else [run.class_names[class_index(c, run.class_names)]
                                                           for c in classes]
        summary = class_summary(run)
        parameters: dict[str, Any] = {"RUN_DIR": str(Path(run_dir).resolve()), "DEVICE": device, "SMALL": bool(small),
                                      "MAX_CLIPS": int(max_clips or 0), "CHECKPOINT": checkpoint, "METHOD": method,
                                      "STAGE": stage or ""}
        staging = _staging_folder(out)
        try:
            pages, failed = _execute_pages(staging, template, names, parameters, Path(run_dir).name,
                                           kernel_name, timeout, progress)
            _write_index(staging, run, summary, pages, failed, small)
            marker = {"format": FORMAT, "run": str(run_dir), "checkpoint": run.checkpoint.reason, "classes": names,
                      "pages": pages, "failed": failed}
            (staging / MARKER).write_text(json.dumps(marker, indent=2))
            _put_in_place(staging, out)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return DossierResult(out=out, index=out / "index.html", pages={k: out / v for k, v in pages.items()}, failed=failed)


def _staging_folder(out: Path) -> Path:
    """A hidden folder beside ``out`` (with its ``notebooks/``) where the dossier is built."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        (staging / "notebooks").mkdir()
    except OSError as exc:  # named as --out: the staging folder is no name the user knows
        raise OutputError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    return staging


def _execute_pages(staging: Path, template: Path, names: list[str], parameters: dict[str, Any], run_name: str,
                   kernel_name: str, timeout: int, progress: bool) -> tuple[dict[str, str], dict[str, str]]:
    """Execute the class page of each of ``names`` into ``staging`` and export it to HTML.

    Returns:
        ``(pages, failed)``: class -> HTML file name, class -> one-line reason.
    """
    import papermill
    from tqdm.auto import tqdm

    manager = _quiet_kernel_manager()
    pages: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in tqdm(names, desc="dossier", unit="class", disable=not progress):
        stem = page_name(name)
        executed = staging / "notebooks" / f"{stem}.ipynb"
        try:
            papermill.execute_notebook(str(template), str(executed), parameters={**parameters, "CLASS_NAME": name},
                                       kernel_name=kernel_name, language="python", cwd=str(template.parent),
                                       progress_bar=False, execution_timeout=timeout, log_output=False,
                                       kernel_manager_class=manager)
        except Exception as exc:  # noqa: BLE001 -- one class's failure must not stop the others
            failed[name] = _failure(exc)
            log.warning("dossier: class %s failed: %s", name, failed[name])
        try:
            if executed.is_file():
                export_html(executed, staging / f"{stem}.html", f"{name}: {run_name}")
                pages[name] = f"{stem}.html"
        except Exception as exc:  # noqa: BLE001 -- listed in the index like a failed page
            failed.setdefault(name, f"HTML export failed: {_failure(exc)}")
    return pages, failed


def _quiet_kernel_manager():
    """nbclient's kernel manager, starting kernels with their stdout and stderr closed.

    A kernel writes its own lines there, not the notebook's (those travel over ZMQ into the page):
    a warning about its transport on every start and, when Ctrl-C stops the build, a traceback
    from its message handler. Left on the command's stderr they would bury its one line.
    """
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stdout", subprocess.DEVNULL)  # Popen arguments, passed down to the launch
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super().start_kernel(**kw)

    return QuietKernelManager


def _write_index(staging: Path, run, summary, pages: dict[str, str], failed: dict[str, str], small: bool) -> None:
    """``index.html``, and beside it the region profile CSV and the Time section's CSVs.

    The index's region heat table and thumbnails: every analysed clip's attention (its cached
    pass); a model without attention is profiled by Grad-CAM instead. The Time section: the order
    tests and, on synthetic data, the temporal agreement (``analysis.report.time_section``).
    """
    from analysis.report.index_page import index_html
    from analysis.report.region_profile import region_profile, score_maps
    from analysis.report.time_section import measure_time, time_section_html, write_time_csvs
    from tdrag.atomic import atomic_path

    scores = score_maps(run, range(len(run)), () if run.has_attention else ("gradcam",), small=small)
    profile = region_profile(scores)
    with atomic_path(staging / REGION_CSV) as tmp:
        profile.to_csv(tmp, index=False, float_format="%.6g")
    time_checks = measure_time(run, small=small)
    write_time_csvs(staging, time_checks)
    page = index_html(run, summary, pages, failed, scores, profile, REGION_CSV, time_html=time_section_html(time_checks))
    (staging / "index.html").write_text(page, encoding="utf-8")


def _put_in_place(staging: Path, out: Path) -> None:
    """Move the finished ``staging`` to ``out``, replacing the previous dossier there (checked again
    first: nothing may have appeared in it meanwhile); on failure the previous one stays."""
    follow_umask(staging)  # mkdtemp made it 0700; the dossier is read as the umask allows
    check_destination(out)
    try:
        if out.exists():
            ownership.swap_into_place(staging, out, tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        else:
            os.replace(staging, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot be replaced ({exc.strerror or exc})") from None
