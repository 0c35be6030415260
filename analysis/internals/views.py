"""Run-level views for the attention and trajectory notebooks: each call takes an opened
:class:`~analysis.internals.run.Run` (its one cached inspection pass) and returns a list of figures
and tables, or a :class:`~analysis.plotting.Note` saying why there is nothing to show, so that a
notebook cell is a single ``display(*view(run, ...))``.

    display(*attention_strips(run, "Happy", count=3))
    display(*trajectory_overview(run))
"""

from __future__ import annotations

from matplotlib.figure import Figure

from analysis.internals.attention import (attention_in_ground_truth, mean_attention_per_class,
                                          plot_class_mean_attention, plot_keyframe_strip)
from analysis.internals.clip_views import plot_clip_trajectory, plot_step_probabilities
from analysis.internals.trajectories import (accuracy_per_step, class_mean_trajectories, decision_step_table,
                                             fit_pca, plot_accuracy_per_step, plot_decision_steps, plot_trajectories)
from analysis.plotting import Note, class_index


def _no_attention(run) -> list[Note]:
    return [Note(f"**`{run.config.model.name}` has no attention stages**: there are no attention maps to show.")]


def _no_gru(run) -> list[Note]:
    return [Note(f"**`{run.config.model.name}` has no GRU**: there are no hidden-state trajectories or step readouts.")]


def attention_strips(run, label: int | str, count: int = 3) -> list:
    """Keyframe strips of the first ``count`` clips of class ``label``: the uint8 frames, then each
    stage's attention over them (``run.attention_maps``), titled with the prediction."""
    if not run.has_attention:
        return _no_attention(run)
    c = class_index(label, run.class_names)
    positions = run.positions_of_class(c)[: int(count)]
    if len(positions) == 0:
        return [Note(f"No {run.class_names[c]} clips in this split.")]
    maps = run.attention_maps(positions)
    frames = run.frames(positions)
    figures: list[Figure] = []
    for j, i in enumerate(positions):
        pred = int(run.predictions[i])
        entry = run.cache.index[int(run.rows[i])]
        title = (f"{run.video_ids[i]}: true {run.class_names[c]}, predicted {run.class_names[pred]} "
                 f"(p={float(run.probabilities[i, pred]):.2f}); source frames {entry['source_frames']}")
        figures.append(plot_keyframe_strip(frames[j], {name: m[j] for name, m in maps.items()}, title=title))
    return figures


def class_mean_attention(run) -> list:
    """One figure per attention stage: each class's mean map (over its clips and time)."""
    if not run.has_attention:
        return _no_attention(run)
    figures = []
    for name, stage_maps in run.attention.items():
        means, counts = mean_attention_per_class(stage_maps, run.labels, run.num_classes)
        figures.append(plot_class_mean_attention(means, counts, class_names=run.class_names,
                                                 title=f"Mean attention per class, {name}"))
    return figures


def attention_ground_truth(run) -> list:
    """Agreement of attention with the synthetic ground-truth masks, per stage and class, with the
    centre prior's as the reference (``attention_in_ground_truth``)."""
    if not run.has_attention:
        return _no_attention(run)
    if not run.synthetic:
        return [Note("No ground-truth masks for this dataset (only the synthetic data has them): skipped.")]
    return [attention_in_ground_truth(run.inspection, run.cache, run.data_root, run.crop).round(3)]


def trajectory_overview(run) -> list:
    """The GRU trajectories of every clip in a PCA plane, coloured by class, with class means."""
    if not run.has_gru:
        return _no_gru(run)
    pca = fit_pca(run.hidden_states, k=2)
    return [plot_trajectories(pca.transform(run.hidden_states), run.labels, run.class_names, pca=pca)]


def clip_trajectories(run, label: int | str, count: int = 2) -> list:
    """For the first ``count`` clips of class ``label``: class probabilities after each GRU step,
    and the clip's trajectory against the class means."""
    if not run.has_gru:
        return _no_gru(run)
    c = class_index(label, run.class_names)
    pca = fit_pca(run.hidden_states, k=2)
    traj = pca.transform(run.hidden_states)
    means = class_mean_trajectories(traj, run.labels, run.num_classes)
    step_probs = run.step_logits.softmax(-1)
    figures: list = []
    for i in run.positions_of_class(c)[: int(count)]:
        vid = run.video_ids[i]
        figures.append(plot_step_probabilities(step_probs[i], c, class_names=run.class_names,
                                               title=f"{vid}: probabilities per step"))
        figures.append(plot_clip_trajectory(traj[i], means, c, run.class_names, pca=pca,
                                            title=f"{vid} against the {run.class_names[c]} mean"))
    return figures or [Note(f"No {run.class_names[c]} clips in this split.")]


def step_accuracy(run) -> list:
    """Accuracy of the readout after each GRU step, the decision-step table and its figure."""
    if not run.has_gru:
        return _no_gru(run)
    return [plot_accuracy_per_step(accuracy_per_step(run.step_logits, run.labels, run.num_classes)),
            decision_step_table(run.step_logits, run.labels, run.class_names).round(2),
            plot_decision_steps(run.step_logits, run.labels, run.class_names)]
