"""The expressions the synthetic faces make: each class's apex face and its timing, by class name.

An expression moves the face parts of ``tdrag.data.synthetic.faces`` from neutral to its apex
face (values of ``EXPRESSION_PARAMS``, loosely facial action units) along its own schedule: every
part starts at its own time and takes its own time to get there (fractions of the expression
phase). Classes are looked up by name (:func:`expression_name`), so a dataset layout with its own
class list and order (DFEW, FERV39k, MAFW) draws the same face for the same emotion.

The seven basic classes serve DFEW and FERV39k; MAFW adds Contempt, Anxiety, Helplessness and
Disappointment (its ``happiness``, ``sadness`` and ``anger`` are ``ALIASES`` of Happy, Sad, Angry).

Two pairs differ partly in timing, and only in timing under ``SynthPreset.shared_apex``:

- Surprise: every part moves at once and fast (apex within ~15 % of the expression phase).
  Fear: slow; the eyes open first, the brows follow, the mouth stretches last.
- Angry: brows lower fast and first, the mouth presses later.
  Disgust: nose wrinkle and upper lip first, brows lower last and slowly.

A preset picks a timing table (``SynthPreset.timing``, one of ``TIMINGS``). ``"order"`` makes
Surprise and Fear an order-only pair: each makes the same two brief movements (the brows and eyes
rise and fall back; the mouth opens and closes), Surprise upper face first, Fear mouth first.
Under ``shared_apex`` they share the face, so every frame of one is as likely in the other and
only the order of the two movements tells them apart.
"""

from __future__ import annotations

import numpy as np

from tdrag.data.synthetic.faces import EXPRESSION_PARAMS, GROUPS

#: Apex face per class: expression parameter -> value (unlisted parameters stay 0).
APEX: dict[str, dict[str, float]] = {
    "Happy": {"cheek": 1.0, "eye_open": -0.45, "mouth_curve": 1.0, "mouth_width": 0.45, "mouth_open": 0.35},
    "Sad": {"brow_inner_up": 1.2, "eye_open": -0.5, "mouth_curve": -1.2, "mouth_width": -0.15},
    "Neutral": {},
    "Angry": {"brow_lower": 1.0, "eye_open": -0.45, "lip_press": 1.0, "mouth_width": -0.25, "mouth_curve": -0.25},
    "Surprise": {"brow_raise": 1.0, "eye_open": 1.0, "mouth_open": 1.0, "mouth_width": -0.35},
    "Disgust": {"nose_wrinkle": 1.0, "upper_lip": 1.0, "brow_lower": 0.45, "eye_open": -0.6, "mouth_curve": -0.5},
    "Fear": {"brow_raise": 0.55, "brow_inner_up": 0.7, "eye_open": 0.9, "mouth_width": 1.0, "mouth_open": 0.35},
    # MAFW's four classes beyond the basic seven. Each has its own apex face (no two share the
    # same set of moving parameters) and its own schedule.
    # Contempt: a tight, closed half smile with a raised upper lip, no cheek raise, lifted brows.
    "Contempt": {"upper_lip": 0.6, "mouth_curve": 0.45, "lip_press": 0.5, "eye_open": -0.25, "brow_raise": 0.3},
    # Anxiety: worried brows (inner up and drawn together), pressed, stretched lips, wide eyes.
    "Anxiety": {"brow_inner_up": 0.9, "brow_lower": 0.4, "lip_press": 0.7, "mouth_width": 0.35, "eye_open": 0.3},
    # Helplessness: brows raised high in the middle, a slack, slightly open, down-turned mouth.
    "Helplessness": {"brow_inner_up": 1.0, "brow_raise": 0.5, "mouth_open": 0.3, "mouth_curve": -0.6, "eye_open": -0.2},
    # Disappointment: drooping lids and pressed, down-turned, narrowed lips.
    "Disappointment": {"brow_inner_up": 0.5, "eye_open": -0.7, "mouth_curve": -0.7, "lip_press": 0.6,
                       "mouth_width": -0.3},
}

