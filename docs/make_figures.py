"""Render the README's notebook figures (docs/figures/*.png) from a trained run.

    make demo                                         # writes runs/demo/run
    python docs/make_figures.py runs/demo/run         # writes docs/figures/notebook_0*.png

Each figure is made by the same ``analysis`` call the corresponding notebook makes, on the run's
test clips, so the README shows what the notebooks show on the demo.
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

import torch
from matplotlib.image import imread

from analysis.attribution.attribute import attribute_clips
from analysis.attribution.views import plot_attribution_strip
from analysis.internals.attention import plot_keyframe_strip
from analysis.internals.run import open_run
from analysis.internals.trajectories import fit_pca, plot_trajectories
from analysis.notebook.widgets import ClassExplorer
from analysis.plotting import class_index, new_figure, save_figure
from analysis.report import figures, results, run_files

log = logging.getLogger("make_figures")


def explorer_snapshot(explorer: ClassExplorer):
    """The explorer's three images in one figure (what the notebook shows under its dropdowns)."""
    images = [imread(io.BytesIO(bytes(w.value)), format="png")
              for w in (explorer.strip_image, explorer.trajectory_image, explorer.probability_image)]
    fig = new_figure(11, 7.2, layout=None)
    grid = fig.add_gridspec(2, 2, height_ratios=[images[0].shape[0] / images[0].shape[1] * 2, 1], hspace=0.02, wspace=0.02)
    for ax, img in zip((fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])), images):
        ax.imshow(img)
        ax.set_axis_off()
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", default="runs/demo/run", help="trained run (default: runs/demo/run)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "figures"), help="output folder")
    parser.add_argument("--class-name", default="",
                        help="class shown in the single-clip figures (default: the run's first)")
    parser.add_argument("--dpi", type=int, default=90)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    run = open_run(args.run_dir, device="cpu", progress=False)
    log.info("%s", run.checkpoint.reason)
    label = class_index(args.class_name or 0, run.class_names)
    confident = run.most_confident(label, correct=True, count=1)
    i = int(confident[0]) if len(confident) else int(run.positions_of_class(label)[0])
    vid, pred = run.video_ids[i], int(run.predictions[i])
    frames = run.frames([i])[0]
    written = []

    def save(fig, name):
        written.append(save_figure(fig, out / name, dpi=args.dpi))

    save(figures.plot_training_curves(run_files.load_log(run.run_dir), title=f"{run.config.model.name} on the synthetic demo"),
         "notebook_01_training_curves.png")
    maps = run.attention_maps([i])
    save(plot_keyframe_strip(frames, {k: v[0] for k, v in maps.items()},
                             title=f"clip {vid}: true {run.class_names[label]}, predicted {run.class_names[pred]}"),
         "notebook_02_attention.png")
    pca = fit_pca(run.hidden_states, k=2)
    save(plot_trajectories(pca.transform(run.hidden_states), run.labels, run.class_names, pca=pca),
         "notebook_03_trajectories.png")
    side = {m: attribute_clips(run, [i], m)[0] for m in ("gradcam", "integrated_gradients", "saliency")}
    save(plot_attribution_strip(frames, side, title=f"clip {vid}: attributions of '{run.class_names[pred]}'"),
         "notebook_04_attributions.png")
    preds = run_files.load_predictions(run.run_dir)
    names = run_files.class_names_from_predictions(preds)
    save(figures.plot_confusion_matrix(results.confusion_from_predictions(preds, names), names, normalize=True),
         "notebook_05_confusion_matrix.png")
    explorer = ClassExplorer(run, methods=["attention", "gradcam"], dpi=args.dpi)
    explorer.class_select.value = label
    explorer.clip_select.value = i
    save(explorer_snapshot(explorer), "notebook_06_explorer.png")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    sys.exit(main())
