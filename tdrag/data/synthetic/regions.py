"""Facial-region label maps of the synthetic faces: which part of the picture each pixel shows.

Beside the union mask of the parts that carry a clip's class signal, the renderer draws one label
map per frame over the same picture: each pixel holds the index in :data:`REGIONS` of what it
shows.

===  ============  ==========================================================================
  0  outside       background, hair, ears: anything that is not the face
  1  face          face skin outside the five parts (forehead, temples, chin, jaw)
  2  brows         the five parts of ``tdrag.data.synthetic.faces.GROUPS``, each the region its
  3  eyes          union mask uses: an ellipse with a margin around the part where it is in the
  4  cheeks        frame and where it was at rest (frown lines belong to the brows)
  5  nose
  6  mouth
  7  occluder      a hand or an object in front of the face
  8  distractor    a person moving in the background
===  ============  ==========================================================================

Where two parts' regions overlap, the one later in :data:`PAINT_ORDER` keeps the pixel. The eyes
come last: every class whose brows carry signal moves its eyes too, while Happy moves its eyes and
not its brows, so the strip where the eyes' margin meets the brows belongs to the eyes.
Occluders cover the face and distractors cover everything, as in the frame. So for every part
that carries the class signal in a frame, the pixels labelled with it lie inside that frame's
union mask.

Drawing the labels uses no random numbers and draws nothing into the frames or the union masks:
a data set's frames and masks are the same bytes with or without them.
"""

from __future__ import annotations

import numpy as np

from tdrag.data.synthetic.faces import GROUPS, FaceGeometry, Identity, draw_face_area, draw_part_masks

#: Region names; a label map's value is the index in this tuple.
REGIONS: tuple[str, ...] = ("outside", "face", *GROUPS, "occluder", "distractor")
OUTSIDE = REGIONS.index("outside")
FACE = REGIONS.index("face")
OCCLUDER = REGIONS.index("occluder")
DISTRACTOR = REGIONS.index("distractor")
#: Label of each face part.
PART_LABEL: dict[str, int] = {group: REGIONS.index(group) for group in GROUPS}
#: Parts drawn first lose overlapping pixels to parts drawn later.
PAINT_ORDER: tuple[str, ...] = ("cheeks", "nose", "mouth", "brows", "eyes")


def draw_face_regions(labels: np.ndarray, identity: Identity, geo: FaceGeometry, rest: FaceGeometry, s: int) -> None:
    """Fill ``labels (S, S) uint8`` (the canonical canvas, before the pose) in place with step ``s``'s
    regions: outside, the face ellipse, then each part where it is (``geo``) and at rest (``rest``)."""
    labels[:] = OUTSIDE
    draw_face_area(labels, identity, FACE)
    for group in PAINT_ORDER:
        draw_part_masks(labels, geo, s, (group,), value=PART_LABEL[group])
        draw_part_masks(labels, rest, 0, (group,), value=PART_LABEL[group])
