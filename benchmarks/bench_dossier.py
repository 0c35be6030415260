"""How long a per-class dossier takes, whole and by stage.

    python benchmarks/bench_dossier.py runs/demo/run                       # --out /tmp/bench_dossier
    python benchmarks/bench_dossier.py runs/demo/run --small --classes Happy Sad
    python benchmarks/bench_dossier.py runs/demo/run --kernels 1          # one page kernel, pages in turn

Builds ``python -m analysis dossier RUN --out OUT`` once (OUT is replaced: it must be absent or a
previous dossier) and prints one table of seconds:

- ``build``: the stages the build times itself (``DossierResult.timings``), wall seconds of its own:
  opening the run; its one inspection pass; the index's measures that need no map, made in a thread
  beside the maps (order tests, region scores); the attributions the pages share with the index, two
  classes at a time (each class's page starts once they are saved); the temporal agreement and the
  wait for that thread; waiting for the last pages; the index page. Then, summed over the page
  kernels (they run at once, so these add up to more than the wall): kernel starts, resets between
  pages, pages executed and exported. ``wall`` is the whole call; the CPU seconds of the build's
  process and of the kernels it started are steadier than wall seconds on a shared machine.
- ``pages``: inside the executed notebooks (papermill records each cell's duration), summed over the
  pages, by what the cell does: imports, opening the run (loading its saved passes), the clip
  evidence (attributions of the shown clips, keyframe strips, animations), the ground-truth and
  region scores (attributions of the class's clips), and the rest; ``kernel overhead`` is the
  notebooks' time outside their cells.
- ``apart``: measured apart on the same run and class, to split the clip evidence: the attributions
  of the class's clips made cold, their keyframe strips rendered, their animations (frames, GIF,
  MP4), and one page exported by a new nbconvert exporter against one made before (as each page
  kernel keeps one).

Run it on an idle machine for figures to compare; on a busy one, compare only runs made in the same
conditions. ``OMP_NUM_THREADS`` and the torch threads are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch

#: A page cell's stage, by the first of these calls its source makes (else "other cells").
CELL_STAGES = (("import ", "imports"), ("open_run(", "open the run (saved passes)"),
               ("clip_evidence(", "clip evidence: attributions, strips, animations"),
               ("class_scores(", "ground-truth and region scores (class's attributions)"),
               ("frame_importance(", "keyframe importance (frame ablation)"))


def page_stages(folder: Path) -> tuple[dict[str, float], int]:
    """Seconds per page stage summed over the executed notebooks in ``folder`` (and how many there are)."""
    stages: dict[str, float] = {}
    notebooks = sorted(folder.glob("*.ipynb"))
    for path in notebooks:
        nb = json.loads(path.read_text())
        cells = 0.0
        for cell in nb["cells"]:
            seconds = (cell.get("metadata", {}).get("papermill", {}) or {}).get("duration")
            if cell["cell_type"] != "code" or seconds is None:
                continue
            source = "".join(cell["source"])
            stage = next((name for key, name in CELL_STAGES if key in source), "other cells")
            stages[stage] = stages.get(stage, 0.0) + seconds
            cells += seconds
        total = nb["metadata"].get("papermill", {}).get("duration") or cells
        stages["kernel overhead (outside cells)"] = stages.get("kernel overhead (outside cells)", 0.0) + total - cells
    return stages, len(notebooks)


def measured_apart(run_dir: str, class_name: str, method: str, small: bool, notebook: Path | None) -> dict[str, float]:
    """Attributions, strips, animations and export of one class page, each timed alone."""
    from analysis.attribution.attribute import attribute_clips
    from analysis.internals.run import open_run
    from analysis.plotting import figure_png
    from analysis.report.class_page import clip_animation_of, clip_maps, plot_clip_evidence
    try:
        from analysis.report.pages import export_html, html_exporter
    except ImportError:  # a tree from before the dossier shared its kernel and exporter: its export only
        from analysis.report.dossier import export_html
        html_exporter = None

    out: dict[str, float] = {}
    run = open_run(run_dir, device="cpu", progress=False)
    positions = run.positions_of_class(class_name)
    shown = run.most_confident(class_name, correct=True, count=3)
    start = time.perf_counter()
    attribute_clips(run, positions, method, small=small)
    out[f"attributions of the class's {len(positions)} clips, made cold"] = time.perf_counter() - start
    maps = [clip_maps(run, int(i), method, small) for i in shown]  # from run.attributions now
    start = time.perf_counter()
    for i, m in zip(shown, maps):
        figure_png(plot_clip_evidence(run, int(i), method, maps=m), 100)
    out[f"keyframe strips of {len(shown)} clips, rendered"] = time.perf_counter() - start
    start = time.perf_counter()
    for i, m in zip(shown, maps):
        animation = clip_animation_of(run, int(i), m)
        animation.gif(), animation.mp4()
    out[f"animations of {len(shown)} clips (frames, GIF, MP4)"] = time.perf_counter() - start
    if notebook is not None and notebook.is_file() and html_exporter is not None:
        target = Path(os.devnull)
        start = time.perf_counter()
        export_html(notebook, target, "bench")
        out["one page exported, new exporter"] = time.perf_counter() - start
        exporter = html_exporter()
        export_html(notebook, target, "bench", exporter)
        start = time.perf_counter()
        export_html(notebook, target, "bench", exporter)
        out["one page exported, shared exporter"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    from analysis.report.dossier import build_dossier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a trained run (e.g. runs/demo/run)")
    parser.add_argument("--out", default="/tmp/bench_dossier", help="the dossier folder (replaced)")
    parser.add_argument("--classes", nargs="+", help="class names (default: every class)")
    parser.add_argument("--small", action="store_true", help="the dossier's coarse settings")
    parser.add_argument("--method", default="integrated_gradients", help="the attribution method of the pages")
    parser.add_argument("--kernels", type=int, default=None, help="page kernels at once (default: the dossier's)")
    args = parser.parse_args(argv)

    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    start = time.perf_counter()
    extra = {"kernels": args.kernels} if args.kernels else {}  # a tree from before had no such option
    result = build_dossier(args.run_dir, args.out, classes=args.classes, small=args.small, device="cpu",
                           method=args.method, progress=False, **extra)
    wall = time.perf_counter() - start
    # CPU seconds are steadier than wall seconds on a shared machine: the build's own and its kernels'.
    cpu = [a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime
           for a, b in zip([resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)], before)]
    pages, count = page_stages(Path(args.out) / "notebooks")
    first = next(iter(result.pages), None)
    apart = measured_apart(args.run_dir, first, args.method, args.small,
                           Path(args.out) / "notebooks" / f"{Path(result.pages[first]).stem}.ipynb") if first else {}

    print(f"dossier of {args.run_dir}: {count} page(s), {len(result.failed)} failed; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    rows = [("build", name, s) for name, s in getattr(result, "timings", {}).items()]
    rows += [("build", "wall (the whole build_dossier call)", wall),
             ("build", "CPU of the build's process", cpu[0]), ("build", "CPU of its page kernels", cpu[1])]
    rows += [("pages", name, s) for name, s in sorted(pages.items(), key=lambda kv: -kv[1])]
    rows += [("apart", name, s) for name, s in apart.items()]
    width = max(len(name) for _, name, _ in rows)
    print(f"{'part':6}  {'stage':{width}}  {'seconds':>8}")
    for part, name, seconds in rows:
        print(f"{part:6}  {name:{width}}  {seconds:8.2f}")
    sizes = [p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file()]
    print(f"dossier size: {sum(sizes) / 1e6:.1f} MB in {len(sizes)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
