"""Temporal ground truth of a synthetic clip: what the renderer drew over time, and which frames
carry the evidence that separates the clip's class from its nearest class.

The renderer records each face part's **curve** (``ClipPlan.part_curves``): per frame, how far
the part is along its own movement to the apex face, 0..1 (the clip's random strength divided out,
the relaxing after the apex kept; parts the apex face does not move stay 0), and the blink
nuisance. From the curves alone (no pixels, no model) this module derives the **evidence frames**:

- The **nearest class** of a class is its twin when the preset makes two classes share one apex
  face (``SynthPreset.shared_apex``: Fear and Surprise, Disgust and Angry), otherwise the class
  whose apex face is closest (Euclidean distance of the expression parameters).
- A **twin**'s evidence frames are those whose part configuration its twin's schedule cannot
  produce at the clip's own strength: a frame's state (each part's progress, the curves with the
  relaxing divided out, over the parts the shared face moves, beside how far each part has gone
  so far in the clip, its running maximum) is compared with every point of a schedule's path (the
  same two things at phase ``x`` of that class's nominal timing). A frame is evidence when the
  twin's path is at least ``TWIN_MARGIN`` further away (RMS) than the class's own. At rest and at
  the apex both paths meet, so only transition frames qualify: Fear's eyes open with the mouth
  still closed, Surprise's parts all half-way at once, Disgust's mouth ahead of its brows, Angry's
  brows ahead of its mouth. For parts that only rise (every ``medium`` class) the running maximum
  is the progress itself; it matters for movements that come and go, where a frame alone is
  shared by two classes but its history is not. Surprise's transition is brief, so many of its
  clips have one or two such frames, and few keyframes among them.
- Any other class's evidence frames are those in which one of its moving parts is visibly active
  (curve >= ``ACTIVE``). Neutral moves nothing and has none.

A clip without evidence frames (or with only evidence frames among its keyframes) cannot score a
per-keyframe importance: analyses skip it and count it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tdrag.data.synthetic.expressions import NEUTRAL, SHARED_APEX, TIMINGS, apex_vector, expression_name, group_progress
from tdrag.data.synthetic.faces import GROUPS, PARAM_GROUP_INDEX

#: A part counts as visibly active from a tenth of its movement (as the renderer's signal masks do).
ACTIVE = 0.1
#: How much further (RMS of the part curves) the twin's path must be than the class's own.
TWIN_MARGIN = 0.1
#: Phases at which each schedule's path is sampled (fractions of the expression phase; every
#: schedule rests before 0 and is done by 2.6, jitter included: the ``order`` pulses end by 2.51).
_PHASES = np.linspace(-0.1, 2.6, 271)


@dataclass
class ClipTimeline:
    """One clip's temporal ground truth (``tdrag.data.synthetic.load_clip_timeline``).

    Attributes:
        curves: ``(L, G)`` float32, each part's curve per frame (``parts`` names the G columns).
        relax: ``(L,)`` float32, the factor the relaxing after the apex scales every part by (1 before).
        blink: ``(L,)`` float32, how far a blink closes the eyes per frame (a nuisance).
        evidence: ``(L,)`` bool, the frames that carry the evidence against ``nearest``.
        nearest: the class the evidence separates this clip's class from ("" for none).
        strength: the clip's apex strength: ``curves * strength`` is how far each part moved, as
            a fraction of the class's full apex movement (what the pixels show).
        parts: the part names, ``tdrag.data.synthetic.faces.GROUPS``.
    """

    curves: np.ndarray
    relax: np.ndarray
    blink: np.ndarray
    evidence: np.ndarray
    nearest: str
    strength: float = 1.0
    parts: tuple[str, ...] = GROUPS


def twin_of(class_name: str, classes: tuple[str, ...], shared_apex: bool) -> str | None:
    """The class of ``classes`` that shares ``class_name``'s apex face under ``shared_apex``, if any."""
    if not shared_apex:
        return None
    name = expression_name(class_name)
    for other in classes:
        o = expression_name(other)
        if o != name and (SHARED_APEX.get(name) == o or SHARED_APEX.get(o) == name):
            return other
    return None


