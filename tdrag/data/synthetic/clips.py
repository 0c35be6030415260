"""One synthetic expression clip: class dynamics from neutral onset to apex, plus nuisances.

Each class moves the face parts of ``tdrag.data.synthetic.faces`` from neutral to its apex face
along its own schedule (``tdrag.data.synthetic.expressions``, looked up by class name). Under
``SynthPreset.shared_apex`` Fear wears Surprise's apex face and Disgust wears Angry's: those pairs
then differ only in their dynamics, so a model must use time.

Nuisances (``tdrag.data.synthetic.presets.SynthPreset``): identity, pose (shift, rotation, scale,
drifting over the clip), a lighting gradient with flicker, pixel noise, blur, occluders (a hand
or an object) over face parts in runs of frames, blinks, clip length, and held runs in which a
frame repeats exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tdrag.data.labels import DFEW_CLASSES
from tdrag.data.synthetic.expressions import (
    NEUTRAL,
    NEUTRAL_GROUPS,
    TIMINGS,
    apex_vector,
    expression_name,
    group_progress,
)
from tdrag.data.synthetic.presets import SynthPreset
from tdrag.data.synthetic.regions import DISTRACTOR, OCCLUDER, OUTSIDE, draw_face_regions
from tdrag.data.synthetic.faces import (
    EXPRESSION_PARAMS,
    GROUPS,
    PARAM_GROUP_INDEX,
    draw_expression,
    draw_part_masks,
    draw_static,
    face_geometry,
    make_style,
    random_identity,
)


@dataclass
class ClipPlan:
    """Everything about a clip that is decided before drawing: per render step values and poses."""

    label: int
    length: int
    frame_step: np.ndarray  # (L,) index of the render step each frame shows (held runs repeat)
    step_frame: np.ndarray  # (D,) frame index at which each render step first appears
    expression: np.ndarray  # (D, len(EXPRESSION_PARAMS)) values drawn (blinks included)
    active: np.ndarray  # (D, len(GROUPS)) bool: parts carrying the class signal in this step
    intensity: np.ndarray  # (L,) class expression strength per frame, 0..1 of the apex
    apex: int  # frame index, 0-based
    onset: int | None  # first frame in which a part carrying the class signal has moved (None: Neutral)
    poses: np.ndarray  # (D, 2, 3) affine matrices, canonical canvas -> frame
    # What the expression did over time (recorded, never drawn from: no random draw depends on it).
    part_curves: np.ndarray | None = None  # (D, len(GROUPS)) each part's share of its apex movement, 0..1
    relax: np.ndarray | None = None  # (D,) the factor relaxing after the apex scales every part by (1 before)
    blink: np.ndarray | None = None  # (D,) how far a blink closes the eyes, 0..1 (a nuisance)
    strength: float = 1.0  # the apex face's strength in this clip (every part's movement scales with it)


def _held_runs(rng: np.random.Generator, length: int, preset: SynthPreset) -> np.ndarray:
    """``(L,)`` frame -> render step map: held runs show the previous frame's step again."""
    frame_step = np.zeros(length, dtype=np.int64)
    step, hold_left = 0, 0
    for i in range(1, length):
        if hold_left == 0 and rng.random() < preset.hold_prob:
            hold_left = int(rng.integers(1, preset.hold_run + 1))
        if hold_left > 0:
            hold_left -= 1
        else:
            step += 1
        frame_step[i] = step
    return frame_step


