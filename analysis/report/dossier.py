"""Per-class dossiers: ``python -m analysis dossier RUN_DIR --out DIR [--classes ...]``.

For each class of the run's dataset (or those asked for), ``notebooks/dossier_class.ipynb`` is
executed with papermill (``CLASS_NAME`` and the run injected after its ``parameters`` cell) and
exported to ``DIR/<class>.html`` with nbconvert (:mod:`analysis.report.pages`); ``DIR/index.html`` (:mod:`analysis.report.index_page`)
shows the run's summary, confusion matrix and per-class recall, links the pages with each class's
thumbnail, support, precision, recall and F1, shows the facial-region heat table (the whole profile
in ``DIR/region_profile.csv``) and the Time section (the order tests in ``DIR/order_tests.csv``, and
on synthetic data the temporal agreement in ``DIR/temporal_agreement.csv``), and lists any class whose page failed (one failing class does not
stop the others).

The run is inspected once per dossier, and each attribution map made once: the build opens the
run, makes its inspection pass and saves it to the staging folder (``analysis.internals.saved_run``);
then it makes the maps each class's page shares with the index (the temporal view's Integrated
Gradients and frame ablation of the class's correctly predicted clips, kept in ``run.attributions``;
two classes at a time, :mod:`analysis.report.shared_maps`) and, class by class in order, saves them
and gives the class's page to the page kernels, which open the run from the saved passes (the
notebook's ``SAVED_RUN``). The pages run on a few kernels that each execute many of them
(:class:`~analysis.report.pages.PagePool`: one per CPU core, started, with their imports, while the
run is inspected). The index's measures that need no map (the order tests, on a copy of the model,
and the region scores of the cached attention) are made in a thread beside the maps from the start;
the temporal agreement, which reuses the shared maps, after them. The saved passes are removed
before the dossier is moved into place.

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
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.report.pages import page_name, timed
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
#: The staging folder's subfolder where the run's passes are saved for the pages (removed before the
#: dossier is moved into place, so it is not one of its files).
SAVED_RUN = ".saved-run"
#: The class-page notebook (in a clone of the repository).
TEMPLATE = Path(__file__).resolve().parents[2] / "notebooks" / "dossier_class.ipynb"


@dataclass
class DossierResult:
    """What :func:`build_dossier` wrote: ``index`` (index.html), ``pages`` (class -> HTML page) and
    ``failed`` (class -> one-line reason); ``timings``: seconds per stage of the build, wall seconds
    of the build's own stages (opening and inspecting the run, the index's measures made in a thread
    beside the maps, the attributions the pages share with the index, the temporal agreement,
    waiting for the pages, the index page) and, summed over the page kernels, their start, resets,
    pages executed and exported (``benchmarks/bench_dossier.py`` prints them)."""

    out: Path
    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


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
    kernels: int | None = None,
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
        kernels: class pages executed at once, one kernel each (default
            ``analysis.report.pages.default_kernels``: one per CPU core, at most 4).

    Raises:
        OutputError: ``out`` is not a dossier's to replace, cannot be written, or another process
            is building it.
    """
    from analysis.internals.run import open_run
    from analysis.plotting import class_index
    from analysis.report.pages import PagePool, default_kernels, thread_share, torch_threads

    out = Path(out).absolute()  # its name and folder name the staging folders beside it (`--out .` too)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise FileNotFoundError(f"{template}: class-page notebook not found (run from a clone of the repository)")
    timings: dict[str, float] = {}
    with ownership.hold_output(out, "dossier"):  # a second build of out refuses meanwhile
        # Holding out, no other build uses a staging folder of it: those here were left by killed builds.
        ownership.remove_leftovers(out.parent, (f".{out.name}.partial-", f".{out.name}.old-"))
        check_destination(out)
        with timed(timings, "open the run"):
            run = open_run(run_dir, device=device, max_clips=max_clips, checkpoint=checkpoint, progress=False)
        names = list(run.class_names) if not classes else [run.class_names[class_index(c, run.class_names)]
                                                           for c in classes]
        staging = _staging_folder(out)
        parameters: dict[str, Any] = {
            "RUN_DIR": str(Path(run_dir).resolve()), "DEVICE": device, "SMALL": bool(small),
            "MAX_CLIPS": int(max_clips or 0), "CHECKPOINT": checkpoint, "METHOD": method, "STAGE": stage or ""}
        if "SAVED_RUN" in _declared_parameters(template):  # a page without it opens the run itself
            parameters["SAVED_RUN"] = str((staging / SAVED_RUN).resolve())
        try:
            # The page kernels start (and import) while the run is inspected and measured here.
            count = kernels or default_kernels(len(names))
            threads = thread_share(count)  # the build and its kernels share the cores, each once
            with torch_threads(threads), PagePool(template, staging, Path(run_dir).name, parameters, len(names),
                                                  count, kernel_name, timeout, progress, threads) as pool:
                with timed(timings, "inspect the run"):
                    run.inspection  # the one inspection pass of the dossier
                # The index's measures that need no attribution map are made in a thread beside the
                # maps: torch lets go of the GIL inside its kernels, so both keep a core busy.
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dossier-index") as beside:
                    early = beside.submit(_measure_beside_maps, run.for_another_thread(), timings)
                    with timed(timings, "shared attributions, class by class, each saved, then its page given"):
                        first = _pages_after_their_maps(run, names, small, staging / SAVED_RUN, pool)
                    with timed(timings, "index: temporal agreement, then waiting for the order tests and "
                                        "region scores"):
                        measured = _measure_index(run, small, first, early.result())
                with timed(timings, "waiting for the last pages"):
                    pages, failed = pool.wait()
            timings.update(pool.timings)
            with timed(timings, "index page"):
                _write_index(staging, run, pages, failed, measured)
            shutil.rmtree(staging / SAVED_RUN)  # the pages' input, not part of the dossier
            marker = {"format": FORMAT, "run": str(run_dir), "checkpoint": run.checkpoint.reason, "classes": names,
                      "pages": pages, "failed": failed}
            (staging / MARKER).write_text(json.dumps(marker, indent=2))
            _put_in_place(staging, out)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return DossierResult(out=out, index=out / "index.html", pages={k: out / v for k, v in pages.items()}, failed=failed,
                         timings=timings)


