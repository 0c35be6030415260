"""Keyframe selection: by redundancy coefficient (TDRAG's choice) or uniform sampling.

Every selector takes a clip of ``L`` frames and returns exactly ``T`` frame indices, ``int64``,
sorted, in ``0..L-1``; indices repeat only when the clip has fewer than ``T`` frames.

The TDRAG paper (Liu et al., 2024) chooses keyframes "by redundancy coefficients" but only its
abstract is public, so the coefficient and the selection rules below are our definitions:

- ``redundancy`` (:func:`redundancy_keyframes`): one keyframe per equal stretch of time, in each
  the frame least redundant with the keyframe before it (the apex always kept);
- ``redundancy_greedy`` (:func:`greedy_redundancy_keyframes`): tdrag's first rule, a global
  threshold that drops the most redundant frame until ``T`` remain. On the ``medium`` benchmark
  it left long stretches of the clip without a keyframe and followed pose drift (the keyframe
  analysis in benchmarks/RESULTS.md); kept to reproduce the figures made with it;
- ``uniform`` (:func:`uniform_indices`): evenly spaced frames.

:data:`KEYFRAME_RULES` versions each rule: a cache records the version it was built with, so a
cache of an older definition is refused instead of silently mixed with new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Methods accepted by :func:`select_keyframes` (and ``tdrag prepare --keyframes``).
KEYFRAME_METHODS: tuple[str, ...] = ("redundancy", "uniform", "redundancy_greedy")

#: Version of each method's definition, recorded in a cache's manifest. ``redundancy`` was the
#: greedy rule (version 1, no version recorded) until the rule of stretches replaced it (version 2).
KEYFRAME_RULES: dict[str, int] = {"redundancy": 2, "uniform": 1, "redundancy_greedy": 1}


def _check_sizes(length: int, num: int) -> None:
    if int(length) < 1:
        raise ValueError(f"a clip needs at least 1 frame to sample keyframes from, got {length}")
    if int(num) < 1:
        raise ValueError(f"the number of keyframes must be at least 1, got {num}")


def uniform_indices(length: int, num: int) -> np.ndarray:
    """``num`` evenly spaced frame indices of a clip of ``length`` frames.

    Index ``i`` is the frame under the centre of the ``i``-th of ``num`` equal segments:
    ``floor((2 i + 1) * length / (2 num))``, computed in integers. For ``length >= num`` the
    indices are strictly increasing (segments are at least one frame wide); for
    ``length < num`` every frame appears at least once and some repeat.

    Returns:
        ``(num,)`` int64, sorted, in ``0..length-1``.
    """
    _check_sizes(length, num)
    i = np.arange(int(num), dtype=np.int64)
    return (2 * i + 1) * int(length) // (2 * int(num))


def _grey_features(frames: np.ndarray, grid: int) -> np.ndarray:
    """Grey, block-averaged thumbnails: ``frames (L, H, W[, 3]) uint8 -> (L, h, w) uint8``.

    Each thumbnail pixel is the mean of a ``b x b`` block with ``b = max(1, min(H, W) // grid)``
    (rows/columns beyond a whole block are cropped). All frames are stacked into one tall image
    so that OpenCV converts and resizes the clip in two calls: ``INTER_AREA`` with an integer
    factor is an exact block mean, so no block straddles two frames.
    """
    import cv2  # local import: numpy-only users of uniform_indices need no OpenCV

    length, height, width = frames.shape[:3]
    if frames.ndim == 4:
        src, code = frames, cv2.COLOR_RGB2GRAY
        if not frames.flags.c_contiguous and frames[..., ::-1].flags.c_contiguous:
            # A BGR array seen as RGB through a reversed view: convert from BGR, copying nothing.
            src, code = frames[..., ::-1], cv2.COLOR_BGR2GRAY
        src = np.ascontiguousarray(src).reshape(length * height, width, 3)
        grey = cv2.cvtColor(src, code).reshape(length, height, width)
    else:
        grey = frames
    block = max(1, min(height, width) // max(1, int(grid)))
    h, w = height // block, width // block
    x = np.ascontiguousarray(grey[:, : h * block, : w * block]).reshape(length * h * block, w * block)
    if block > 1:
        x = cv2.resize(x, (w, length * h), interpolation=cv2.INTER_AREA)
    return x.reshape(length, h, w)


def _first_occurrences(frames: np.ndarray, thumbs: np.ndarray) -> np.ndarray:
    """Index of the first frame of each distinct frame content, ascending.

    Held (repeated) frames are exact copies, so their thumbnails are byte-identical: thumbnails
    serve as hash keys and a full-frame comparison confirms each candidate duplicate.
    """
    seen: dict[bytes, list[int]] = {}
    firsts: list[int] = []
    for i in range(thumbs.shape[0]):
        reps = seen.setdefault(thumbs[i].tobytes(), [])
        if not any(np.array_equal(frames[i], frames[j]) for j in reps):
            reps.append(i)
            firsts.append(i)
    return np.asarray(firsts, dtype=np.int64)


class _Correlator:
    """Pearson correlation between thumbnails, computed only for the pairs asked for.

    ``thumbs: (U, h, w)``. Rows are centred and scaled to unit norm once, so a coefficient is a
    dot product. Only O(U) pairs are ever needed (each frame with the first frame, and each kept
    frame with its preceding keyframe), so no U x U matrix is built: small matrix products go
    through multi-threaded BLAS, which on a busy 2-core machine costs more than the whole rest.
    A flat thumbnail (zero variance) has no defined correlation: it counts as identical (1) to a
    flat thumbnail of the same mean grey level and as unrelated (0) to anything else.
    """

    def __init__(self, thumbs: np.ndarray) -> None:
        x = thumbs.reshape(thumbs.shape[0], -1).astype(np.float64)
        self.means = x.mean(axis=1)
        x -= self.means[:, None]
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        #: (U,) grey-level standard deviation of each thumbnail.
        self.std = norms / np.sqrt(max(1, x.shape[1]))
        self.flat = norms < 1e-9
        self.z = x / np.where(self.flat, 1.0, norms)[:, None]

    def __call__(self, i: np.ndarray | int, j: np.ndarray | int) -> np.ndarray:
        """``rho(i, j)`` elementwise over broadcast index arrays."""
        i, j = np.broadcast_arrays(np.asarray(i), np.asarray(j))
        corr = np.clip(np.einsum("...k,...k->...", self.z[i], self.z[j]), -1.0, 1.0)
        both_flat = self.flat[i] & self.flat[j]
        if both_flat.any():
            same_level = np.abs(self.means[i] - self.means[j]) < 0.5
            corr = np.where(both_flat, same_level.astype(np.float64), corr)
        return corr

    def pair(self, i: int, j: int) -> float:
        """``rho(i, j)`` for two scalar indices, without array overhead (the selection loop)."""
        if self.flat[i] or self.flat[j]:
            return float(self(i, j))
        return float(np.dot(self.z[i], self.z[j]))


def _fill_uniform(chosen: np.ndarray, length: int, num: int) -> np.ndarray:
    """Add ``num - len(chosen)`` of the unchosen indices of ``0..length-1``, evenly spaced."""
    rest = np.setdiff1d(np.arange(length, dtype=np.int64), chosen)
    extra = rest[uniform_indices(len(rest), num - len(chosen))]
    return np.sort(np.concatenate([chosen, extra]))


@dataclass(frozen=True)
class _Candidates:
    """The distinct frames of a clip and their coefficients, shared by both redundancy rules.

    ``frames[cand]`` are the first occurrences of the ``U = len(cand)`` distinct frame contents;
    ``rho`` correlates their thumbnails (positions ``0..U-1`` in ``cand``); ``apex`` is the
    position of the most expressive one.
    """

    cand: np.ndarray
    rho: _Correlator
    apex: int


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ValueError(f"frames must be (L, H, W, 3) RGB or (L, H, W) grey, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


def _candidates(frames: np.ndarray, num: int, grid: int, static_tol: float,
                flat_tol: float) -> np.ndarray | _Candidates:
    """Steps both rules share: the special cases (returned as final indices), else the candidates.

    A static clip's frames all correlate above ``1 - static_tol`` with the reference frame, so any
    two correlate above ``1 - 4 static_tol``. With ``U < T`` a duplicate is chosen only once no
    distinct frame remains; ``U = T`` keeps the distinct frames.
    """
    frames = _check_frames(frames)
    length = int(frames.shape[0])
    _check_sizes(length, num)
    if length < num:
        return uniform_indices(length, num)
    thumbs = _grey_features(frames, grid)
    cand = _first_occurrences(frames, thumbs)
    n_distinct = len(cand)
    if n_distinct == 1:
        return uniform_indices(length, num)
    if n_distinct < num:
        return _fill_uniform(cand, length, num)
    rho = _Correlator(thumbs[cand])
    positions = np.arange(n_distinct)
    informative = rho.std >= flat_tol
    ref = int(np.argmax(informative)) if informative.any() else 0
    to_ref = rho(ref, positions)  # similarity of every candidate to the reference frame
    if to_ref.min() >= 1.0 - static_tol:
        return cand[uniform_indices(n_distinct, num)]
    # flat frames are no apex while others remain
    apex = int(np.argmin(np.where(informative, to_ref, np.inf))) if informative.any() else int(np.argmin(to_ref))
    if num == 1:
        return cand[[apex]]
    if n_distinct == num:
        return cand
    return _Candidates(cand, rho, apex)


def redundancy_keyframes(
    frames: np.ndarray,
    num: int,
    *,
    grid: int = 32,
    static_tol: float = 1e-3,
    flat_tol: float = 2.0,
) -> np.ndarray:
    """Choose ``num`` keyframes of a clip by redundancy coefficient, one per stretch of time.

    Args:
        frames: ``(L, H, W, 3)`` uint8 RGB or ``(L, H, W)`` uint8 grey.
        num: ``T``, the number of keyframes.
        grid: thumbnail size the coefficient is computed on (about ``grid x grid``).
        static_tol: a clip whose frames all correlate above ``1 - static_tol`` with its
            reference frame is static (uniform fallback).
        flat_tol: a thumbnail whose grey levels vary by less than this standard deviation is
            *flat* (a black, white or blank frame: a fade, a dropped signal, a lens cap).

    Returns:
        ``(T,)`` int64 frame indices, sorted, in ``0..L-1``; deterministic.

    Redundancy coefficient. Each frame is reduced to a grey (BT.601) thumbnail ``g_i`` of about
    ``grid x grid`` block means (this averages out pixel noise and JPEG artefacts). The
    coefficient of frames ``i`` and ``j`` is the Pearson correlation of their thumbnails::

        rho(i, j) = <g_i - mean(g_i), g_j - mean(g_j)> / (||g_i - mean(g_i)|| ||g_j - mean(g_j)||)

    which ignores global brightness and contrast changes (lighting flicker is not new content).
    A frame is redundant with a keyframe in proportion to ``rho`` with it.

    Selection, in order:

    1. Exact duplicates (held frames) are collapsed to their first occurrence; the ``U`` distinct
       frames are the candidates.
    2. The apex is the frame most changed from the reference (``argmin_i rho(ref, i)`` over the
       frames that are not flat, the earliest on ties); the reference is the first frame that
       is not flat. A flat frame has no expression to show and correlates with nothing, so it
       would otherwise look "most changed": it is never the apex (unless every frame is flat).
    3. The clip is cut into ``T`` equal stretches of time, frames ``[k L / T, (k + 1) L / T)``.
       Going forward, each stretch gives one keyframe: the apex in its own stretch, otherwise
       the first distinct frame for the first stretch, and for every later one its distinct
       frame least redundant with the keyframe chosen before it (lowest ``rho``; the earliest
       on ties). A stretch with no distinct frame of its own (inside a long held run) takes the
       unchosen distinct frame nearest its centre.

    Why stretches: a global threshold (:func:`greedy_redundancy_keyframes`) lets keyframes crowd
    wherever the picture changes, which in real video is as often pose drift, camera motion or
    an occluder as the expression, and leaves the onset or the offset without a keyframe; one
    keyframe per stretch keeps time covered, as the temporal model needs, while the coefficient
    still drops the frames that repeat what the last keyframe showed.

    Special cases (shared with :func:`greedy_redundancy_keyframes`): ``L < T`` gives
    :func:`uniform_indices` (every frame, some repeated); a static clip (all frames identical, or
    all correlating above ``1 - static_tol`` with the reference) gives uniform sampling, over the
    distinct frames when there are at least ``T``; ``U < T`` keeps every distinct frame and fills
    the rest with evenly spaced repeats; ``T = 1`` gives the apex.
    """
    found = _candidates(frames, num, grid, static_tol, flat_tol)
    if not isinstance(found, _Candidates):
        return found
    cand, rho, apex = found.cand, found.rho, found.apex
    length, num = int(np.asarray(frames).shape[0]), int(num)
    bounds = np.arange(num + 1, dtype=np.int64) * length // num
    stretch_of = np.searchsorted(bounds, cand, side="right") - 1  # (U,) stretch of each candidate
    used = np.zeros(len(cand), dtype=bool)
    used[apex] = True
    chosen: list[int] = []
    for k in range(num):
        if stretch_of[apex] == k:
            chosen.append(apex)
            continue
        members = np.flatnonzero((stretch_of == k) & ~used)
        if members.size == 0:
            free = np.flatnonzero(~used)
            centre = (bounds[k] + bounds[k + 1]) / 2
            pick = int(free[np.argmin(np.abs(cand[free] - centre))])
        elif not chosen:
            pick = int(members[0])
        else:
            pick = int(members[np.argmin(rho(chosen[-1], members))])
        chosen.append(pick)
        used[pick] = True
    return np.sort(cand[np.asarray(chosen)])


def greedy_redundancy_keyframes(
    frames: np.ndarray,
    num: int,
    *,
    grid: int = 32,
    static_tol: float = 1e-3,
    flat_tol: float = 2.0,
) -> np.ndarray:
    """Choose ``num`` keyframes by a global redundancy threshold (tdrag's first rule).

    Arguments, return value, the coefficient, candidates, apex and special cases are those of
    :func:`redundancy_keyframes`; only the selection differs. The first frame and the apex are
    protected; the threshold is lowered until exactly ``T`` candidates survive. Concretely the
    surviving candidate with the highest coefficient against its preceding kept frame (the most
    redundant frame; the earliest on ties) is dropped, the coefficient of the frame after it is
    recomputed against its new preceding keyframe, and this repeats until ``T`` remain. Every
    frame dropped was at least as redundant as the effective threshold (the coefficient of the
    last frame dropped) with a keyframe kept at the time, so keyframes crowd where the picture
    changes and thin out where it does not.
    """
    found = _candidates(frames, num, grid, static_tol, flat_tol)
    if not isinstance(found, _Candidates):
        return found
    cand, rho, apex = found.cand, found.rho, found.apex
    n_distinct, num = len(cand), int(num)
    positions = np.arange(n_distinct)
    # Doubly linked list over candidate positions; coef = -inf marks protected or dropped.
    prev = np.arange(-1, n_distinct - 1)
    nxt = np.arange(1, n_distinct + 1)
    coef = np.full(n_distinct, -np.inf)
    coef[1:] = rho(positions[1:], positions[:-1])
    coef[apex] = -np.inf
    alive = np.ones(n_distinct, dtype=bool)
    for _ in range(n_distinct - num):
        k = int(np.argmax(coef))
        p, n = prev[k], nxt[k]
        alive[k] = False
        coef[k] = -np.inf
        nxt[p] = n
        if n < n_distinct:
            prev[n] = p
            if n != apex:
                coef[n] = rho.pair(n, p)
    return cand[alive]


def select_keyframes(frames: np.ndarray, num: int, method: str, **options) -> np.ndarray:
    """Dispatch to the selector of ``method`` (one of :data:`KEYFRAME_METHODS`).

    ``frames``: ``(L, H, W, 3)`` or ``(L, H, W)`` uint8; uniform sampling only uses ``L``.
    ``options`` go to the redundancy selectors (``grid``, ``static_tol``, ``flat_tol``).
    """
    if method == "redundancy":
        return redundancy_keyframes(frames, num, **options)
    if method == "redundancy_greedy":
        return greedy_redundancy_keyframes(frames, num, **options)
    if method == "uniform":
        return uniform_indices(len(frames), num)
    raise ValueError(f"unknown keyframe method {method!r}; choose one of {', '.join(KEYFRAME_METHODS)}")