def plan_clip(rng: np.random.Generator, label: int, preset: SynthPreset, size: int,
              classes: tuple[str, ...] = DFEW_CLASSES) -> ClipPlan:
    """Draw length, held runs, timing, intensities and poses of one clip of class ``classes[label]``."""
    name = expression_name(classes[label])
    length = int(rng.integers(preset.length[0], preset.length[1] + 1))
    frame_step = _held_runs(rng, length, preset)
    num_steps = int(frame_step[-1]) + 1
    step_frame = np.searchsorted(frame_step, np.arange(num_steps))
    # Time advances during a hold (the video froze), so a step's time is that of its first frame.
    tau = step_frame / max(1, length - 1)

    onset = rng.uniform(*preset.onset)
    phase = rng.uniform(*preset.phase)
    starts = np.zeros(len(GROUPS))
    durations = np.ones(len(GROUPS))
    for g, (start, dur, *_) in TIMINGS[preset.timing][name].items():
        k = GROUPS.index(g)
        starts[k] = max(0.0, start + rng.uniform(-preset.timing_jitter, preset.timing_jitter))
        durations[k] = dur * rng.uniform(0.9, 1.1)
    progress = group_progress(name, (tau - onset) / phase, starts, durations, preset.timing)  # (D, G)
    strength = rng.uniform(*preset.intensity)
    relax = np.ones(num_steps)
    if rng.random() < preset.offset_prob:
        t_off = onset + phase * float(np.max(starts + durations)) + rng.uniform(0.02, 0.1)
        span = preset.offset_time if preset.offset_time > 0 else max(1e-6, 1.0 - t_off)
        relax = 1.0 - preset.offset_depth * np.clip((tau - t_off) / span, 0.0, 1.0)
    apex_face = apex_vector(name, preset.shared_apex)
    expression = apex_face[None] * strength * progress[:, PARAM_GROUP_INDEX] * relax[:, None]  # (D, P)
    moving = np.zeros(len(GROUPS), dtype=bool)
    moving[PARAM_GROUP_INDEX[apex_face != 0]] = True
    # A part's curve: how far along its own apex movement it is (the clip's strength divided out,
    # the relaxing after the apex kept); parts this face does not move stay 0.
    part_curves = progress * relax[:, None] * moving[None]

    denom = np.abs(apex_face).sum() * strength
    step_intensity = np.abs(expression).sum(axis=1) / denom if denom > 0 else np.zeros(num_steps)
    intensity = step_intensity[frame_step]
    if name == NEUTRAL:
        apex, first = length // 2, None
        active = np.zeros((num_steps, len(GROUPS)), dtype=bool)
        active[:, [GROUPS.index(g) for g in NEUTRAL_GROUPS]] = True
    else:
        apex = int(np.argmax(intensity))
        # A part carries signal once it has moved a tenth of the way (and only if it moves at all);
        # the onset is the first frame where some part does.
        active = (progress >= 0.1) & moving[None]
        visible = np.flatnonzero(active.any(axis=1)[frame_step])
        first = int(visible[0]) if len(visible) else None

    blink = np.zeros(num_steps)
    if rng.random() < preset.blink_prob:  # a nuisance: blinks move the eyes in every class
        eye = EXPRESSION_PARAMS.index("eye_open")
        for centre in rng.uniform(0, 1, int(rng.integers(1, 3))):
            closing = np.clip(1 - np.abs(tau - centre) * length / 2.5, 0, 1)
            expression[:, eye] = expression[:, eye] * (1 - closing) - closing
            blink = np.maximum(blink, closing)

    poses = _poses(rng, tau, preset, size)
    return ClipPlan(label, length, frame_step, step_frame, expression, active, intensity, apex, first, poses,
                    part_curves, relax, blink, float(strength))


#: The canonical face is drawn a little small (room for hair and ears); frames show it larger
#: (``SynthPreset.zoom``, by default this), with its centre (0.5, 0.53) moved to the frame centre.
FACE_ZOOM = 1.12


def _poses(rng: np.random.Generator, tau: np.ndarray, preset: SynthPreset, size: int) -> np.ndarray:
    """``(D, 2, 3)`` affine matrices: rotate and scale about the face centre, then shift."""
    lo = np.array([-preset.shift, -preset.shift, -preset.rotation, preset.scale[0]])
    hi = np.array([preset.shift, preset.shift, preset.rotation, preset.scale[1]])
    start = rng.uniform(lo, hi)
    end = np.clip(start + preset.pose_drift * rng.uniform(lo - hi, hi - lo) / 2, lo, hi)
    centre = (0.5 * size, 0.53 * size)
    mats = np.empty((len(tau), 2, 3))
    for k, t in enumerate(tau):
        dx, dy, angle, scale = start + (end - start) * t
        m = cv2.getRotationMatrix2D(centre, float(angle), float(scale) * preset.zoom)
        m[:, 2] += (dx * size, (dy - 0.03) * size)
        mats[k] = m
    return mats