def nearest_class(class_name: str, classes: tuple[str, ...], shared_apex: bool) -> str:
    """The class whose clips are hardest to tell from ``class_name``'s: the twin under
    ``shared_apex``, otherwise the closest apex face among ``classes`` ("" when alone)."""
    twin = twin_of(class_name, classes, shared_apex)
    if twin is not None:
        return twin
    own = apex_vector(class_name, shared_apex)
    best, best_dist = "", np.inf
    for other in classes:
        if expression_name(other) == expression_name(class_name):
            continue
        dist = float(np.linalg.norm(apex_vector(other, shared_apex) - own))
        if dist < best_dist:
            best, best_dist = other, dist
    return best


def schedule_path(class_name: str, parts: np.ndarray, timing: str = "standard") -> np.ndarray:
    """``(X, len(parts))`` progress of the ``parts`` (indices into GROUPS) along the class's
    nominal schedule in the ``timing`` table, at the phases ``_PHASES``."""
    table = TIMINGS[timing][expression_name(class_name)]
    starts = np.array([table.get(g, (0.0, 1.0))[0] for g in GROUPS])
    durations = np.array([table.get(g, (0.0, 1.0))[1] for g in GROUPS])
    return group_progress(class_name, _PHASES, starts, durations, timing)[:, parts]


def with_history(progress: np.ndarray) -> np.ndarray:
    """``(L, G')`` progress over time -> ``(L, 2 G')``: each part's progress beside its running maximum."""
    return np.concatenate([progress, np.maximum.accumulate(progress, axis=0)], axis=1)


def distance_to_path(p: np.ndarray, path: np.ndarray) -> np.ndarray:
    """``(L,)`` RMS distance of each frame's state ``p (L, F)`` to the nearest point of a path
    ``r (X, F)``."""
    sq = ((p[:, None, :] - path[None]) ** 2).mean(axis=2)  # (L, X)
    return np.sqrt(sq.min(axis=1))


def evidence_frames(class_name: str, curves: np.ndarray, relax: np.ndarray, classes: tuple[str, ...],
                    shared_apex: bool, timing: str = "standard") -> np.ndarray:
    """``(L,)`` bool: the frames of a clip of ``class_name`` whose curves ``(L, G)`` (and relaxing
    ``(L,)``) carry the evidence against its nearest class (the rules in the module docstring)."""
    curves = np.asarray(curves, dtype=np.float64)
    name = expression_name(class_name)
    if name == NEUTRAL:
        return np.zeros(len(curves), dtype=bool)
    moving = _moving_parts(name, shared_apex)
    twin = twin_of(class_name, classes, shared_apex)
    if twin is None:
        return (curves[:, moving] >= ACTIVE).any(axis=1)
    progress = curves[:, moving] / np.maximum(np.asarray(relax, dtype=np.float64)[:, None], 1e-6)
    state = with_history(progress)
    own = distance_to_path(state, with_history(schedule_path(name, moving, timing)))
    other = distance_to_path(state, with_history(schedule_path(twin, moving, timing)))
    return other - own >= TWIN_MARGIN


def _moving_parts(class_name: str, shared_apex: bool) -> np.ndarray:
    """Indices (into GROUPS) of the parts the class's apex face moves."""
    apex = apex_vector(class_name, shared_apex)
    return np.unique(PARAM_GROUP_INDEX[apex != 0])


def clip_timeline(class_name: str, part_curves: np.ndarray, relax: np.ndarray, blink: np.ndarray, strength: float,
                  classes: tuple[str, ...], shared_apex: bool, timing: str = "standard") -> ClipTimeline:
    """The temporal ground truth of one clip from the renderer's per-frame curves ``(L, G)``,
    relaxing ``(L,)``, blink ``(L,)`` and apex strength."""
    curves = np.asarray(part_curves, dtype=np.float32)
    return ClipTimeline(curves=curves, relax=np.asarray(relax, dtype=np.float32),
                        blink=np.asarray(blink, dtype=np.float32),
                        evidence=evidence_frames(class_name, curves, relax, classes, shared_apex, timing),
                        nearest=nearest_class(class_name, classes, shared_apex), strength=float(strength))