#: Schedule per class: face part -> (start, duration), fractions of the expression phase.
TIMING: dict[str, dict[str, tuple[float, float]]] = {
    "Happy": {"mouth": (0.0, 0.45), "cheeks": (0.15, 0.45), "eyes": (0.2, 0.45)},
    "Sad": {"brows": (0.0, 0.8), "eyes": (0.1, 0.8), "mouth": (0.2, 0.8)},
    "Neutral": {},
    "Angry": {"brows": (0.0, 0.2), "eyes": (0.05, 0.25), "mouth": (0.55, 0.35), "nose": (0.55, 0.35)},
    "Surprise": {"brows": (0.0, 0.15), "eyes": (0.0, 0.15), "mouth": (0.0, 0.15)},
    "Disgust": {"nose": (0.0, 0.3), "mouth": (0.0, 0.3), "eyes": (0.35, 0.3), "brows": (0.6, 0.4)},
    "Fear": {"eyes": (0.0, 0.5), "brows": (0.2, 0.5), "mouth": (0.55, 0.45)},
    # Contempt: the mouth sets fast, the eyes and brows follow late.
    "Contempt": {"mouth": (0.0, 0.25), "eyes": (0.5, 0.3), "brows": (0.6, 0.3)},
    # Anxiety: slow and all together, the brows leading a little.
    "Anxiety": {"brows": (0.0, 0.9), "eyes": (0.05, 0.9), "mouth": (0.1, 0.9)},
    # Helplessness: the brows rise first, the mouth goes slack late and slowly.
    "Helplessness": {"brows": (0.0, 0.35), "eyes": (0.3, 0.4), "mouth": (0.45, 0.55)},
    # Disappointment: the mouth drops first, the lids droop last.
    "Disappointment": {"mouth": (0.0, 0.4), "brows": (0.3, 0.4), "eyes": (0.6, 0.4)},
}

#: Schedule entries may name a shape as a third item: "ramp" (the default: the part moves to its
#: apex and stays) or "pulse" (it moves to its apex and back to rest within the duration).
RAMP, PULSE = "ramp", "pulse"

#: The ``order`` preset's schedule: TIMING with Surprise and Fear as two pulses in swapped order
#: (the second starts after the first has ended, whatever the jitter, so no frame shows both). The
#: first starts at 0.1, not 0, so that the timing jitter is never clipped at 0 and both pulses
#: jitter alike.
ORDER_TIMING: dict[str, dict[str, tuple]] = {
    **TIMING,
    "Surprise": {"brows": (0.1, 1.0, PULSE), "eyes": (0.1, 1.0, PULSE), "mouth": (1.35, 1.0, PULSE)},
    "Fear": {"mouth": (0.1, 1.0, PULSE), "brows": (1.35, 1.0, PULSE), "eyes": (1.35, 1.0, PULSE)},
}

#: The timing tables a preset can choose (``SynthPreset.timing``).
TIMINGS: dict[str, dict[str, dict[str, tuple]]] = {"standard": TIMING, "order": ORDER_TIMING}

#: Under ``shared_apex`` these classes wear another class's apex face: only the dynamics differ.
SHARED_APEX: dict[str, str] = {"Fear": "Surprise", "Disgust": "Angry"}

#: The class whose face stays at rest; its signal regions are the expressive parts.
NEUTRAL = "Neutral"
NEUTRAL_GROUPS: tuple[str, ...] = ("brows", "eyes", "mouth")

#: Other datasets' names for the classes above (lower case): MAFW's nouns.
ALIASES: dict[str, str] = {"happiness": "Happy", "sadness": "Sad", "anger": "Angry"}


def expression_name(class_name: str) -> str:
    """The expression drawn for a dataset's class name (``"Happy"``, ``"happiness"``, ...).

    Raises:
        ValueError: no expression is defined for ``class_name``.
    """
    if class_name in APEX:
        return class_name
    key = str(class_name).strip().lower()
    for name in APEX:
        if name.lower() == key:
            return name
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"no synthetic expression for class {class_name!r} (known: {', '.join(APEX)})")


def apex_vector(class_name: str, shared_apex: bool = False) -> np.ndarray:
    """``(len(EXPRESSION_PARAMS),)`` apex face of ``class_name`` (another class's under ``shared_apex``)."""
    name = expression_name(class_name)
    if shared_apex:
        name = SHARED_APEX.get(name, name)
    vec = np.zeros(len(EXPRESSION_PARAMS))
    for param, value in APEX[name].items():
        vec[EXPRESSION_PARAMS.index(param)] = value
    return vec


def group_progress(class_name: str, x: np.ndarray, starts: np.ndarray, durations: np.ndarray,
                   timing: str = "standard") -> np.ndarray:
    """Progress 0..1 of each face part: ``x (N,)`` phase times -> ``(N, len(GROUPS))``.

    A ramp is a smoothstep from ``start`` to ``start + duration``; a pulse rises and falls back
    (half a sine) over the same span; parts the class does not move stay 0. ``timing`` names the
    table of ``TIMINGS``.
    """
    table = TIMINGS[timing][expression_name(class_name)]
    u = np.clip((x[:, None] - starts[None]) / durations[None], 0.0, 1.0)
    prog = u * u * (3 - 2 * u)
    pulse = np.array([len(table.get(g, ())) > 2 and table[g][2] == PULSE for g in GROUPS])
    if pulse.any():
        # Exactly 0 outside the span: sin(pi) is 1e-16, a trace that would tell which movement is over.
        bump = np.where((u > 0) & (u < 1), np.sin(np.pi * u), 0.0)
        prog = np.where(pulse[None], bump, prog)
    moving = np.array([g in table for g in GROUPS])
    return prog * moving[None]