@dataclass
class _Occluder:
    first: int  # render steps [first, last) show it
    last: int
    kind: str  # "hand" | "object"
    start: np.ndarray  # (2,) centre at the first step, canvas fraction
    end: np.ndarray
    axes: tuple[float, float]
    angle: float
    color: tuple[float, float, float]


def _occluders(rng: np.random.Generator, plan: ClipPlan, preset: SynthPreset, skin) -> list[_Occluder]:
    if rng.random() >= preset.occlusion_prob:
        return []
    targets = {"eyes": (0.5 + rng.choice([-0.12, 0.12]), 0.45), "mouth": (0.5, 0.69), "brows": (0.4, 0.36),
               "nose": (0.5, 0.53), "cheeks": (0.5 + rng.choice([-0.17, 0.17]), 0.6), "forehead": (0.5, 0.25),
               "chin": (0.5, 0.85)}
    moving = [GROUPS[k] for k in np.flatnonzero(plan.active.any(axis=0))]
    # Mild presets keep occluders off the parts that carry the class signal.
    allowed = list(targets) if preset.occlude_signal else [t for t in targets if t not in moving]
    out = []
    num_steps = len(plan.step_frame)
    for _ in range(int(rng.integers(1, preset.occlusion_events + 1))):
        frames = max(1, int(round(plan.length * rng.uniform(*preset.occlusion_frames))))
        f0 = int(rng.integers(0, max(1, plan.length - frames)))
        first = int(plan.frame_step[f0])
        last = int(plan.frame_step[min(plan.length - 1, f0 + frames)]) + 1
        centre = np.array(targets[allowed[int(rng.integers(len(allowed)))]])
        kind = "hand" if rng.random() < 0.5 else "object"
        color = tuple(float(v) for v in (np.array(skin) * rng.uniform(0.8, 1.1) if kind == "hand"
                                         else rng.uniform(20, 235, 3)))
        out.append(_Occluder(first, min(last, num_steps), kind, centre + rng.normal(0, 0.02, 2),
                             centre + rng.normal(0, 0.04, 2), (rng.uniform(0.08, 0.14), rng.uniform(0.05, 0.09)),
                             float(rng.uniform(-40, 40)), color))
    return out


def _draw_occluder(img: np.ndarray, mask: np.ndarray, regions: np.ndarray, occ: _Occluder, step: int) -> None:
    """Draw ``occ`` at render ``step`` onto ``img``, clear it from the union ``mask`` and label it in ``regions``."""
    size = img.shape[0]
    t = (step - occ.first) / max(1, occ.last - occ.first - 1)
    cx, cy = (occ.start + (occ.end - occ.start) * t) * size
    ax, ay = occ.axes[0] * size, occ.axes[1] * size
    if occ.kind == "hand":
        box = ((float(cx), float(cy)), (2 * ax, 2 * ay), occ.angle)
        cv2.ellipse(img, box, occ.color, -1, cv2.LINE_AA)
        cv2.ellipse(mask, box, 0, -1)
        cv2.ellipse(regions, box, OCCLUDER, -1)
        edge = tuple(c * 0.7 for c in occ.color)
        for k in (-1, 0, 1):  # finger gaps
            off = k * ay * 0.5
            cv2.line(img, (int(cx - ax * 0.9), int(cy + off)), (int(cx + ax * 0.2), int(cy + off)), edge, 1,
                     cv2.LINE_AA)
    else:
        rect = cv2.boxPoints(((float(cx), float(cy)), (2 * ax, 2 * ay), occ.angle))
        pts = np.round(rect).astype(np.int32)
        cv2.fillConvexPoly(img, pts, occ.color, cv2.LINE_AA)
        cv2.fillConvexPoly(mask, pts, 0)
        cv2.fillConvexPoly(regions, pts, OCCLUDER)


@dataclass
class _Distractor:
    """Something moving away from the face's signal regions: another person's mouth or hand in the
    background, talking or gesturing with timing of its own (DFEW's clips come from films and TV,
    where people behind or beside the subject move and speak)."""

    centre: np.ndarray  # (2,) frame fraction at the clip's start
    drift: np.ndarray  # (2,) displacement over the clip
    axes: tuple[float, float]  # half-axes at full opening, frame fraction
    onset: float  # when it starts opening, clip fraction
    speed: float  # how long the opening takes, clip fraction
    cycles: float  # open-close cycles after the onset (0: opens once and stays open)
    color: tuple[float, float, float]


