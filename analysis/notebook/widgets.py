"""The class explorer: one interactive view of a trained model, class by class.

Four dropdowns (emotion class, clip of that class, analysis method, stage) drive four images:

- the clip's keyframes with the chosen map overlaid (TDRAG's attention at a stage, or a Captum
  attribution: Grad-CAM at a stage, Integrated Gradients, saliency, ... on the input);
- the same as motion: an animated GIF of the keyframes, the attention (of the chosen stage, or the
  deepest when an attribution is chosen) and the attribution side by side, with its MP4 to
  download (``analysis.attribution.animation``; ``explorer.save_animation("clip.mp4")`` from code);
- the clip's GRU hidden-state trajectory (PCA plane) against the mean trajectory of its class;
- its class probabilities after each GRU step.

Everything comes from the opened run (:class:`analysis.internals.run.Run`: its one cached
inspection pass, its attention upsampled by ``tdrag.models.inspection.upsample_attention``, its uint8 display
frames), :mod:`analysis.internals.trajectories` and :mod:`analysis.attribution`; this module only
wires widgets to them and turns figures into PNG bytes. Attribution maps are computed when first
asked for and kept (per clip, method and stage). The header says which checkpoint is shown and
why, and what the GRU step readouts mean for this model.

Example (in a notebook)::

    explorer = ClassExplorer(open_run("../runs/demo/run"))
    explorer.widget            # display it
    explorer.class_select.value = 1   # what the dropdown does, from code (or tests)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

import ipywidgets as widgets

from analysis.attribution.animation import Animation, animate
from analysis.attribution.attribute import METHOD_NAMES, attribute
from analysis.attribution.defaults import run_method_options
from analysis.attribution.methods import FRAME_METHODS, LAYER_METHODS, TITLES
from analysis.attribution.views import overlay_scale, plot_attribution_strip
from analysis.internals.attention import plot_keyframe_strip, select_keyframes_to_show
from analysis.internals.clip_views import plot_clip_trajectory, plot_step_probabilities
from analysis.internals.trajectories import class_mean_trajectories, fit_pca
from analysis.plotting import figure_png, message_figure

log = logging.getLogger(__name__)

# Methods offered by default, besides "attention" when the model has attention stages. Cheap ones
# first; frame_ablation gives one number per frame, not a map, so it is not an overlay.
DEFAULT_METHODS = ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "integrated_gradients", "saliency",
                   "guided_gradcam", "occlusion", "smoothgrad")
# Methods whose "stage" is a network stage (layer) rather than the input.
STAGE_METHODS = {"attention", *LAYER_METHODS}
INPUT_STAGE = "input"


class ClassExplorer:
    """Interactive per-class view of an opened run (see the module docstring).

    Args:
        run: an ``analysis.internals.run.Run`` (``open_run``); its analysed clips are explored.
        methods: analysis methods offered ("attention" plus Captum method names); default:
            "attention" (when the model has it) and :data:`DEFAULT_METHODS`.
        attribution_options: per-method options overriding the library defaults
            (``analysis.attribution.defaults.method_options``).
        small: the coarse attribution defaults (CI, first try).
        frames_shown: keyframes drawn in the strip.
        dpi: resolution of the PNGs.
    """

    def __init__(
        self,
        run,
        *,
        methods: Sequence[str] | None = None,
        attribution_options: Mapping[str, Mapping[str, Any]] | None = None,
        small: bool = False,
        frames_shown: int = 8,
        dpi: int = 80,
    ) -> None:
        if len(run) == 0:
            raise ValueError("ClassExplorer: the run has no clips to explore")
        self.run = run
        self.model = run.model
        self.class_names = tuple(run.class_names)
        self.small = bool(small)
        self.frames_shown = int(frames_shown)
        self.dpi = int(dpi)
        self.attribution_options = {k: dict(v) for k, v in (attribution_options or {}).items()}
        self.result = run.inspection
        self.rows = np.asarray(run.rows, dtype=np.int64)
        self.labels = np.asarray(run.labels, dtype=np.int64)
        self.probabilities = run.probabilities  # (N, C)
        # Probabilities after each GRU step (N, T_gru, C); a single "step" without a GRU.
        steps = self.result.step_logits if self.result.step_logits is not None else self.result.logits[:, None]
        self.step_probabilities = steps.softmax(dim=-1)
        self.pca = self.trajectories = self.class_means = None
        if self.result.hidden_states is not None and len(self.rows) * self.result.hidden_states.shape[1] >= 2:
            self.pca = fit_pca(self.result.hidden_states, k=2)
            self.trajectories = self.pca.transform(self.result.hidden_states)  # (N, T_gru, 2)
            self.class_means = class_mean_trajectories(self.trajectories, self.labels, len(self.class_names))
        self.methods = self._check_methods(methods)
        self._maps: dict[tuple[int, str, str], torch.Tensor] = {}
        self._holding = False
        self._build_widgets()
        self.refresh()

    # ---- options -----------------------------------------------------------------------------

    def _check_methods(self, methods: Sequence[str] | None) -> list[str]:
        if methods is None:
            methods = (["attention"] if self.result.attention else []) + list(DEFAULT_METHODS)
        methods = list(methods)
        for m in methods:
            if m == "attention":
                if not self.result.attention:
                    raise ValueError("method 'attention': this model has no attention stages")
            elif m in FRAME_METHODS:
                raise ValueError(f"method {m!r} gives one value per frame, not a map to overlay")
            elif m not in METHOD_NAMES:
                raise ValueError(f"unknown method {m!r}; choose from attention, {', '.join(METHOD_NAMES)}")
        if not methods:
            raise ValueError("ClassExplorer: no analysis methods")
        return methods

    def stages_for(self, method: str) -> list[str]:
        """Stages a method can show: attention stages, network stages (Grad-CAM) or the input."""
        if method == "attention":
            return list(self.result.attention)
        if method in STAGE_METHODS:
            return [n for n in ("layer1", "layer2", "layer3", "layer4") if isinstance(getattr(self.model, n, None), nn.Module)]
        return [INPUT_STAGE]

    def class_options(self) -> list[tuple[str, int]]:
        """(label, class index) for each class with clips."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return [(f"{name} ({counts[c]} clip{'s' if counts[c] != 1 else ''})", c)
                for c, name in enumerate(self.class_names) if counts[c]]

    def clip_options(self, label: int) -> list[tuple[str, int]]:
        """(label, position in ``self.rows``) for the clips of class ``label``."""
        options = []
        for i in np.flatnonzero(self.labels == int(label)):
            pred = int(self.probabilities[i].argmax())
            mark = "ok" if pred == label else f"-> {self.class_names[pred]}"
            options.append((f"{self.result.video_ids[i]} ({mark})", int(i)))
        return options

    # ---- widgets -----------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        style = {"description_width": "60px"}
        classes = self.class_options()
        self.class_select = widgets.Dropdown(options=classes, value=classes[0][1], description="Class", style=style)
        self.clip_select = widgets.Dropdown(options=self.clip_options(classes[0][1]), description="Clip", style=style)
        self.method_select = widgets.Dropdown(options=self.methods, value=self.methods[0], description="Method", style=style)
        stages = self.stages_for(self.methods[0])
        self.stage_select = widgets.Dropdown(options=stages, value=stages[-1], description="Stage", style=style,
                                             disabled=len(stages) == 1 and stages[0] == INPUT_STAGE)
        for w, name in ((self.class_select, "class"), (self.clip_select, "clip"),
                        (self.method_select, "method"), (self.stage_select, "stage")):
            w.add_class(f"tdrag-explorer-{name}")  # stable selectors for the browser test
        self.header = widgets.HTML(self.header_html()).add_class("tdrag-explorer-header")
        self.title = widgets.HTML().add_class("tdrag-explorer-title")
        self.status = widgets.HTML().add_class("tdrag-explorer-status")
        self.strip_image = widgets.Image(format="png").add_class("tdrag-explorer-strip")
        self.animation_image = widgets.Image(format="gif").add_class("tdrag-explorer-animation")
        self.animation_link = widgets.HTML().add_class("tdrag-explorer-mp4")
        self.trajectory_image = widgets.Image(format="png", layout={"width": "48%"}).add_class("tdrag-explorer-trajectory")
        self.probability_image = widgets.Image(format="png", layout={"width": "48%"}).add_class("tdrag-explorer-probabilities")
        self.class_select.observe(self._on_class, names="value")
        self.clip_select.observe(self._on_clip, names="value")
        self.method_select.observe(self._on_method, names="value")
        self.stage_select.observe(self._on_stage, names="value")
        self.widget = widgets.VBox([
            self.header,
            widgets.HBox([self.class_select, self.clip_select]),
            widgets.HBox([self.method_select, self.stage_select]),
            self.title,
            self.strip_image,
            widgets.HBox([self.animation_image, self.animation_link]),
            widgets.HBox([self.trajectory_image, self.probability_image]),
            self.status,
        ]).add_class("tdrag-explorer")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _on_class(self, change) -> None:
        self._holding = True
        try:
            options = self.clip_options(change["new"])
            self.clip_select.options = options
            self.clip_select.value = options[0][1]
        finally:
            self._holding = False
        self.refresh()

    def _on_clip(self, change) -> None:
        if not self._holding:
            self.refresh()

    def _on_method(self, change) -> None:
        stages = self.stages_for(change["new"])
        self._holding = True
        try:
            keep = self.stage_select.value if self.stage_select.value in stages else stages[-1]
            self.stage_select.options = stages
            self.stage_select.value = keep
            self.stage_select.disabled = stages == [INPUT_STAGE]
        finally:
            self._holding = False
        self.refresh_strip()

    def _on_stage(self, change) -> None:
        if not self._holding:
            self.refresh_strip()

    # ---- what is shown -----------------------------------------------------------------------

    @property
    def index(self) -> int:
        """Position of the selected clip in ``self.rows``."""
        return int(self.clip_select.value)

    def clip_input(self, i: int) -> torch.Tensor:
        """(1, 3, T, crop, crop) model input of the i-th explored clip (``run.inputs``)."""
        return self.run.inputs([int(i)])

    def options_for(self, method: str, stage: str) -> dict[str, Any]:
        """The attribution options used: the library defaults, the explorer's overrides, the stage."""
        options = run_method_options(self.run, method, small=self.small)
        options.update(self.attribution_options.get(method, {}))
        if stage != INPUT_STAGE:
            options["layer"] = stage
        return options

    def overlay(self, i: int, method: str, stage: str) -> torch.Tensor:
        """Clip i's map for (method, stage), computed once and then kept.

        Returns:
            (T, crop, crop): attention in [0, 1] from the run's cached pass, upsampled by
            ``tdrag.models.inspection.upsample_attention`` (``run.attention_maps``), or the raw attribution of
            the predicted class (shown by magnitude, scaled per clip).
        """
        key = (int(i), method, stage)
        if key not in self._maps:
            if method == "attention":
                maps = self.run.attention_maps([int(i)], [stage])[stage][0]
            else:
                target = int(self.probabilities[i].argmax())
                maps = attribute(self.model, self.clip_input(i), target, method, **self.options_for(method, stage))[0]
            self._maps[key] = maps.detach().float().cpu()
        return self._maps[key]

    def strip_figure(self) -> Figure:
        i, method, stage = self.index, self.method_select.value, self.stage_select.value
        x = self.run.frames([i])[0]  # (T, crop, crop, 3) uint8, as cached
        frames = select_keyframes_to_show(x.shape[0], self.frames_shown)
        vid = self.result.video_ids[i]
        if method == "attention":
            return plot_keyframe_strip(x, {f"attention\n{stage}": self.overlay(i, method, stage)},
                                       title=f"{vid}: {stage} attention", frames=frames)
        name = method.replace("_", " ")
        pred = self.class_names[int(self.probabilities[i].argmax())]
        row = f"{name}\n{stage}" if stage != INPUT_STAGE else name
        return plot_attribution_strip(x, {row: self.overlay(i, method, stage)}, frames=frames,
                                      title=f"{vid}: {name} of '{pred}'" + (f" at {stage}" if stage != INPUT_STAGE else ""))

    def animation(self) -> Animation:
        """The selected clip as motion: keyframes, attention (the chosen stage, or the deepest when an
        attribution is chosen) and the chosen attribution (by magnitude, per clip), side by side."""
        i, method, stage = self.index, self.method_select.value, self.stage_select.value
        maps: dict[str, torch.Tensor] = {}
        if self.result.attention:
            shown = stage if method == "attention" else list(self.result.attention)[-1]
            maps[f"attention {shown}"] = self.overlay(i, "attention", shown)
        if method != "attention":
            name = TITLES.get(method, method) + (f" {stage}" if stage != INPUT_STAGE else "")
            maps[name] = overlay_scale(self.overlay(i, method, stage))
        return animate(self.run, i, maps)

    def save_animation(self, path: str | os.PathLike) -> Path:
        """Write the selected clip's animation as ``.gif`` or ``.mp4`` (by suffix); returns the path."""
        return self.animation().save(path)

    def trajectory_figure(self) -> Figure:
        i = self.index
        if self.trajectories is None:
            return message_figure("this model has no GRU:\nno hidden-state trajectory")
        return plot_clip_trajectory(self.trajectories[i], self.class_means, int(self.labels[i]),
                                    self.class_names, pca=self.pca,
                                    title=f"{self.result.video_ids[i]} against its class mean")

    def probability_figure(self) -> Figure:
        i = self.index
        return plot_step_probabilities(self.step_probabilities[i], int(self.labels[i]), class_names=self.class_names,
                                       title=f"{self.result.video_ids[i]}: class probabilities per GRU step")

    def header_html(self) -> str:
        """Which checkpoint is shown and why, and what the step readouts mean for this model."""
        import html

        return (f"<div><b>Checkpoint:</b> {html.escape(self.run.checkpoint.reason)}<br>"
                f"<b>Step readouts:</b> {html.escape(self.run.step_readout_meaning())}</div>")

    def title_html(self) -> str:
        i = self.index
        label, pred = int(self.labels[i]), int(self.probabilities[i].argmax())
        verdict = "correct" if label == pred else "wrong"
        return (f"<b>clip {self.result.video_ids[i]}</b> (cache row {int(self.rows[i])}): true "
                f"<b>{self.class_names[label]}</b>, predicted <b>{self.class_names[pred]}</b> "
                f"(p = {float(self.probabilities[i, pred]):.2f}, {verdict})")

    def refresh_strip(self) -> None:
        """Redraw the keyframe strip and the animation (method or stage changed)."""
        self.status.value = ""
        try:
            self.strip_image.value = figure_png(self.strip_figure(), self.dpi)
            animation = self.animation()
            self.animation_image.value = animation.gif()
            self.animation_link.value = animation.mp4_link(
                f"{self.result.video_ids[self.index]}_{self.method_select.value}", "MP4 of this animation")
        except (RuntimeError, ValueError) as err:
            # A method can fail on a model (e.g. a stage it lacks); say so instead of a traceback.
            log.warning("explorer: %s", err)
            self.status.value = f"<span style='color:#b00'>{self.method_select.value}: {err}</span>"
            self.strip_image.value = figure_png(message_figure(f"{self.method_select.value} failed:\n{err}", 8, 2), self.dpi)
            self.animation_link.value = ""

    def refresh(self) -> None:
        """Redraw everything for the selected clip."""
        self.title.value = self.title_html()
        self.refresh_strip()
        self.trajectory_image.value = figure_png(self.trajectory_figure(), self.dpi)
        self.probability_image.value = figure_png(self.probability_figure(), self.dpi)