def _declared_parameters(template: Path) -> set[str]:
    """The names the notebook's ``parameters`` cell assigns (none without such a cell)."""
    import ast

    import nbformat

    cell = next((c for c in nbformat.read(template, as_version=4).cells
                 if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return set()
    source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def _staging_folder(out: Path) -> Path:
    """A hidden folder beside ``out`` (with its ``notebooks/``) where the dossier is built."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        (staging / "notebooks").mkdir()
    except OSError as exc:  # named as --out: the staging folder is no name the user knows
        raise OutputError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    return staging


@dataclass
class _IndexFigures:
    """What the index shows beyond the run's predictions: the region scores and profile, the Time checks."""

    scores: Any
    profile: Any
    time_checks: Any


def _pages_after_their_maps(run, names: list[str], small: bool, folder: Path, pool) -> dict[str, Any]:
    """Save the run's passes to ``folder`` and give each class's page to ``pool`` once the maps it
    shares with the index are saved, class by class: a page starts while the next classes' maps are
    made (two classes at a time, :func:`~analysis.report.shared_maps.shared_maps_by_class`). Returns
    what the index measured on the way (its region scores, for a model without attention).

    Shared are the maps of the temporal view (the frame ablation and Integrated Gradients of the true
    class, on synthetic data with temporal ground truth) of the class's correctly predicted clips:
    for them, the true class the view explains is the predicted class the page explains. A model
    without attention has its index's region scores (Grad-CAM of every clip) made before any page.
    """
    from analysis.attribution.temporal import FRAME_ABLATION, INTEGRATED_GRADIENTS, has_temporal_truth
    from analysis.internals.saved_run import save_run
    from analysis.plotting import class_index
    from analysis.report.region_profile import score_maps
    from analysis.report.shared_maps import shared_maps_by_class

    first: dict[str, Any] = {}
    if not run.has_attention:
        first["scores"] = score_maps(run, range(len(run)), ("gradcam",), small=small)
    save_run(run, folder)
    shared = has_temporal_truth(run.data_root)
    correct = []
    for name in names:
        c = class_index(name, run.class_names)
        positions = run.positions_of_class(c)
        correct.append((name, positions[run.predictions[positions] == c] if shared else positions[:0]))
    # The calls the temporal view makes (temporal_agreement, in _measure_index): the same maps.
    for name in shared_maps_by_class(run, correct, [FRAME_ABLATION, INTEGRATED_GRADIENTS], small=small):
        save_run(run, folder)
        pool.put(name)
    return first


def _measure_beside_maps(run, timings: dict[str, float]) -> tuple[Any, Any]:
    """The index's measures that need no attribution map, made in a thread beside them on ``run``, a
    copy of the dossier's run (``Run.for_another_thread``: the order tests switch its GRU off, which
    the maps made meanwhile must not see): the order tests and, for a model with attention, the region
    scores of its cached attention (else None: Grad-CAM's are made before the pages). Its seconds go
    to ``timings``."""
    from analysis.internals.order_tests import run_order_tests
    from analysis.report.region_profile import score_maps

    with timed(timings, "index, in a thread beside the maps: order tests, region scores"):
        order = run_order_tests(run, progress=False)
        scores = score_maps(run, range(len(run))) if run.has_attention else None
    return order, scores


def _measure_index(run, small: bool, first: dict[str, Any], beside: tuple[Any, Any]) -> _IndexFigures:
    """The index's measures over every analysed clip: the region scores (each clip's attention from
    the cached pass, or Grad-CAM for a model without attention, made before the pages) and the Time
    checks (the order tests made ``beside`` the maps and, on synthetic data, the temporal agreement,
    which reuses the maps the pages share)."""
    from analysis.report.region_profile import region_profile
    from analysis.report.time_section import measure_time

    order, scores = beside
    scores = first["scores"] if "scores" in first else scores
    return _IndexFigures(scores, region_profile(scores), measure_time(run, small=small, order=order))


def _write_index(staging: Path, run, pages: dict[str, str], failed: dict[str, str], measured: _IndexFigures) -> None:
    """``index.html``, and beside it the region profile CSV and the Time section's CSVs."""
    from analysis.report.class_page import class_summary
    from analysis.report.index_page import index_html
    from analysis.report.time_section import time_section_html, write_time_csvs
    from tdrag.atomic import atomic_path

    with atomic_path(staging / REGION_CSV) as tmp:
        measured.profile.to_csv(tmp, index=False, float_format="%.6g")
    write_time_csvs(staging, measured.time_checks)
    page = index_html(run, class_summary(run), pages, failed, measured.scores, measured.profile, REGION_CSV,
                      time_html=time_section_html(measured.time_checks))
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