# Anchors for distractors in frame coordinates, away from the face parts: left and right
# background, above the head and below the chin.
_DISTRACTOR_ANCHORS = np.array([[0.09, 0.25], [0.91, 0.25], [0.09, 0.75], [0.91, 0.75], [0.5, 0.05], [0.5, 0.97]])


def _distractors(rng: np.random.Generator, preset: SynthPreset) -> list[_Distractor]:
    if preset.distractor_prob <= 0 or rng.random() >= preset.distractor_prob:
        return []
    count = int(rng.integers(1, max(1, preset.distractors) + 1))
    anchors = rng.choice(len(_DISTRACTOR_ANCHORS), size=min(count, len(_DISTRACTOR_ANCHORS)), replace=False)
    out = []
    for a in anchors:
        out.append(_Distractor(
            centre=_DISTRACTOR_ANCHORS[a] + rng.normal(0, 0.02, 2),
            drift=rng.normal(0, 0.04, 2),
            axes=(float(rng.uniform(0.05, 0.09)), float(rng.uniform(0.03, 0.07))),
            onset=float(rng.uniform(0.0, 0.6)),
            speed=float(rng.uniform(0.05, 0.5)),
            cycles=float(rng.choice([0.0, 1.0, 2.0, 3.0])),
            color=tuple(float(v) for v in rng.uniform(10, 90, 3)),
        ))
    return out


def _draw_distractor(img: np.ndarray, regions: np.ndarray, d: _Distractor, t: float) -> bool:
    """Draw ``d`` at clip time ``t`` (0..1) onto the frame ``img`` in place and label it in ``regions``;
    whether it showed."""
    size = img.shape[0]
    u = np.clip((t - d.onset) / d.speed, 0.0, None)
    opening = float(np.clip(u, 0.0, 1.0)) if d.cycles == 0 else float(0.5 - 0.5 * np.cos(np.pi * min(u, 2 * d.cycles)))
    if opening < 0.05:
        return False
    cx, cy = (d.centre + d.drift * t) * size
    axes = (max(1, int(round(d.axes[0] * size))), max(1, int(round(d.axes[1] * size * opening))))
    centre = (int(round(cx)), int(round(cy)))
    cv2.ellipse(img, centre, axes, 0, 0, 360, d.color, -1, cv2.LINE_AA)
    cv2.ellipse(regions, centre, axes, 0, 0, 360, DISTRACTOR, -1, cv2.LINE_8)
    return True


@dataclass
class RenderedClip:
    """A drawn clip, stored once per render step: ``frames[frame_step]`` is the full clip."""

    label: int
    steps_bgr: np.ndarray  # (D, S, S, 3) uint8 BGR, one image per render step
    step_masks: np.ndarray  # (D, S, S) uint8 0/1
    step_regions: np.ndarray  # (D, S, S) uint8 region labels (tdrag.data.synthetic.regions.REGIONS)
    frame_step: np.ndarray  # (L,)
    apex: int
    onset: int | None
    intensity: np.ndarray  # (L,)
    # What the nuisances did at each render step (for analyses of what attracts keyframes or
    # attention; nothing is drawn from them): an occluder over the face, a distractor visible,
    # the global brightness gain (flicker), and the face's pose (canonical canvas -> frame).
    occluded: np.ndarray | None = None  # (D,) bool
    distractor_visible: np.ndarray | None = None  # (D,) bool
    flicker: np.ndarray | None = None  # (D,) float
    poses: np.ndarray | None = None  # (D, 2, 3) float
    # What the expression did at each render step (``ClipPlan.part_curves``, ``.relax``, ``.blink``).
    part_curves: np.ndarray | None = None  # (D, len(GROUPS)) float
    relax: np.ndarray | None = None  # (D,) float
    blink: np.ndarray | None = None  # (D,) float
    strength: float = 1.0


