"""Keyframe selection on constructed clips: duplicates, static, short, apex, determinism, contract,
and each redundancy rule's own property (time covered; keyframes crowding where the clip changes)."""

from __future__ import annotations

import numpy as np
import pytest

from tdrag.data.keyframes import (
    KEYFRAME_METHODS,
    KEYFRAME_RULES,
    greedy_redundancy_keyframes,
    redundancy_keyframes,
    select_keyframes,
    uniform_indices,
)

#: Both redundancy rules share the coefficient, the candidates, the apex and the special cases.
RULES = pytest.mark.parametrize("rule", [redundancy_keyframes, greedy_redundancy_keyframes],
                                ids=["stretches", "greedy"])

SIZE = 48


def _texture(seed: int, size: int = SIZE) -> np.ndarray:
    """A smooth random RGB background: (size, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (6, 6, 3)).astype(np.float64)
    rows = np.linspace(0, 5, size)
    r0 = np.floor(rows).astype(int).clip(0, 4)
    t = (rows - r0)[:, None, None]
    rows_i = coarse[r0] * (1 - t) + coarse[r0 + 1] * t  # (size, 6, 3)
    c = (rows - r0)[None, :, None]
    img = rows_i[:, r0] * (1 - c) + rows_i[:, r0 + 1] * c
    return img.astype(np.uint8)


def _moving_square_clip(positions: list[float], seed: int = 0) -> np.ndarray:
    """A clip whose only content change is a bright square at horizontal ``positions``: (L, S, S, 3)."""
    base = _texture(seed)
    frames = np.repeat(base[None], len(positions), axis=0)
    for i, x in enumerate(positions):
        x0 = int(round(x))
        frames[i, 16:28, x0 : x0 + 10] = 250
    return frames


def _check_contract(idx: np.ndarray, length: int, num: int) -> None:
    assert idx.dtype == np.int64
    assert idx.shape == (num,)
    assert np.all(np.diff(idx) >= 0), idx
    assert idx.min() >= 0 and idx.max() < length
    if length >= num:
        assert len(np.unique(idx)) == num, idx


def test_uniform_indices_contract_and_values():
    assert uniform_indices(16, 16).tolist() == list(range(16))
    assert uniform_indices(32, 4).tolist() == [4, 12, 20, 28]
    short = uniform_indices(3, 7)
    _check_contract(short, 3, 7)
    assert set(short.tolist()) == {0, 1, 2}
    for length in range(1, 120):
        for num in (1, 5, 16):
            _check_contract(uniform_indices(length, num), length, num)


@pytest.mark.parametrize("length,num", [(0, 4), (4, 0), (-1, 3)])
def test_uniform_indices_rejects_bad_sizes(length, num):
    with pytest.raises(ValueError):
        uniform_indices(length, num)


@RULES
def test_redundancy_contract_for_many_random_lengths(rule):
    rng = np.random.default_rng(1)
    for trial in range(40):
        length = int(rng.integers(1, 120))
        num = int(rng.choice([1, 2, 8, 16]))
        positions = list(np.cumsum(rng.uniform(0, 0.5, length)) % 30)
        clip = _moving_square_clip(positions, seed=trial)
        # Held runs: repeat some frames verbatim.
        hold = np.repeat(np.arange(length), rng.integers(1, 3, length))[:length]
        clip = clip[hold]
        idx = rule(clip, num)
        _check_contract(idx, length, num)


@RULES
def test_duplicates_never_chosen_while_distinct_frames_remain(rule):
    distinct = _moving_square_clip([float(i) for i in range(24)])
    runs = np.random.default_rng(0).integers(1, 6, 24)
    clip = np.repeat(distinct, runs, axis=0)  # held runs of 1..5 identical frames
    for num in (4, 16, 24):
        idx = rule(clip, num)
        _check_contract(idx, len(clip), num)
        contents = {clip[i].tobytes() for i in idx}
        assert len(contents) == num, f"duplicate frame chosen with num={num}"


@RULES
def test_fewer_distinct_frames_than_t_keeps_all_of_them(rule):
    distinct = _moving_square_clip([0.0, 8.0, 16.0, 24.0, 30.0])
    clip = np.repeat(distinct, 6, axis=0)  # 30 frames, 5 distinct
    idx = rule(clip, 16)
    _check_contract(idx, 30, 16)
    assert {clip[i].tobytes() for i in idx} == {d.tobytes() for d in distinct}


@RULES
def test_static_clip_falls_back_to_uniform(rule):
    clip = np.repeat(_texture(3)[None], 40, axis=0)
    assert rule(clip, 16).tolist() == uniform_indices(40, 16).tolist()


@RULES
def test_brightness_flicker_alone_counts_as_static(rule):
    base = _texture(4).astype(np.float64)
    gains = 1.0 + 0.1 * np.sin(np.arange(40))
    clip = np.stack([np.clip(base * g, 0, 255) for g in gains]).astype(np.uint8)
    assert rule(clip, 8).tolist() == uniform_indices(40, 8).tolist()


@RULES
def test_clip_shorter_than_t_repeats_every_frame_in_order(rule):
    clip = _moving_square_clip([0.0, 5.0, 10.0, 15.0, 20.0])
    idx = rule(clip, 16)
    _check_contract(idx, 5, 16)
    assert set(idx.tolist()) == set(range(5))


@RULES
def test_clear_apex_is_kept(rule):
    # Slow drift, one frame far away (the apex), then back: the apex must survive at any T.
    positions = [float(i) * 0.05 for i in range(60)]
    positions[37] = 30.0
    clip = _moving_square_clip(positions)
    for num in (1, 2, 4, 16):
        idx = rule(clip, num)
        _check_contract(idx, 60, num)
        assert 37 in idx.tolist(), (num, idx)


def test_greedy_keyframes_crowd_where_the_clip_changes():
    # First half: still. Second half: the square moves one pixel per frame.
    positions = [0.0] * 40 + [float(i) for i in range(1, 31)]
    clip = _moving_square_clip(positions)
    noise = np.random.default_rng(5).integers(-2, 3, clip.shape)
    clip = np.clip(clip.astype(int) + noise, 0, 255).astype(np.uint8)  # still frames differ by noise
    idx = greedy_redundancy_keyframes(clip, 16)
    _check_contract(idx, 70, 16)
    assert (idx >= 40).sum() >= 12, idx
    assert (uniform_indices(70, 16) >= 40).sum() < 12  # the uniform baseline does not


@RULES
def test_deterministic_and_input_untouched(rule):
    rng = np.random.default_rng(7)
    clip = _moving_square_clip(list(rng.uniform(0, 30, 50)))
    before = clip.copy()
    a = rule(clip, 16)
    b = rule(clip.copy(), 16)
    assert a.tolist() == b.tolist()
    assert np.array_equal(clip, before)


@RULES
def test_grey_input_selects_exactly_what_the_rgb_clip_selects(rule):
    import cv2

    rng = np.random.default_rng(11)
    for trial in range(4):
        positions = list(rng.uniform(0, 30, 40))
        positions[int(rng.integers(5, 35))] = 36.0  # an apex
        clip = _moving_square_clip(positions, seed=trial)
        noise = rng.integers(-3, 4, clip.shape)
        clip = np.clip(clip.astype(int) + noise, 0, 255).astype(np.uint8)
        # The selector converts RGB with BT.601 weights (cv2.COLOR_RGB2GRAY): the same grey clip
        # given directly must give the same keyframes, for every T.
        grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip])
        for num in (1, 4, 8, 16):
            rgb_idx, grey_idx = rule(clip, num), rule(grey, num)
            _check_contract(grey_idx, 40, num)
            assert rgb_idx.tolist() == grey_idx.tolist(), (trial, num)


@RULES
@pytest.mark.parametrize("flat_value", [0, 255, 128])
def test_a_flat_or_black_frame_is_never_the_apex(flat_value, rule):
    # A small, real expression change at frame 30 and a blank frame (a fade, a dropped signal) at 12.
    positions = [0.0] * 40
    positions[30] = 6.0
    clip = _moving_square_clip(positions)
    clip[12] = flat_value
    idx = rule(clip, 1)
    assert idx.tolist() == [30], idx
    # With more keyframes the real apex stays in; the blank frame may be kept as content, not as apex.
    assert 30 in rule(clip, 4).tolist()


@RULES
def test_a_fade_in_uses_the_first_informative_frame_as_reference(rule):
    positions = [0.0] * 30
    positions[20] = 8.0
    clip = _moving_square_clip(positions)
    clip[:3] = 0  # three black frames before the picture appears
    assert rule(clip, 1).tolist() == [20]


def test_one_keyframe_per_stretch_of_time():
    # Every frame distinct (noise): each of the T equal stretches [kL/T, (k+1)L/T) holds exactly
    # one keyframe, wherever the picture changes; the greedy rule leaves the still half nearly bare.
    positions = [0.0] * 40 + [float(i) for i in range(1, 31)]
    clip = _moving_square_clip(positions)
    noise = np.random.default_rng(5).integers(-2, 3, clip.shape)
    clip = np.clip(clip.astype(int) + noise, 0, 255).astype(np.uint8)
    for num in (4, 8, 16):
        idx = redundancy_keyframes(clip, num)
        _check_contract(idx, 70, num)
        bounds = [k * 70 // num for k in range(num + 1)]  # stretch k is frames bounds[k] .. bounds[k+1]-1
        assert all(bounds[k] <= i < bounds[k + 1] for k, i in enumerate(idx.tolist())), (num, idx)
    assert (greedy_redundancy_keyframes(clip, 16) < 40).sum() <= 4


def test_each_stretch_keeps_its_frame_least_redundant_with_the_previous_keyframe():
    # 4 frames per stretch, T = 3. Stretch 0 keeps frame 0; in stretch 1 frame 6 moved farthest
    # from it; stretch 2 holds the apex (frame 10, farthest from frame 0), which it keeps.
    positions = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 9.0, 3.0, 3.5, 4.0, 20.0, 4.5]
    clip = _moving_square_clip(positions)
    assert redundancy_keyframes(clip, 3).tolist() == [0, 6, 10]
    # Without the apex, stretch 2 keeps the frame least like frame 6 (the square at 9 px).
    positions[10] = 4.2
    clip = _moving_square_clip(positions)
    assert redundancy_keyframes(clip, 3).tolist() == [0, 6, 8]


def test_a_stretch_inside_a_held_run_takes_the_free_distinct_frame_nearest_its_centre():
    # 8 distinct frames; frame 2 is held for 24 frames, so stretches 1-4 of T = 8 (32 frames)
    # have no distinct frame of their own and borrow the unchosen ones nearest their centres.
    distinct = _moving_square_clip([0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 21.0])
    clip = np.concatenate([distinct[:2], np.repeat(distinct[2:3], 24, axis=0), distinct[3:]])
    idx = redundancy_keyframes(clip, 8)
    _check_contract(idx, 32, 8)
    assert {clip[i].tobytes() for i in idx} == {d.tobytes() for d in distinct}


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="uint8"):
        redundancy_keyframes(np.zeros((5, 8, 8, 3), np.float32), 4)
    with pytest.raises(ValueError, match="shape"):
        redundancy_keyframes(np.zeros((5, 8), np.uint8), 4)
    with pytest.raises(ValueError, match="'magic'"):
        select_keyframes(np.zeros((5, 8, 8, 3), np.uint8), 4, "magic")


def test_select_keyframes_dispatches():
    clip = _moving_square_clip([float(i) for i in range(30)])
    assert set(KEYFRAME_METHODS) == {"redundancy", "uniform", "redundancy_greedy"} == set(KEYFRAME_RULES)
    assert select_keyframes(clip, 8, "uniform").tolist() == uniform_indices(30, 8).tolist()
    assert select_keyframes(clip, 8, "redundancy").tolist() == redundancy_keyframes(clip, 8).tolist()
    assert select_keyframes(clip, 8, "redundancy_greedy").tolist() == greedy_redundancy_keyframes(clip, 8).tolist()
