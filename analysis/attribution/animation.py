"""A clip's keyframes with its attention and an attribution side by side, as motion: GIF and MP4.

Each keyframe becomes one picture of panels -- the input, then one overlay per map (the same jet
colouring and 0.5 blend as the keyframe strips) -- labelled above; the pictures play at ``fps``::

    anim = clip_animation(run, i, stage="layer2", method="gradcam")   # input | attention | Grad-CAM
    anim                     # in a notebook or a dossier page: the GIF, with an MP4 download link
    anim.save("clip.gif")    # or "clip.mp4" (OpenCV's writer, MPEG-4 part 2 "mp4v")
    anim.frames.shape        # (T, H, W, 3) uint8 RGB

GIFs stay small enough to embed (about 70 kB for 8 keyframes of three 112 px panels: one shared
palette of :data:`GIF_COLOURS` colours); panels are shown at their size, enlarged by a whole factor
(nearest neighbour) only up to about :data:`PANEL_SIDE` pixels.
The MP4's codec plays in VLC and most desktop players; browsers want H.264, so pages link the MP4
for download and show the GIF.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from analysis.attribution.views import overlay_scale

#: Panels smaller than this (pixels) are enlarged by a whole factor towards it.
PANEL_SIDE = 112
LABEL_BAND = 16  # pixels above each panel for its name
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _jet_lut() -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps["jet"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def overlay_rgb(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frame (H, W, 3)`` uint8 RGB blended with ``heat (H, W)`` in [0, 1] coloured by jet: uint8 RGB."""
    index = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float64)), 0.0, 1.0) * 255
    colour = _jet_lut()[index.round().astype(np.int64)]
    out = (1.0 - alpha) * frame.astype(np.float64) + alpha * colour
    return out.round().clip(0, 255).astype(np.uint8)


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    """A dark band with ``text`` above ``panel (h, w, 3)``: ``(LABEL_BAND + h, w, 3)``."""
    band = np.full((LABEL_BAND, panel.shape[1], 3), 40, dtype=np.uint8)
    room = panel.shape[1] - 4
    scale = next((s for s in (0.36, 0.32, 0.28) if cv2.getTextSize(text, _FONT, s, 1)[0][0] <= room), 0.28)
    while cv2.getTextSize(text, _FONT, scale, 1)[0][0] > room and len(text) > 4:  # shorten what still does not fit
        text = text[:-2] + "."
    cv2.putText(band, text, (2, LABEL_BAND - 5), _FONT, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return np.concatenate([band, panel], axis=0)


def compose_frames(frames: np.ndarray, maps: Mapping[str, np.ndarray | torch.Tensor], alpha: float = 0.5,
                   scale: int | None = None) -> np.ndarray:
    """The pictures of an animation: per keyframe, the input and one overlay per map, side by side.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB display frames (``run.frames([i])[0]``).
        maps: panel name -> ``(T, H, W)`` values in [0, 1] (attention as it is; attributions
            through :func:`analysis.attribution.views.overlay_scale`).
        scale: whole enlargement factor (default: up to :data:`PANEL_SIDE` pixels).

    Returns:
        ``(T, LABEL_BAND + s H, (1 + len(maps)) s W, 3)`` uint8 RGB, with ``s`` the scale.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w = frames.shape[:3]
    arrays = {}
    for name, m in maps.items():
        a = m.detach().cpu().float().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float32)
        if a.shape != (t, h, w):
            raise ValueError(f"map {name!r} has shape {a.shape}; the frames need ({t}, {h}, {w})")
        arrays[name] = a
    s = int(scale) if scale else max(1, math.ceil(PANEL_SIDE / max(h, w)))

    def big(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (w * s, h * s), interpolation=cv2.INTER_NEAREST) if s > 1 else img

    out = []
    for k in range(t):
        panels = [_label(big(frames[k]), f"keyframe {k + 1}/{t}")]
        panels += [_label(big(overlay_rgb(frames[k], a[k], alpha)), name) for name, a in arrays.items()]
        out.append(np.concatenate(panels, axis=1))
    return np.stack(out)


#: Colours of a GIF's palette: video frames carry pixel noise, so a GIF's size grows with its
#: colours (and dithering); 64 shared colours keep 8 keyframes of 3 panels near 70 kB.
GIF_COLOURS = 64


def gif_bytes(frames: np.ndarray, fps: float = 4.0, colours: int = GIF_COLOURS) -> bytes:
    """An endlessly looping GIF of ``frames (T, H, W, 3)`` uint8 RGB: one palette of ``colours`` shared
    by every frame (median cut over all of them), no dithering (Pillow)."""
    from PIL import Image

    palette = Image.fromarray(np.concatenate(list(frames), axis=0)).quantize(
        colors=int(colours), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=True)
    return buf.getvalue()


def mp4_bytes(frames: np.ndarray, fps: float = 4.0) -> bytes:
    """An MP4 (MPEG-4 part 2, OpenCV's "mp4v" writer) of ``frames (T, H, W, 3)`` uint8 RGB; odd sides
    are padded by one black pixel (the codec wants even sizes)."""
    t, h, w = frames.shape[:3]
    padded = np.zeros((t, h + h % 2, w + w % 2, 3), dtype=np.uint8)
    padded[:, :h, :w] = frames
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "clip.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (padded.shape[2], padded.shape[1]))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MP4 (mp4v) here: is opencv-python-headless built with FFmpeg?")
        try:
            for f in padded:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        return Path(path).read_bytes()


@dataclass
class Animation:
    """An animation's pictures ``frames (T, H, W, 3)`` uint8 RGB at ``fps``, with a ``title``.

    Shown in a notebook (and so on a dossier page) as the GIF with an MP4 download link, both
    embedded in the page (data URIs): the page stays one self-contained file.
    """

    frames: np.ndarray
    fps: float = 4.0
    title: str = ""
    _gif: bytes | None = field(default=None, repr=False)

    def gif(self) -> bytes:
        """The GIF's bytes (made once)."""
        if self._gif is None:
            self._gif = gif_bytes(self.frames, self.fps)
        return self._gif

    def mp4(self) -> bytes:
        """The MP4's bytes."""
        return mp4_bytes(self.frames, self.fps)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the GIF or the MP4, by ``path``'s suffix (atomically); returns the path."""
        from tdrag.atomic import atomic_path

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".gif", ".mp4"):
            raise ValueError(f"{path}: an animation is saved as .gif or .mp4")
        data = self.gif() if suffix == ".gif" else self.mp4()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
        return path

    def mp4_link(self, name: str = "clip", text: str = "MP4") -> str:
        """An ``<a>`` that downloads the MP4 as ``<name>.mp4``, the video inline (a data URI)."""
        video = base64.b64encode(self.mp4()).decode("ascii")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "clip"
        return f'<a download="{safe}.mp4" href="data:video/mp4;base64,{video}">{html.escape(text)}</a>'

    def html(self, mp4: bool = True, name: str = "clip", zoom: float = 1.5) -> str:
        """The GIF as an ``<img>`` shown ``zoom`` times its size (pixels kept sharp), the title under it
        and (``mp4``) an MP4 download link, all inline."""
        gif = base64.b64encode(self.gif()).decode("ascii")
        title = html.escape(self.title)
        caption = title + (" " + self.mp4_link(name) if mp4 else "")
        width, height = round(zoom * self.frames.shape[2]), round(zoom * self.frames.shape[1])
        return (f'<figure class="tdrag-animation" style="margin:0.5em 0">'
                f'<img src="data:image/gif;base64,{gif}" alt="{title or "animation"}" width="{width}" height="{height}" '
                f'style="image-rendering:pixelated">'
                f"<figcaption>{caption}</figcaption></figure>")

    def _repr_html_(self) -> str:
        return self.html()


def clip_animation(run, position: int, stage: str | None = None, method: str | None = "gradcam",
                   small: bool = False, fps: float = 4.0) -> Animation:
    """The animation of one clip of an opened run: its keyframes, the attention of ``stage``
    (default the deepest; none for a model without attention) and ``method``'s attribution of the
    predicted class (scaled by ``|map| / clip max``; ``None`` for none)."""
    from analysis.attribution.attribute import attribute_clips
    from analysis.attribution.methods import FRAME_METHODS, TITLES

    i = int(position)
    maps: dict[str, torch.Tensor] = {}
    if run.has_attention:
        stage = stage or list(run.attention)[-1]
        maps[f"attention {stage}"] = run.attention_maps([i], [stage])[stage][0]
    if method and method not in FRAME_METHODS:
        maps[TITLES.get(method, method)] = overlay_scale(attribute_clips(run, [i], method, small=small)[0])
    return animate(run, i, maps, fps)


def animate(run, position: int, maps: Mapping[str, torch.Tensor], fps: float = 4.0) -> Animation:
    """:class:`Animation` of clip ``position`` of ``run`` with ``maps`` (name -> ``(T, crop, crop)`` in
    [0, 1]) already computed; titled with the clip, its class and the prediction."""
    i = int(position)
    label, pred = int(run.labels[i]), int(run.predictions[i])
    title = (f"{run.video_ids[i]}: true {run.class_names[label]}, predicted {run.class_names[pred]} "
             f"(p={float(run.probabilities[i, pred]):.2f})")
    return Animation(compose_frames(run.frames([i])[0], maps), fps=fps, title=title)