def render(rng: np.random.Generator, label: int, preset: SynthPreset, size: int,
           classes: tuple[str, ...] = DFEW_CLASSES) -> RenderedClip:
    """Plan and draw one clip of class ``classes[label]`` (0-based; DFEW's list by default) at ``size x size``."""
    if not 0 <= label < len(classes):
        raise ValueError(f"label {label} is outside 0..{len(classes) - 1}")
    plan = plan_clip(rng, label, preset, size, classes)
    look = preset.look
    identity = random_identity(rng, look)
    occluders = _occluders(rng, plan, preset, identity.skin)
    distractors = _distractors(rng, preset)
    static = draw_static(identity, size, look)

    # Lighting is fixed in the world (not on the face): a gain plane across the frame.
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1) - 0.5
    gain = (1 + preset.light * 2 * (xx * np.cos(theta) + yy * np.sin(theta))) * rng.uniform(0.9, 1.1)
    gain = gain.astype(np.float32)[..., None]
    sigma = rng.uniform(*preset.noise)
    pad = 8
    # A small bank of noise images; each frame reads a random window (cheaper than fresh noise).
    bank = rng.standard_normal((3, size + pad, size + pad, 3), dtype=np.float32) * np.float32(sigma)
    blur = rng.uniform(*preset.blur_sigma) if rng.random() < preset.blur_prob else 0.0

    num_steps = len(plan.step_frame)
    steps = np.empty((num_steps, size, size, 3), dtype=np.uint8)
    masks = np.empty((num_steps, size, size), dtype=np.uint8)
    regions = np.empty((num_steps, size, size), dtype=np.uint8)
    labels = np.empty((size, size), dtype=np.uint8)  # one step's regions on the canonical canvas
    active_names = [tuple(GROUPS[k] for k in np.flatnonzero(row)) for row in plan.active]
    geo = face_geometry(identity, plan.expression, size, look)
    rest = face_geometry(identity, np.zeros((1, len(EXPRESSION_PARAMS))), size, look)  # the neutral face
    style = make_style(identity, size, look)
    gain3 = np.ascontiguousarray(np.repeat(gain, 3, axis=2))
    flicker = 1.0 + preset.flicker * rng.standard_normal(num_steps)
    windows = rng.integers(0, [3, pad, pad], size=(num_steps, 3))  # noise image, row, column
    occluded = np.zeros(num_steps, dtype=bool)
    visible = np.zeros(num_steps, dtype=bool)
    for s in range(num_steps):
        img = static.copy()
        draw_expression(img, identity, style, geo, s)
        mask = np.zeros((size, size), dtype=np.uint8)
        # A moving part's region covers where it is now and where it was at rest: the skin it
        # uncovered is as much a sign of the movement as the part itself.
        draw_part_masks(mask, geo, s, active_names[s])
        draw_part_masks(mask, rest, 0, active_names[s])
        draw_face_regions(labels, identity, geo, rest, s)
        for occ in occluders:
            if occ.first <= s < occ.last:
                _draw_occluder(img, mask, labels, occ, s)
                occluded[s] = True
        m = plan.poses[s]
        img = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.warpAffine(mask, m, (size, size), dst=masks[s], flags=cv2.INTER_NEAREST, borderValue=0)
        cv2.warpAffine(labels, m, (size, size), dst=regions[s], flags=cv2.INTER_NEAREST, borderValue=OUTSIDE)
        for d in distractors:
            visible[s] |= _draw_distractor(img, regions[s], d, float(plan.step_frame[s]) / max(1, plan.length - 1))
        if blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur)
        k, oy, ox = windows[s].tolist()
        lit = cv2.multiply(img, gain3, scale=float(flicker[s]), dtype=cv2.CV_32F)
        steps[s] = cv2.add(lit, bank[k, oy : oy + size, ox : ox + size], dtype=cv2.CV_8U)  # rounds, saturates
    return RenderedClip(plan.label, steps, masks, regions, plan.frame_step, plan.apex, plan.onset, plan.intensity,
                        occluded=occluded, distractor_visible=visible, flicker=flicker, poses=plan.poses,
                        part_curves=plan.part_curves, relax=plan.relax, blink=plan.blink,
                        strength=plan.strength)
