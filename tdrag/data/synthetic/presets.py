"""Difficulty presets of the synthetic data set: which nuisances, how strong, how boldly drawn.

A ``SynthPreset`` holds every knob of ``tdrag.data.synthetic.clips`` (clip length, held runs,
pose, lighting, noise, blur, occluders, expression timing) and of the face drawing
(``tdrag.data.synthetic.faces.Look``). ``PRESETS`` names the ladder ``tdrag synth --preset``
offers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tdrag.data.synthetic.faces import Look


@dataclass(frozen=True)
class SynthPreset:
    """Nuisance and difficulty settings of a synthetic data set."""

    name: str
    length: tuple[int, int] = (24, 96)  # clip length range (frames), inclusive
    hold_prob: float = 0.1  # chance that a held run (repeated identical frames) starts at a frame
    hold_run: int = 3  # longest held run, in extra frames
    shift: float = 0.03  # largest face shift, fraction of the frame side
    rotation: float = 5.0  # largest in-plane rotation, degrees
    scale: tuple[float, float] = (0.95, 1.05)
    pose_drift: float = 0.3  # how far (fraction of the ranges above) the pose wanders over a clip
    light: float = 0.1  # lighting gradient: gain runs over 1 +- light across the frame
    flicker: float = 0.0  # per-frame brightness jitter (std of the gain)
    noise: tuple[float, float] = (1.0, 3.0)  # pixel noise std range, grey levels
    blur_prob: float = 0.1  # chance a clip is blurred
    blur_sigma: tuple[float, float] = (0.4, 0.8)
    occlusion_prob: float = 0.1  # chance a clip has occluder runs
    occlusion_events: int = 1  # occluder runs per occluded clip (at most)
    occlusion_frames: tuple[float, float] = (0.1, 0.2)  # fraction of the frames each run covers
    occlude_signal: bool = False  # whether occluders may sit over the parts that carry the class
    intensity: tuple[float, float] = (0.85, 1.0)  # apex strength
    onset: tuple[float, float] = (0.08, 0.2)  # when the expression starts, fraction of the clip
    phase: tuple[float, float] = (0.55, 0.65)  # how long the expression takes, fraction of the clip
    timing_jitter: float = 0.03  # random shift of each part's start, fraction of the phase
    offset_prob: float = 0.0  # chance that the expression relaxes after its apex
    offset_depth: float = 0.4  # how far it relaxes (fraction of the apex strength lost)
    offset_time: float = 0.0  # how fast, fraction of the clip (0: gradually until the clip's end)
    blink_prob: float = 0.0  # chance a clip has blinks
    shared_apex: bool = False  # Fear/Surprise and Disgust/Angry share apex faces (dynamics only)
    timing: str = "standard"  # the classes' schedules (expressions.TIMINGS; "order": an order-only pair)
    distractor_prob: float = 0.0  # chance a clip has moving distractors away from the face's signal
    distractors: int = 0  # distractors per such clip (at most)
    # How boldly the face is drawn and how much its appearance varies (see ``Look``).
    zoom: float = 1.12  # face size in the frame (the canonical face is drawn small, with room for hair)
    motion_scale: float = 1.0  # drawn movement per unit of expression
    eye_scale: float = 1.0  # eye size
    line_scale: float = 1.0  # stroke widths relative to the fine look
    min_line: int = 1  # thinnest stroke, pixels
    bold: bool = False  # high-contrast brows, lips, mouth and teeth; frown lines; pressed lips as a dark bar
    skin_range: tuple[float, float] = (0.0, 1.0)  # part of the dark..light skin tone range
    background_range: tuple[float, float] = (30.0, 230.0)  # background colour channel range
    background_ramp: float = 1.0  # background gradient strength (0: one plain colour)

    @property
    def look(self) -> Look:
        """The drawing settings of this preset."""
        return Look(self.motion_scale, self.eye_scale, self.line_scale, self.min_line, self.bold, self.skin_range,
                    self.background_range, self.background_ramp)


PRESETS: dict[str, SynthPreset] = {
    # A tiny model must learn `easy` on a CPU in minutes from 48-64 pixel frames: the features are
    # drawn large, thick and dark and move far; the faces vary little in pose, tone and background.
    "easy": SynthPreset(
        name="easy",
        shift=0.02,
        rotation=0.0,
        scale=(0.97, 1.03),
        pose_drift=0.1,
        light=0.05,
        noise=(1.0, 2.0),
        blur_prob=0.0,
        occlusion_prob=0.05,
        intensity=(0.9, 1.0),
        # Early, quick expressions: most keyframes show the apex face (the timing still differs).
        onset=(0.05, 0.12),
        phase=(0.4, 0.5),
        zoom=1.25,
        motion_scale=1.6,
        eye_scale=1.3,
        line_scale=1.3,
        min_line=2,
        bold=True,
        skin_range=(0.45, 0.8),
        background_range=(90.0, 170.0),
        background_ramp=0.2,
    ),
    # The CPU benchmark (configs/synthetic_medium.yaml, benchmarks/bench_ablation.py): drawn as
    # boldly as `easy` so a small model can learn it from 64 px frames, with one nuisance per part
    # of TDRAG, each one DFEW's clips have:
    # - spatial attention: people moving and talking beside or behind the subject
    #   (distractors), hands and objects passing over the face (occluders, also over the
    #   signal), head pose changing during the clip;
    # - the GRU: Fear/Surprise and Disgust/Angry share their apex face (shared_apex), so only
    #   onset order and speed tell them apart;
    # - redundancy keyframes: long held runs (frozen or duplicated frames of re-encoded video)
    #   and a brief apex that relaxes soon after (micro-expression-like peaks), which uniform
    #   sampling tends to miss.
    # Difficulty was set once, by r3d18's test WAR at the benchmark recipe (aim 0.45-0.70,
    # benchmarks/RESULTS.md), never by TDRAG's.
    "medium": SynthPreset(
        name="medium",
        length=(32, 96),
        hold_prob=0.2,
        hold_run=10,
        shift=0.06,
        rotation=12.0,
        scale=(0.9, 1.1),
        pose_drift=0.5,
        light=0.2,
        flicker=0.03,
        noise=(4.0, 9.0),
        blur_prob=0.3,
        blur_sigma=(0.5, 1.1),
        occlusion_prob=0.6,
        occlusion_events=2,
        occlusion_frames=(0.15, 0.35),
        occlude_signal=True,
        intensity=(0.3, 0.8),
        onset=(0.05, 0.5),
        phase=(0.2, 0.4),
        timing_jitter=0.06,
        offset_prob=0.7,
        offset_depth=0.7,
        offset_time=0.1,
        blink_prob=0.4,
        shared_apex=True,
        distractor_prob=0.8,
        distractors=3,
        zoom=1.15,
        motion_scale=1.0,
        eye_scale=1.2,
        line_scale=1.1,
        min_line=2,
        bold=True,
        skin_range=(0.2, 1.0),
        background_range=(40.0, 220.0),
        background_ramp=0.7,
    ),
    # GPU scale (about 10k clips at 112 px): medium's nuisances, stronger, on the fine look (thin
    # strokes, the full range of skin tones and backgrounds). What a GPU run should reach is not
    # measured yet (benchmarks/RESULTS.md).
    "hard": SynthPreset(
        name="hard",
        hold_prob=0.25,
        hold_run=6,
        shift=0.08,
        rotation=15.0,
        scale=(0.85, 1.12),
        pose_drift=0.6,
        light=0.3,
        flicker=0.04,
        noise=(3.0, 8.0),
        blur_prob=0.35,
        blur_sigma=(0.5, 1.4),
        occlusion_prob=0.5,
        occlusion_events=2,
        occlusion_frames=(0.15, 0.35),
        occlude_signal=True,
        intensity=(0.45, 1.0),
        onset=(0.05, 0.3),
        phase=(0.45, 0.65),
        timing_jitter=0.06,
        offset_prob=0.4,
        blink_prob=0.5,
        shared_apex=True,
        distractor_prob=0.8,
        distractors=3,
        offset_depth=0.7,
        offset_time=0.1,
    ),
}

# The rung where order alone decides (configs/synthetic_order.yaml): medium's nuisances and
# classes, with Surprise and Fear made an order-only pair (expressions.ORDER_TIMING: the same two
# brief movements, upper face and mouth, in swapped order, on one shared face), so an unordered
# bag of keyframes cannot tell them apart and a temporal head has a job of its own. Each movement
# takes about 0.3 of the clip, so both fit in every clip (a cut-off second movement would let the
# bag tell the classes apart), and the pair is centred in the clip with an onset spread wider
# than the gap between two of 8 keyframes: a first movement that always started at the same place
# relative to the keyframes (onset 0.03-0.1) was sampled differently from the second, which let
# the bag reach 63 % at redundancy T = 8 (benchmarks/RESULTS.md, "Time, checked").
PRESETS["order"] = replace(PRESETS["medium"], name="order", timing="order", onset=(0.06, 0.2), phase=(0.27, 0.31))
