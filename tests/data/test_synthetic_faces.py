"""tdrag.data.synthetic.faces.face_geometry against coordinates worked out by hand from the face's
description (brows, frown lines, eyes, cheeks, mouth), on a 100-pixel canvas (1/16 pixel units)."""

from __future__ import annotations

import numpy as np

from tdrag.data.synthetic.faces import EXPRESSION_PARAMS, Identity, Look, face_geometry

SIZE = 100
IDENTITY = Identity(skin=(150.0, 170.0, 200.0), hair=(40.0, 44.0, 50.0), iris=(60.0, 80.0, 100.0),
                    background=((100.0, 100.0, 100.0), (120.0, 120.0, 120.0)), face_w=0.3, face_h=0.38,
                    eye_dx=0.12, eye_y=0.45, mouth_w=0.1, brow_thick=0.022)


def px(fraction: float) -> int:
    """A canvas fraction in OpenCV's 1/16 pixel units at SIZE."""
    return int(round(fraction * SIZE * 16))


def expression(**values: float) -> np.ndarray:
    row = np.zeros(len(EXPRESSION_PARAMS))
    for name, value in values.items():
        row[EXPRESSION_PARAMS.index(name)] = value
    return row


def test_neutral_and_moved_parts_land_where_described():
    e = np.stack([expression(), expression(brow_raise=1.0, brow_lower=0.5, cheek=1.0, eye_open=1.0, mouth_open=1.0)])
    geo = face_geometry(IDENTITY, e, SIZE, Look())
    left, right = 0, 1
    inner, outer = 0, 2
    # Brows at rest: inner points 0.045 either side of the midline at y 0.372 (eyes on y 0.45).
    assert geo.brows[0, left, inner].tolist() == [px(0.5 - 0.045), px(0.372)]
    assert geo.brows[0, right, outer].tolist() == [px(0.5 + 0.18), px(0.366)]
    # Raised by 0.055 (0.059 at the outer end), lowered brows pull the inner ends 0.022 per unit
    # together and down 0.05 per unit (the outer end up 0.012).
    assert geo.brows[1, left, inner].tolist() == [px(0.5 - 0.045 + 0.022 * 0.5), px(0.372 - 0.055 + 0.05 * 0.5)]
    assert geo.brows[1, right, inner].tolist() == [px(0.5 + 0.045 - 0.022 * 0.5), px(0.372 - 0.055 + 0.05 * 0.5)]
    assert geo.brows[1, right, outer].tolist() == [px(0.5 + 0.18), px(0.366 - 0.059 - 0.012 * 0.5)]
    # Frown lines: from 0.105 above the eye line (0.02 lower per unit of brow lowering), 0.055 long.
    assert geo.furrows[1, left, 0].tolist() == [px(0.5 - 0.022), px(0.45 - 0.105 + 0.02 * 0.5)]
    assert geo.furrows[1, right, 1].tolist() == [px(0.5 + 0.013), px(0.45 - 0.105 + 0.02 * 0.5 + 0.055)]
    # Eyes: half-height 0.027, opened by 0.8 per unit and squeezed 0.2 per unit of cheek raise.
    assert geo.eye_axes[:, 1].tolist() == [px(0.027), px(0.027 * (1 + 0.8 - 0.2))]
    assert geo.cheeks[1, right].tolist() == [px(0.665), px(0.6 - 0.025)]
    # Mouth (11 points, the middle one is index 5): the jaw drops 0.08, the upper lip lifts 0.2 of it.
    assert geo.mouth_lower[0, 5, 1] == px(0.69 + 0.005) and geo.mouth_lower[1, 5, 1] == px(0.69 + 0.005 + 0.08)
    assert geo.mouth_upper[1, 5, 1] == px(0.69 - 0.005 - 0.2 * 0.08)
    assert geo.mouth_upper[1, 0].tolist() == [px(0.5 - 0.1), px(0.69)]  # the corner: half-width 0.1 from the centre


def test_bold_look_draws_frown_lines_only_for_lowered_brows():
    e = np.stack([expression(brow_lower=0.5), expression(brow_lower=2.0), expression(brow_raise=1.0)])
    assert face_geometry(IDENTITY, e, SIZE, Look(bold=True)).furrow.tolist() == [0.5, 1.0, 0.0]
    assert face_geometry(IDENTITY, e, SIZE, Look()).furrow.tolist() == [0.0, 0.0, 0.0]
