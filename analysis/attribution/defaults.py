"""Per-method attribution settings for a clip geometry: what the notebooks, the explorer and the
dossier pass to :func:`analysis.attribution.attribute.attribute` by default.

    options = method_options("occlusion", frames=16, crop=112)        # {"window": (4, 28, 28), ...}
    options = method_options("integrated_gradients", small=True)      # {"n_steps": 8}
    options = run_method_options(run, "gradcam", layer="layer3")      # from an opened Run

``small=True`` gives the coarse, seconds-long settings of the CI / first-try size.
"""

from __future__ import annotations

from typing import Any

from analysis.attribution.methods import LAYER_METHODS, METHODS

__all__ = ["method_options", "run_method_options"]


def method_options(method: str, frames: int = 16, crop: int = 112, small: bool = False,
                   layer: str = "layer4", **overrides: Any) -> dict[str, Any]:
    """The options used for ``method`` on clips of ``frames`` keyframes of ``crop`` pixels.

    - The methods that read a stage (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, guided Grad-CAM:
      ``LAYER_METHODS``): the stage ``layer`` (default the deepest, ``layer4``).
    - Occlusion: a window of a quarter of the clip in time and space, stride half the window
      (about 350 forward passes per clip at 16x112x112); at ``small`` size half the clip, no
      overlap.
    - Integrated Gradients: 32 path points (8 at ``small``); SmoothGrad: 16 noisy copies (4).
    - Saliency, frame ablation: no options.

    ``overrides`` replace any of these.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    options: dict[str, Any] = {}
    if method in LAYER_METHODS:
        options["layer"] = layer
    elif method == "occlusion":
        t, side = int(frames), int(crop)
        if small:
            window = (max(1, t // 2), max(1, side // 2), max(1, side // 2))
            options = {"window": window, "strides": window}
        else:
            window = (max(1, t // 4), max(1, side // 4), max(1, side // 4))
            options = {"window": window, "strides": tuple(max(1, w // 2) for w in window)}
    elif method == "integrated_gradients":
        options["n_steps"] = 8 if small else 32
    elif method == "smoothgrad":
        options["nt_samples"] = 4 if small else 16
    options.update(overrides)
    return options


def run_method_options(run, method: str, small: bool = False, **overrides: Any) -> dict[str, Any]:
    """:func:`method_options` for an opened run's clip geometry (keyframes, ``data.crop``)."""
    return method_options(method, frames=run.cache.num_frames, crop=run.crop, small=small, **overrides)
