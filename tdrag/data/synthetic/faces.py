"""Drawing one synthetic face with OpenCV: identity, expression parameters, signal-region masks.

A face is drawn in a canonical frontal pose on a square canvas (coordinates below are fractions
of the canvas side); pose, lighting, noise and blur are applied afterwards by
``tdrag.data.synthetic.clips``. Images are BGR (OpenCV's order) while drawing.

The expression is a vector over ``EXPRESSION_PARAMS`` (0 = neutral), loosely modelled on facial
action units: brow raise (AU1+2), inner brow raise (AU1), brow lowering (AU4), eye opening
(AU5 when > 0; lid tightening AU7 when < 0), cheek raise (AU6), nose wrinkle (AU9), upper lip
raise (AU10), jaw drop (AU26), lip stretch (AU20), lip corner pull/depress (AU12/AU15) and lip
press (AU24). Each parameter belongs to one face part (``PARAM_GROUP``); the masks of the parts
that move carry the class signal.

``Look`` sets how boldly a face is drawn and how much its appearance varies: the ``easy`` preset
draws thick, high-contrast features that move far on plain backgrounds and a narrow range of skin
tones, so that its class signal survives at 48-64 pixels; the defaults are ``hard``'s fine look.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EXPRESSION_PARAMS: tuple[str, ...] = (
    "brow_raise",
    "brow_inner_up",
    "brow_lower",
    "eye_open",
    "cheek",
    "nose_wrinkle",
    "upper_lip",
    "mouth_open",
    "mouth_width",
    "mouth_curve",
    "lip_press",
)
P = {name: i for i, name in enumerate(EXPRESSION_PARAMS)}

#: Face parts, in the order used for per-group timing and masks.
GROUPS: tuple[str, ...] = ("brows", "eyes", "cheeks", "nose", "mouth")
PARAM_GROUP: dict[str, str] = {
    "brow_raise": "brows",
    "brow_inner_up": "brows",
    "brow_lower": "brows",
    "eye_open": "eyes",
    "cheek": "cheeks",
    "nose_wrinkle": "nose",
    "upper_lip": "mouth",
    "mouth_open": "mouth",
    "mouth_width": "mouth",
    "mouth_curve": "mouth",
    "lip_press": "mouth",
}
#: ``(len(EXPRESSION_PARAMS),)`` index of each parameter's group in ``GROUPS``.
PARAM_GROUP_INDEX = np.array([GROUPS.index(PARAM_GROUP[p]) for p in EXPRESSION_PARAMS])

_SHIFT = 4  # OpenCV sub-pixel bits: coordinates are drawn at 1/16 pixel precision
_ONE = 1 << _SHIFT

#: Centre of the face ellipse on the canonical canvas (fractions of the side).
FACE_CENTRE = (0.5, 0.53)


@dataclass(frozen=True)
class Look:
    """How a face is drawn: signal strength (movement, strokes, contrast) and appearance variety.

    The defaults reproduce the fine look (thin strokes, the full range of skin tones and
    background colours); every field at its default draws exactly the same pixels.
    """

    motion_scale: float = 1.0  # drawn movement per unit of expression (brows, eyes, mouth, ...)
    eye_scale: float = 1.0  # eye size (a wide or narrowed eye is then more pixels)
    line_scale: float = 1.0  # stroke widths relative to the fine look
    min_line: int = 1  # thinnest stroke, pixels (strokes of 1 px vanish in a 48-64 px frame)
    bold: bool = False  # high-contrast parts: dark brows, lips and mouth, white teeth, frown furrows
    skin_range: tuple[float, float] = (0.0, 1.0)  # part of the dark..light skin tone range drawn from
    background_range: tuple[float, float] = (30.0, 230.0)  # background colour channel range
    background_ramp: float = 1.0  # how far the gradient's second colour may be from the first (0: plain)


@dataclass(frozen=True)
class Identity:
    """Per-clip appearance: who the face is, independent of expression and pose."""

    skin: tuple[float, float, float]  # BGR
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    face_w: float  # half-width of the face ellipse, fraction of the canvas
    face_h: float
    eye_dx: float  # horizontal distance of each eye from the midline
    eye_y: float
    mouth_w: float  # neutral mouth half-width
    brow_thick: float


def random_identity(rng: np.random.Generator, look: Look = Look()) -> Identity:
    """Draw a random identity (skin tone, hair, proportions, background colours) within ``look``'s ranges.

    Draws the same random numbers whatever ``look`` is, so looks change appearance, not the
    rest of a clip.
    """
    light, dark = np.array([170, 200, 235.0]), np.array([60, 95, 140.0])
    lo, hi = look.skin_range
    skin = tuple(float(v) for v in dark + (light - dark) * (lo + (hi - lo) * rng.uniform(0, 1)))
    hair = tuple(float(v) for v in rng.uniform(10, 90) * np.array([1.0, 1.1, 1.25]))
    iris = tuple(float(v) for v in rng.uniform(20, 140, 3))
    background = tuple(rng.uniform(*look.background_range, 3) for _ in range(2))
    if look.background_ramp != 1.0:
        background = (background[0], background[0] + look.background_ramp * (background[1] - background[0]))
    background = tuple(tuple(float(v) for v in c) for c in background)
    return Identity(
        skin=skin,
        hair=hair,
        iris=iris,
        background=background,  # type: ignore[arg-type]
        face_w=0.30 * rng.uniform(0.92, 1.08),
        face_h=0.38 * rng.uniform(0.94, 1.06),
        eye_dx=0.12 * rng.uniform(0.92, 1.08),
        eye_y=0.45 + rng.uniform(-0.01, 0.01),
        mouth_w=0.095 * rng.uniform(0.9, 1.1),
        brow_thick=0.022 * rng.uniform(0.8, 1.2),
    )


def _pt(size: int, x: float, y: float) -> tuple[int, int]:
    return int(round(x * size * _ONE)), int(round(y * size * _ONE))


def _axes(size: int, ax: float, ay: float) -> tuple[int, int]:
    return max(1, int(round(ax * size * _ONE))), max(1, int(round(ay * size * _ONE)))


def _mix(a, b, t: float) -> tuple[float, float, float]:
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))


def _stroke(width: float, fine: int, look: Look) -> int:
    """Stroke width in pixels: ``fine`` (the fine look's width) unless ``look`` scales strokes.

    Scaled strokes follow the frame size (``width`` is the unrounded width at ``size``) with a
    floor of ``look.min_line`` pixels.
    """
    if look.line_scale == 1.0 and look.min_line <= 1:
        return fine
    return max(look.min_line, int(round(width * look.line_scale)))


def draw_static(identity: Identity, size: int, look: Look = Look()) -> np.ndarray:
    """Background, hair, ears and face skin: the parts that never move. ``(size, size, 3)`` BGR."""
    c0, c1 = (np.array(c, dtype=np.float32) for c in identity.background)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    img = np.ascontiguousarray(np.broadcast_to(c0 + (c1 - c0) * ramp, (size, size, 3)).astype(np.uint8))
    cx, cy = FACE_CENTRE
    aa = cv2.LINE_AA
    cv2.ellipse(img, _pt(size, cx, cy - 0.06), _axes(size, identity.face_w * 1.1, identity.face_h * 0.95),
                0, 0, 360, identity.hair, -1, aa, _SHIFT)
    for side in (-1, 1):
        cv2.ellipse(img, _pt(size, cx + side * identity.face_w * 0.98, identity.eye_y + 0.05),
                    _axes(size, 0.035, 0.06), 0, 0, 360, _mix(identity.skin, (0, 0, 0), 0.1), -1, aa, _SHIFT)
    cv2.ellipse(img, _pt(size, cx, cy), _axes(size, identity.face_w, identity.face_h), 0, 0, 360,
                identity.skin, -1, aa, _SHIFT)
    cv2.ellipse(img, _pt(size, cx, cy), _axes(size, identity.face_w, identity.face_h), 0, 0, 360,
                _mix(identity.skin, (0, 0, 0), 0.35), _stroke(size / 64, max(1, size // 64), look), aa, _SHIFT)
    # Nose bridge and tip: static; wrinkles and flare are drawn per frame.
    nose = _px(np.array([[0.5, 0.47], [0.493, 0.575], [0.515, 0.585]]), size)
    cv2.polylines(img, [nose], False, _mix(identity.skin, (0, 0, 0), 0.4), _stroke(size / 80, max(1, size // 80), look),
                  aa, _SHIFT)
    return img


@dataclass(frozen=True)
class FaceGeometry:
    """Pixel geometry of the moving parts for ``D`` expression steps, computed in one batch.

    Coordinates are int32 in 1/16 pixel (OpenCV's ``shift=4``); ``D`` is the leading axis.
    """

    brows: np.ndarray  # (D, 2, 3, 2): step, side, inner/mid/outer, xy
    brow_boxes: np.ndarray  # (D, 2, 4): centre x, y, half-axes x, y of each brow's mask ellipse
    eyes: np.ndarray  # (2, 2): eye centres (they do not move)
    eye_axes: np.ndarray  # (D, 2): eye half-width, half-height
    iris_axes: np.ndarray  # (D, 2)
    pupil_axes: np.ndarray  # (D, 2)
    eye_mask_axes: np.ndarray  # (D, 2)
    cheeks: np.ndarray  # (D, 2, 2)
    mouth_upper: np.ndarray  # (D, K, 2)
    mouth_lower: np.ndarray  # (D, K, 2)
    teeth: np.ndarray  # (D, K, 2): lower edge of the upper teeth
    mouth_box: np.ndarray  # (D, 4)
    cheek: np.ndarray  # (D,) float amounts that colour the drawing
    wrinkle: np.ndarray  # (D,)
    press: np.ndarray  # (D,)
    show_teeth: np.ndarray  # (D,) bool
    furrows: np.ndarray  # (D, 2, 2, 2): step, side, top/bottom end, xy of the frown lines (bold look)
    furrow: np.ndarray  # (D,) how dark the frown lines are, 0 when none are drawn
    furrow_box: np.ndarray  # (4,): centre x, y, half-axes x, y of the frown lines' mask ellipse


def _px(values: np.ndarray, size: int) -> np.ndarray:
    return np.round(np.asarray(values) * (size * _ONE)).astype(np.int32)


# The moving parts as a table. Each anchor is a coordinate at rest and how far one unit of each
# driver moves it, in canvas fractions (y grows downwards); moves are applied in order. Drivers
# are the expression parameters, their positive parts ("mouth_open+", "cheek+"), "brow_lower_1.5"
# (brow_lower clipped to 0..1.5) and the row "mouth_opening". Measured from: brow x, the midline (mirrored on the left);
# brow y, the brows of eyes on y = 0.45 (they follow the identity's eyes); frown y, the eye line;
# mouth y, the mouth line ``MOUTH_Y``; cheek y, the canvas top.
ANCHORS: dict[str, tuple[float, dict[str, float]]] = {
    "brow_inner_x": (0.045, {"brow_lower": -0.022}),  # AU4 draws the brows together
    "brow_mid_x": (0.11, {}),
    "brow_outer_x": (0.18, {}),
    "brow_inner_y": (0.372, {"brow_raise": -0.055, "brow_inner_up": -0.06, "brow_lower": 0.05}),
    "brow_mid_y": (0.352, {"brow_raise": -0.067}),
    "brow_outer_y": (0.366, {"brow_raise": -0.059, "brow_lower": -0.012}),
    "frown_top_y": (-0.105, {"brow_lower_1.5": 0.02}),  # top end of the frown lines
    "cheek_y": (0.6, {"cheek": -0.025}),
    "mouth_opening": (0.0, {"mouth_open+": 0.08}),  # the jaw drop, shared by both lips
    "mouth_corner_y": (0.0, {"mouth_curve": -0.05}),  # smile up, frown down
    "mouth_upper_y": (-0.005, {"upper_lip": -0.02, "mouth_opening": -0.2}),  # the upper lip's middle
    "mouth_lower_y": (0.005, {"mouth_opening": 1.0}),
}
BROW_POINTS = ("inner", "mid", "outer")

# The parts' fixed shapes, canvas fractions.
FROWN = {"top_dx": 0.022, "bottom_dx": 0.013, "length": 0.055, "box": (0.5, -0.055, 0.045, 0.06)}  # box y: eye line
EYE = {"half_w": 0.062, "half_h": 0.027, "iris": 0.022, "pupil": 0.01, "mask_half_w": 0.082, "mask_margin": 0.02,
       "open_gain": 0.8, "narrow_gain": 0.7, "cheek_squeeze": 0.2, "min_aperture": 0.12}
CHEEK_X = (0.335, 0.665)
MOUTH_X, MOUTH_Y = 0.5, 0.69
MOUTH = {"points": 11, "width_gain": 0.4, "press_narrowing": 0.15, "snarl": 0.015, "round": 0.25, "teeth": 0.45}


def _drivers(e: np.ndarray) -> dict[str, np.ndarray]:
    """``e: (D, len(EXPRESSION_PARAMS))`` -> every driver of ``ANCHORS``, ``(D,)`` each."""
    col = {name: e[:, i] for name, i in P.items()}
    col["mouth_open+"] = np.maximum(0.0, col["mouth_open"])
    col["cheek+"] = np.maximum(0.0, col["cheek"])
    col["brow_lower_1.5"] = np.clip(col["brow_lower"], 0.0, 1.5)
    col["mouth_opening"] = _anchor("mouth_opening", col)
    return col


def _anchor(name: str, drivers: dict[str, np.ndarray], origin: float = 0.0, side: float = 1.0) -> np.ndarray:
    """``ANCHORS[name]`` at every step, ``(D,)``: ``origin + side * rest``, moved by ``side * gain``
    per unit of each driver (``side`` -1 mirrors an x about ``origin``)."""
    rest, moves = ANCHORS[name]
    value = np.full(len(drivers["brow_raise"]), origin + side * rest)
    for driver, gain in moves.items():
        value = value + side * gain * drivers[driver]
    return value


def _brow_geometry(identity: Identity, col: dict[str, np.ndarray], pad: float, bold: bool) -> tuple:
    """The brows' points ``(D, 2, 3, 2)`` and mask boxes ``(D, 2, 4)``, and the frown lines (points
    ``(D, 2, 2, 2)``, strength ``(D,)``, mask box ``(4,)``), in canvas fractions."""
    lift = identity.eye_y - 0.45
    ys = np.stack([_anchor(f"brow_{p}_y", col, lift) for p in BROW_POINTS], -1)
    brows = np.stack([np.stack([np.stack([_anchor(f"brow_{p}_x", col, 0.5, side) for p in BROW_POINTS], -1), ys], -1)
                      for side in (-1, 1)], 1)
    lo, hi = brows.min(axis=2), brows.max(axis=2)  # (D, 2, 2)
    brow_boxes = np.concatenate([(lo + hi) / 2, (hi - lo) / 2 + pad], axis=-1)
    # Lowered brows (AU4) crease the skin between them into vertical frown lines. The bold look
    # draws them: a lowered brow alone barely changes a small face whose brows sit on dark lids.
    top = _anchor("frown_top_y", col, identity.eye_y)
    furrows = np.stack([np.stack([np.stack([np.full_like(top, 0.5 + side * FROWN[end]), top + dy], -1)
                                  for end, dy in (("top_dx", 0.0), ("bottom_dx", FROWN["length"]))], 1)
                        for side in (-1, 1)], 1)
    furrow = np.clip(col["brow_lower"], 0.0, 1.0) if bold else np.zeros(len(top))
    x, y, ax, ay = FROWN["box"]
    return brows, brow_boxes, furrows, furrow, np.array([x, identity.eye_y + y, ax, ay])


def _eye_geometry(col: dict[str, np.ndarray], scale: float, pad: float) -> tuple[np.ndarray, ...]:
    """Half-axes ``(D, 2)`` of the eye, iris, pupil and eye mask: the eye opens (AU5) or narrows
    (AU7) with ``eye_open`` and a cheek raise squeezes it from below."""
    eo, d = col["eye_open"], len(col["eye_open"])
    aperture = np.where(eo > 0, 1 + EYE["open_gain"] * eo, 1 + EYE["narrow_gain"] * eo)
    aperture = np.maximum(EYE["min_aperture"], aperture - EYE["cheek_squeeze"] * col["cheek+"])
    eye_h = EYE["half_h"] * scale * aperture
    eye_axes = np.stack([np.full(d, EYE["half_w"] * scale), eye_h], axis=-1)
    iris_axes = np.stack([np.full(d, EYE["iris"] * scale), np.minimum(EYE["iris"] * scale, eye_h)], axis=-1)
    pupil_axes = np.stack([np.full(d, EYE["pupil"] * scale), np.minimum(EYE["pupil"] * scale, eye_h)], axis=-1)
    mask_h = np.maximum(eye_h, EYE["half_h"] * scale) + EYE["mask_margin"]
    eye_mask_axes = np.stack([np.full(d, EYE["mask_half_w"] * scale), mask_h], axis=-1)
    if pad != 0.03:
        eye_mask_axes = eye_mask_axes + (pad - 0.03)
    return eye_axes, iris_axes, pupil_axes, eye_mask_axes


def _mouth_geometry(identity: Identity, col: dict[str, np.ndarray], pad: float) -> tuple[np.ndarray, ...]:
    """The lips as ``MOUTH["points"]`` points from corner to corner: upper and lower lip and the
    upper teeth's lower edge, ``(D, K)`` x and y each, and the mask box ``(D, 4)``."""
    w = identity.mouth_w * (1 + MOUTH["width_gain"] * col["mouth_width"])
    w = w * (1 - MOUTH["press_narrowing"] * col["lip_press"])  # the half-width, stretched and pressed
    corner_y = _anchor("mouth_corner_y", col, MOUTH_Y)[:, None]
    s = np.linspace(-1.0, 1.0, MOUTH["points"])[None]  # corner to corner
    bulge = 1 - s**2
    upper_y = corner_y + (_anchor("mouth_upper_y", col, MOUTH_Y)[:, None] - corner_y) * bulge
    upper_y -= MOUTH["snarl"] * col["upper_lip"][:, None] * np.clip(s, 0, 1) * bulge  # a one-sided snarl
    lower_y = corner_y + (_anchor("mouth_lower_y", col, MOUTH_Y)[:, None] - corner_y) * bulge
    # A round "O" when the jaw drops without stretching: pull the corners in a little.
    xs = MOUTH_X + w[:, None] * s * (1 - MOUTH["round"] * col["mouth_open+"][:, None] * (1 - np.abs(s)))
    teeth_y = upper_y + MOUTH["teeth"] * (lower_y - upper_y)
    top, bottom = upper_y.min(axis=1), lower_y.max(axis=1)
    box = np.stack([np.full(len(w), MOUTH_X), (top + bottom) / 2, w + pad, (bottom - top) / 2 + pad], axis=-1)
    return xs, upper_y, lower_y, teeth_y, box


def face_geometry(identity: Identity, e: np.ndarray, size: int, look: Look = Look()) -> FaceGeometry:
    """Geometry of the moving parts for expressions ``e: (D, len(EXPRESSION_PARAMS))``.

    ``look.motion_scale`` multiplies every movement and ``look.eye_scale`` the eyes' size; the
    masks follow the parts wherever they go.
    """
    e = np.atleast_2d(np.asarray(e, dtype=np.float64))
    if look.motion_scale != 1.0:
        e = e * look.motion_scale
    # Mask margin around a part (canvas fraction): thicker strokes reach further from the part's
    # centre line, so their regions grow with them.
    pad = 0.03 if look.line_scale == 1.0 and look.min_line <= 1 else 0.03 * look.line_scale + 0.5 * look.min_line / size
    col = _drivers(e)
    brows, brow_boxes, furrows, furrow, furrow_box = _brow_geometry(identity, col, pad, look.bold)
    eye_axes, iris_axes, pupil_axes, eye_mask_axes = _eye_geometry(col, look.eye_scale, pad)
    eyes = np.array([[0.5 - identity.eye_dx, identity.eye_y], [0.5 + identity.eye_dx, identity.eye_y]])
    cheek_y = _anchor("cheek_y", col)
    cheeks = np.stack([np.stack([np.full_like(cheek_y, x), cheek_y], -1) for x in CHEEK_X], 1)
    xs, upper_y, lower_y, teeth_y, mouth_box = _mouth_geometry(identity, col, pad)
    return FaceGeometry(
        brows=_px(brows, size),
        brow_boxes=_px(brow_boxes, size),
        eyes=_px(eyes, size),
        eye_axes=np.maximum(1, _px(eye_axes, size)),
        iris_axes=np.maximum(1, _px(iris_axes, size)),
        pupil_axes=np.maximum(1, _px(pupil_axes, size)),
        eye_mask_axes=_px(eye_mask_axes, size),
        cheeks=_px(cheeks, size),
        mouth_upper=_px(np.stack([xs, upper_y], -1), size),
        mouth_lower=_px(np.stack([xs, lower_y], -1), size),
        teeth=_px(np.stack([xs, teeth_y], -1), size),
        mouth_box=_px(mouth_box, size),
        cheek=col["cheek+"],
        wrinkle=np.maximum(0.0, col["nose_wrinkle"]),
        press=np.clip(col["lip_press"], 0.0, 1.0),
        show_teeth=(col["mouth_curve"] > 0.3) & (col["mouth_open"] > 0.1),
        furrows=_px(furrows, size),
        furrow=furrow,
        furrow_box=_px(furrow_box, size),
    )


@dataclass(frozen=True)
class Style:
    """Per-clip colours and stroke widths, derived once from the identity and the size."""

    dark: tuple
    lip: tuple
    pressed_lip: tuple
    blush: tuple
    brow: tuple
    mouth: tuple  # inside of an open mouth
    teeth: tuple
    blush_amount: float  # how far a full cheek raise tints the cheeks towards ``blush``
    wrinkle_amount: float  # how dark a full nose wrinkle draws its lines
    brow_thick: int
    lid: int
    fine: int
    wrinkle_line: int
    lip_thick: float
    min_lip: int
    press_stroke: float  # relative change of the lips' stroke width when fully pressed
    nose_lines: tuple  # ((p0, p1), ...) wrinkle line end points
    nostrils: tuple  # centres
    size: int


def make_style(identity: Identity, size: int, look: Look = Look()) -> Style:
    """Colours, stroke widths and fixed points of ``identity`` at ``size`` (computed once per clip)."""
    lines = []
    for k, y in enumerate((0.48, 0.5, 0.52)):
        half = 0.02 + 0.01 * k
        lines.append((tuple(_px([0.5 - half, y], size).tolist()), tuple(_px([0.5 + half, y], size).tolist())))
    bold = look.bold
    # Bold parts stand out from any skin tone: near-black brows and mouth, dark red lips.
    lip = _mix(identity.skin, (40, 30, 150), 0.8) if bold else _mix(identity.skin, (60, 50, 160), 0.45)
    return Style(
        dark=_mix(identity.skin, (0, 0, 0), 0.55),
        lip=lip,
        pressed_lip=_mix(lip, (10, 5, 25), 0.85) if bold else _mix(lip, (20, 20, 60), 0.5),
        blush=(110, 90, 230),
        brow=_mix(identity.hair, (0, 0, 0), 0.6) if bold else identity.hair,
        mouth=(15, 10, 25) if bold else (45, 30, 70),
        teeth=(250, 250, 250) if bold else (235, 240, 245),
        blush_amount=0.8 if bold else 0.5,
        wrinkle_amount=0.85 if bold else 0.6,
        brow_thick=_stroke(identity.brow_thick * size, max(1, int(round(identity.brow_thick * size))), look),
        lid=_stroke(size / 56, max(1, size // 56), look),
        fine=max(1, size // 112),  # the lower lid stays fine: a thick one would close a small eye
        wrinkle_line=_stroke(size / 90, max(1, size // 90), look),
        lip_thick=size * 0.02 * look.line_scale,
        min_lip=look.min_line,
        # Fine pressed lips get thinner; bold ones (already at the thinnest stroke) turn into a
        # thick dark bar, the one part of an angry face no other class shares.
        press_stroke=0.8 if bold else -0.55,
        nose_lines=tuple(lines),
        nostrils=tuple(tuple(_px([0.5 + side * 0.022, 0.585], size).tolist()) for side in (-1, 1)),
        size=size,
    )


def draw_expression(img: np.ndarray, identity: Identity, style: Style, geo: FaceGeometry, s: int) -> None:
    """Draw the moving parts of step ``s`` onto ``img (S, S, 3)`` BGR in place."""
    aa, sh = cv2.LINE_AA, _SHIFT
    size = style.size
    cheek = float(geo.cheek[s])
    if cheek > 0.02:
        color = _mix(identity.skin, style.blush, style.blush_amount * cheek)
        for c in geo.cheeks[s].tolist():
            cv2.circle(img, c, int(0.05 * size * _ONE), color, -1, aa, sh)

    eye_ax = tuple(geo.eye_axes[s].tolist())
    iris_ax = tuple(geo.iris_axes[s].tolist())
    pupil_ax = tuple(geo.pupil_axes[s].tolist())
    for c in geo.eyes.tolist():
        c = tuple(c)
        cv2.ellipse(img, c, eye_ax, 0, 0, 360, (235, 240, 240), -1, aa, sh)
        cv2.ellipse(img, c, iris_ax, 0, 0, 360, identity.iris, -1, aa, sh)
        cv2.ellipse(img, c, pupil_ax, 0, 0, 360, (20, 20, 20), -1, aa, sh)
        cv2.ellipse(img, c, eye_ax, 0, 180, 360, (25, 25, 35), style.lid, aa, sh)
        cv2.ellipse(img, c, eye_ax, 0, 0, 180, style.dark, style.fine, aa, sh)

    furrow = float(geo.furrow[s])
    if furrow > 0.02:
        color = _mix(identity.skin, (0, 0, 0), style.wrinkle_amount * furrow)
        cv2.polylines(img, list(geo.furrows[s]), False, color, style.wrinkle_line, aa, sh)
    cv2.polylines(img, list(geo.brows[s]), False, style.brow, style.brow_thick, aa, sh)

    wrinkle = float(geo.wrinkle[s])
    if wrinkle > 0.02:
        color = _mix(identity.skin, (0, 0, 0), style.wrinkle_amount * wrinkle)
        for p0, p1 in style.nose_lines:
            cv2.line(img, p0, p1, color, style.wrinkle_line, aa, sh)
    flare = _px([0.012 * (1 + 0.8 * wrinkle), 0.008], size).tolist()
    for c in style.nostrils:
        cv2.ellipse(img, c, tuple(flare), 0, 0, 360, style.dark, -1, aa, sh)

    up, lo = geo.mouth_upper[s], geo.mouth_lower[s]
    cv2.fillPoly(img, [np.concatenate([up, lo[::-1]])], style.mouth, aa, sh)
    if geo.show_teeth[s]:
        cv2.fillPoly(img, [np.concatenate([up, geo.teeth[s][::-1]])], style.teeth, aa, sh)
    press = float(geo.press[s])
    lip = _mix(style.lip, style.pressed_lip, press)
    thick = max(style.min_lip, int(round(style.lip_thick * (1 + style.press_stroke * press))))
    cv2.polylines(img, [up, lo], False, lip, thick, aa, sh)


def draw_face_area(mask: np.ndarray, identity: Identity, value: int = 1) -> None:
    """Fill the face ellipse (skin, without hair and ears) in ``mask (S, S) uint8`` with ``value``, in place."""
    size = mask.shape[0]
    cv2.ellipse(mask, _pt(size, *FACE_CENTRE), _axes(size, identity.face_w, identity.face_h), 0, 0, 360, value, -1,
                cv2.LINE_8, _SHIFT)


def draw_part_masks(mask: np.ndarray, geo: FaceGeometry, s: int, groups: tuple[str, ...], value: int = 1) -> None:
    """Fill the regions of the face ``groups`` at step ``s`` in ``mask (S, S) uint8`` with ``value``, in place.

    Regions are ellipses around each part with a margin, so a part's region covers it at any
    expression strength and stays comparable across frames. The union masks fill 1; the region
    label maps (``tdrag.data.synthetic.regions``) fill each part's label.
    """
    size = mask.shape[0]
    sh = _SHIFT
    if "brows" in groups:
        for cx, cy, ax, ay in geo.brow_boxes[s].tolist():
            cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, value, -1, cv2.LINE_8, sh)
        if geo.furrow[s] > 0.02:
            cx, cy, ax, ay = geo.furrow_box.tolist()
            cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, value, -1, cv2.LINE_8, sh)
    if "eyes" in groups:
        axes = tuple(geo.eye_mask_axes[s].tolist())
        for c in geo.eyes.tolist():
            cv2.ellipse(mask, tuple(c), axes, 0, 0, 360, value, -1, cv2.LINE_8, sh)
    if "cheeks" in groups:
        for c in geo.cheeks[s].tolist():
            cv2.circle(mask, tuple(c), int(0.065 * size * _ONE), value, -1, cv2.LINE_8, sh)
    if "nose" in groups:
        cv2.ellipse(mask, _pt(size, 0.5, 0.53), _axes(size, 0.055, 0.075), 0, 0, 360, value, -1, cv2.LINE_8, sh)
    if "mouth" in groups:
        cx, cy, ax, ay = geo.mouth_box[s].tolist()
        cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, value, -1, cv2.LINE_8, sh)
