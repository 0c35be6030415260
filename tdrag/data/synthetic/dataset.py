"""Synthetic data set: faces drawn with OpenCV, written in DFEW's, FERV39k's or MAFW's own layout.

DFEW cannot ship, so tests, the demo and the notebooks use this. ``generate_dataset`` writes, in
DFEW's layout (the default; ``layout="ferv39k" | "mafw"`` writes those datasets' folders and
split files instead, with their class lists: see ``tdrag.data.synthetic.layouts``)::

    DIR/Clip/clip_224x224/<5-digit id>/1.jpg ... <L>.jpg     (named as in DFEW whatever the size)
    DIR/EmoLabel_DataSplit/train(single-labeled)/set_<k>.csv  (k = 1..5; header video_name,label;
    DIR/EmoLabel_DataSplit/test(single-labeled)/set_<k>.csv    labels 1..7 in DFEW order)
    DIR/synthetic/masks/<id>.npz   masks (L, S, S) uint8 0/1: where the class signal is, per frame
                                   apex: the frame of strongest expression, 0-based
    DIR/synthetic/regions/<id>.npz regions (L, S, S) uint8: the facial region each pixel shows, per
                                   frame (an index into names: tdrag.data.synthetic.regions.REGIONS)
    DIR/synthetic/temporal/<id>.npz what the expression did over time: curves (L, G) float32, each
                                   face part's progress to its apex per frame (parts: the G names);
                                   relax (L,); blink (L,); strength; evidence (L,) bool, the
                                   frames that separate the clip's class from its nearest
                                   class (nearest); see tdrag.data.synthetic.timeline
    DIR/synthetic/meta.json        preset, seed, size, classes, layout (absent: dfew) and per
                                   clip: video_id, label (0-based), label_name, length, apex,
                                   onset, fold (the fold whose test set holds it)

Masks and regions are keyed by video id in every layout (a FERV39k id ``Action/Happy/0003`` has
its masks at ``synthetic/masks/Action/Happy/0003.npz``). Sets written before the region maps
existed have no ``regions/`` folder; their masks read as before. Labels are balanced: class ``c`` gets ``N // C`` or
one more clips (C = the layout's class count), shuffled over ids by the seed; sorted by (class, id) the clips are dealt to folds 1..5 in turn, so every fold's test set
has (nearly) the same count of each class, and each clip is in exactly one test set (its fold)
and in the training sets of the other four.

Same seed, same bytes: each clip is drawn from its own generator seeded by ``(seed, clip
index)``, so clips are independent of one another and of how many worker processes drew them;
JPEG quality is fixed and the npz archives carry no timestamps.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from tdrag import ownership
from tdrag.atomic import follow_umask, write_json
from tdrag.errors import TdragError
from tdrag.data.labels import NUM_DFEW_CLASSES
from tdrag.data.synthetic.clips import RenderedClip, render
from tdrag.data.synthetic.layouts import LAYOUTS, NUM_FOLDS, get_layout
from tdrag.data.synthetic.presets import PRESETS, SynthPreset
from tdrag.data.synthetic.regions import REGIONS
from tdrag.data.synthetic.timeline import ClipTimeline, clip_timeline

log = logging.getLogger(__name__)

FORMAT = "tdrag-synthetic"
FORMAT_VERSION = 1
JPEG_QUALITY = 90
CLIP_DIR = LAYOUTS["dfew"].clip_dir
SPLIT_DIR = Path("EmoLabel_DataSplit")
SYNTH_DIR = Path("synthetic")
_LABEL_STREAM = 0  # seed-sequence branches: labels, and clips (one sub-stream per clip)
_CLIP_STREAM = 1


class SynthError(TdragError, RuntimeError):
    """A synthetic data set cannot be written or read (the message names the path)."""


@dataclass
class SynthClip:
    """One synthetic clip in memory.

    frames: ``(L, S, S, 3)`` uint8 RGB (held runs repeat a frame exactly);
    masks: ``(L, S, S)`` uint8 0/1, where the class signal is; apex: 0-based frame index;
    onset: first frame with visible expression (None for Neutral); intensity: ``(L,)`` 0..1;
    regions: ``(L, S, S)`` uint8 facial-region labels (``tdrag.data.synthetic.regions.REGIONS``).
    """

    label: int
    frames: np.ndarray
    masks: np.ndarray
    apex: int
    onset: int | None
    intensity: np.ndarray
    regions: np.ndarray


def get_preset(preset: str | SynthPreset) -> SynthPreset:
    """Look up a preset by name ("easy" | "hard"), or pass a ``SynthPreset`` through."""
    if isinstance(preset, SynthPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index`` (0-based) in a data set with ``seed``."""
    return np.random.default_rng([int(seed), _CLIP_STREAM, int(index)])


def render_clip(seed: int, index: int, label: int, preset: str | SynthPreset = "easy", size: int = 112,
                layout: str = "dfew") -> SynthClip:
    """Draw clip ``index`` of class ``label`` (0-based in ``layout``'s class list) exactly as
    ``generate_dataset`` would."""
    clip = render(clip_rng(seed, index), int(label), get_preset(preset), int(size), get_layout(layout).classes)
    rgb = np.stack([cv2.cvtColor(img, cv2.COLOR_BGR2RGB) for img in clip.steps_bgr])
    return SynthClip(clip.label, rgb[clip.frame_step], clip.step_masks[clip.frame_step], clip.apex, clip.onset,
                     clip.intensity, clip.step_regions[clip.frame_step])


def assign_labels_and_folds(num_clips: int, seed: int, num_classes: int = NUM_DFEW_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels (0-based, ``num_classes`` classes) and test folds (1..5) for ``num_clips``
    clips: two ``(N,)`` arrays."""
    labels = np.arange(num_clips) % int(num_classes)
    np.random.default_rng([int(seed), _LABEL_STREAM]).shuffle(labels)
    order = np.lexsort((np.arange(num_clips), labels))  # by class, then by id
    folds = np.empty(num_clips, dtype=np.int64)
    folds[order] = np.arange(num_clips) % NUM_FOLDS + 1
    return labels.astype(np.int64), folds


def video_id(index: int) -> str:
    """DFEW-style 5-digit id of clip ``index`` (0-based): ids start at 00001."""
    return f"{index + 1:05d}"


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    """An ``.npz`` archive (what ``np.savez_compressed`` writes) with reproducible bytes.

    Written by hand to fix the entry timestamps and to use zlib level 1: masks are mostly zeros,
    so level 1 compresses them nearly as well as the default level at a fraction of the time.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, data.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return buf.getvalue()


def _write_clip(root: Path, index: int, label: int, seed: int, preset: SynthPreset, size: int,
                layout: str = "dfew", vid: str | None = None) -> dict:
    """Render clip ``index`` and write its frames and masks under ``root``; return its meta row."""
    spec = get_layout(layout)
    clip: RenderedClip = render(clip_rng(seed, index), label, preset, size, spec.classes)
    vid = video_id(index) if vid is None else vid
    folder = root / spec.clip_dir / vid
    folder.mkdir(parents=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    encoded = []
    for img in clip.steps_bgr:
        ok, buf = cv2.imencode(".jpg", img, params)
        if not ok:
            raise SynthError(f"OpenCV could not encode a JPEG frame for {folder}")
        encoded.append(buf.tobytes())
    for n, step in enumerate(clip.frame_step, start=1):
        (folder / f"{n}.jpg").write_bytes(encoded[step])
    masks = clip.step_masks[clip.frame_step]
    mask_path = root / SYNTH_DIR / "masks" / f"{vid}.npz"
    mask_path.parent.mkdir(parents=True, exist_ok=True)  # FERV39k ids are relative paths
    mask_path.write_bytes(_npz_bytes(masks=masks, apex=np.int64(clip.apex)))
    region_path = root / SYNTH_DIR / "regions" / f"{vid}.npz"
    region_path.parent.mkdir(parents=True, exist_ok=True)
    region_path.write_bytes(_npz_bytes(regions=clip.step_regions[clip.frame_step], names=np.array(REGIONS)))
    at = clip.frame_step
    timeline = clip_timeline(spec.classes[label], clip.part_curves[at], clip.relax[at], clip.blink[at], clip.strength,
                             spec.classes, preset.shared_apex, preset.timing)
    timeline_path = root / SYNTH_DIR / "temporal" / f"{vid}.npz"
    timeline_path.parent.mkdir(parents=True, exist_ok=True)
    timeline_path.write_bytes(_npz_bytes(curves=timeline.curves, relax=timeline.relax, blink=timeline.blink,
                                         evidence=timeline.evidence, nearest=np.array(timeline.nearest),
                                         strength=np.float64(timeline.strength), parts=np.array(timeline.parts)))
    return {
        "video_id": vid,
        "label": int(label),
        "label_name": spec.classes[label],
        "length": int(len(clip.frame_step)),
        "apex": int(clip.apex),
        "onset": None if clip.onset is None else int(clip.onset),
        "distinct_frames": int(len(clip.steps_bgr)),
    }


def preset_settings(preset: SynthPreset) -> dict:
    """The preset as meta.json records it. A field added since (``timing``) is left out at its
    default, so the meta of a set whose preset does not use it keeps the bytes it had before."""
    settings = asdict(preset)
    if settings.get("timing") == "standard":
        del settings["timing"]
    return settings


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe


def _write_clip_task(task: tuple) -> dict:
    return _write_clip(*task)


def is_synthetic_root(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a complete data set written by ``generate_dataset``."""
    meta = Path(path) / SYNTH_DIR / "meta.json"
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT and data.get("complete") is True


#: The per-clip files of a synthetic set: ``synthetic/<kind>/<video id>.npz`` for each kind. With
#: meta.json, the clip frame folders and the split files, they are everything ``generate_dataset``
#: writes, and so everything a rewrite may replace (append a kind here when the writer adds one).
PER_CLIP_KINDS: tuple[str, ...] = ("masks", "regions", "temporal")
META_FILE = (SYNTH_DIR / "meta.json").as_posix()


def _own_files(out: Path) -> set[str] | None:
    """Every file the synthetic data set at ``out`` was written with (``/``-separated, relative to
    ``out``), read off its meta.json: frames, per-clip files, split files, meta.json itself.
    None when there is no complete set there, or its meta cannot say what it wrote."""
    if not is_synthetic_root(out):
        return None
    try:
        meta = json.loads((out / META_FILE).read_text())
        spec = get_layout(meta.get("layout", "dfew"))
        files = {META_FILE, *spec.split_files()}
        for row in meta["clips"]:
            vid, length = str(row["video_id"]), int(row["length"])
            files.update(f"{spec.clip_dir.as_posix()}/{vid}/{n}.jpg" for n in range(1, length + 1))
            files.update(f"{SYNTH_DIR.as_posix()}/{kind}/{vid}.npz" for kind in PER_CLIP_KINDS)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return files


def _check_destination(out: Path) -> None:
    """Refuse an ``out`` that is not absent, empty, or wholly a previous synthetic data set: every
    file in it, at any depth, one that data set was written with."""
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        own = _own_files(out)
        if own is None:
            raise SynthError(
                f"{out}: not empty and does not hold a previous synthetic data set "
                f"(no readable {META_FILE}); refusing to write into it. Choose an empty or new folder."
            )
        ownership.refuse_foreign_files(out, own, "the synthetic data set there",
                                       own_dirs=[f"{SYNTH_DIR.as_posix()}/{kind}" for kind in PER_CLIP_KINDS])
        ownership.check_removable(out, "the synthetic data set there")


def _holding_destination(generate):
    """Run ``generate(out, ...)`` holding ``out`` (``tdrag.ownership.hold_output``): a second writer
    of the same folder refuses instead of both finishing, and the working folders of killed runs
    (``.<name>.synth-*``, ``.<name>.old-*``) are removed first."""

    @functools.wraps(generate)
    def held(out: str | os.PathLike, *args, **kwargs) -> Path:
        out = Path(out).absolute()
        with ownership.hold_output(out, "synth"):
            ownership.remove_leftovers(out.parent, (f".{out.name}.synth-", f".{out.name}.old-"))
            return generate(out, *args, **kwargs)

    return held


@_holding_destination
def generate_dataset(
    out: str | os.PathLike,
    clips: int,
    preset: str | SynthPreset = "easy",
    seed: int = 0,
    size: int = 112,
    workers: int = 1,
    progress: bool = False,
    layout: str = "dfew",
) -> Path:
    """Write a synthetic data set of ``clips`` clips in ``layout``'s layout to ``out``; return ``out``.

    ``layout`` is "dfew" (the default), "ferv39k" or "mafw": the folders, split files and class
    list of that dataset (``tdrag.data.synthetic.layouts``).

    ``out`` must be absent, empty or a previous synthetic data set (which is replaced). The tree
    is built in a hidden temporary sibling folder and renamed into place at the end, so an
    interrupted run never leaves a complete-looking data set (the hidden ``.<name>.synth-*`` folder
    a killed process leaves behind is removed by the next run into ``out``). One process at a
    time writes ``out``: a second refuses (``tdrag.ownership.hold_output``). ``workers > 1``
    draws clips in that many "spawn" processes (call from under ``if __name__ == "__main__":``
    in a script); the bytes written do not depend on it.
    """
    out = Path(out).absolute()
    spec = get_layout(layout)
    preset_obj = get_preset(preset)
    clips, size, seed = int(clips), int(size), int(seed)
    if not 1 <= clips <= 99999:
        raise ValueError(f"clips must be in 1..99999 (DFEW ids have 5 digits), got {clips}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels, folds = assign_labels_and_folds(clips, seed, len(spec.classes))
    ids = spec.video_ids(labels)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.synth-", dir=out.parent))
    try:
        (tmp / spec.clip_dir).mkdir(parents=True)
        (tmp / SYNTH_DIR / "masks").mkdir(parents=True)
        tasks = [(tmp, i, int(labels[i]), seed, preset_obj, size, spec.name, ids[i]) for i in range(clips)]
        rows = _run_tasks(tasks, workers, progress)
        for row, fold in zip(rows, folds):
            row["fold"] = int(fold)
        spec.write_splits(tmp, ids, labels, folds)
        # DFEW's meta has no "layout" key (readers take its absence as dfew): its bytes stay
        # those of sets written before other layouts existed.
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **({} if spec.name == "dfew" else {"layout": spec.name}),
            "preset": preset_obj.name,
            "preset_settings": preset_settings(preset_obj),
            "seed": seed,
            "size": size,
            "num_clips": clips,
            "classes": list(spec.classes),
            "jpeg_quality": JPEG_QUALITY,
            "clips": rows,
            "complete": True,  # written last: its presence marks a finished tree
        }
        write_json(tmp / SYNTH_DIR / "meta.json", meta)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %d synthetic clips (%s layout, %s, seed %d, %dx%d) to %s", clips, spec.name, preset_obj.name, seed,
             size, size, out)
    return out


def _run_tasks(tasks: list[tuple], workers: int, progress: bool) -> list[dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="synth", unit="clip", disable=not progress)
    try:
        if workers <= 1 or len(tasks) < 2:
            threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # tiny images: OpenCV's thread pool costs more than it saves
            try:
                rows = []
                for task in tasks:
                    rows.append(_write_clip_task(task))
                    bar.update()
                return rows
            finally:
                cv2.setNumThreads(threads)
        # spawn, not fork: forking a process that already runs OpenCV or torch threads can hang.
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            rows = []
            chunk = max(1, min(16, len(tasks) // (4 * workers)))
            for row in pool.map(_write_clip_task, tasks, chunksize=chunk):
                rows.append(row)
                bar.update()
            return rows
    finally:
        bar.close()


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished tree ``tmp`` to ``out``, replacing an empty or previous synthetic ``out``."""
    follow_umask(tmp)  # mkdtemp made it 0700; it becomes the data set, readable as the umask allows
    if not out.exists():
        os.replace(tmp, out)
        return
    _check_destination(out)  # re-check: it may have changed while we were drawing
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    ownership.swap_into_place(tmp, out, old)


def load_meta(root: str | os.PathLike) -> dict:
    """Read ``root/synthetic/meta.json`` (raises ``SynthError`` naming the file if unusable)."""
    path = Path(root) / SYNTH_DIR / "meta.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SynthError(f"{path} not found: {root} is not a synthetic data set written by tdrag synth") from None
    except (OSError, ValueError) as exc:
        raise SynthError(f"{path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SynthError(f"{path} is not a tdrag synthetic meta file (format {FORMAT!r} expected)")
    return data


def _clip_file(root: str | os.PathLike, video_id: str, kind: str) -> Path:
    """``root/synthetic/<kind>/<id>.npz`` of a clip id in its layout (a padded or unpadded DFEW number,
    or a relative path); SynthError for an id that could climb out of the folder."""
    vid = str(video_id).strip().replace("\\", "/")
    if vid.isdigit():
        vid = f"{int(vid):05d}"
    parts = vid.split("/")
    if not vid or vid.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise SynthError(f"{video_id!r}: not a synthetic clip id (a folder name or a relative path)")
    return Path(root) / SYNTH_DIR / kind / f"{vid}.npz"


def load_clip_masks(root: str | os.PathLike, video_id: str) -> tuple[np.ndarray, int]:
    """Signal masks and apex of one clip: ``((L, S, S) uint8 0/1, apex frame index 0-based)``.

    ``video_id`` is the clip's id in its layout: a folder name ("00012"; an unpadded "12" is
    accepted too) or, for FERV39k, a relative path ("Action/Happy/0003").
    """
    path = _clip_file(root, video_id, "masks")
    try:
        with np.load(path) as data:
            masks, apex = data["masks"], int(data["apex"])
    except FileNotFoundError:
        raise SynthError(f"{path} not found: no masks for clip {video_id!r} under {root}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise SynthError(f"{path} cannot be read as synthetic masks: {exc}") from None
    return masks, apex


def load_clip_regions(root: str | os.PathLike, video_id: str) -> np.ndarray:
    """Facial-region label maps of one clip: ``(L, S, S)`` uint8, values index ``REGIONS``.

    ``video_id`` as for :func:`load_clip_masks`. A set rendered before region maps were written
    has none: SynthError saying to render it again.
    """
    path = _clip_file(root, video_id, "regions")
    try:
        with np.load(path) as data:
            regions, names = data["regions"], tuple(str(n) for n in data["names"])
    except FileNotFoundError:
        raise SynthError(f"{path} not found: {root} has no region maps for clip {video_id!r} (sets rendered "
                         "before they existed have none; render it again with `tdrag synth`)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise SynthError(f"{path} cannot be read as region maps: {exc}") from None
    if names != REGIONS:
        raise SynthError(f"{path}: region names {list(names)} differ from this version's {list(REGIONS)}")
    return regions


def load_clip_timeline(root: str | os.PathLike, video_id: str) -> ClipTimeline:
    """Temporal ground truth of one clip (``tdrag.data.synthetic.timeline.ClipTimeline``): each face
    part's curve per frame, the blink, the evidence frames and the class they separate it from.

    ``video_id`` as for :func:`load_clip_masks`. A set rendered before the temporal ground truth
    was written has none: SynthError saying to render it again (same seed, same frames).
    """
    path = _clip_file(root, video_id, "temporal")
    try:
        with np.load(path) as data:
            timeline = ClipTimeline(curves=data["curves"], relax=data["relax"], blink=data["blink"],
                                    evidence=data["evidence"].astype(bool), strength=float(data["strength"]),
                                    nearest=str(data["nearest"]), parts=tuple(str(n) for n in data["parts"]))
    except FileNotFoundError:
        raise SynthError(f"{path} not found: {root} has no temporal ground truth for clip {video_id!r} (sets "
                         "rendered before it existed have none; render it again with `tdrag synth`, same seed: "
                         "the frames are the same)") from None
    except (OSError, ValueError, KeyError) as exc:
        raise SynthError(f"{path} cannot be read as temporal ground truth: {exc}") from None
    if timeline.curves.ndim != 2 or len(timeline.evidence) != len(timeline.curves):
        raise SynthError(f"{path}: curves {timeline.curves.shape} and evidence {timeline.evidence.shape} do not "
                         "describe the same frames")
    return timeline
