"""``tdrag predict VIDEO [VIDEO ...] --checkpoint CKPT [--out DIR] [--window SECONDS]``.

Runs a trained model on video files: follows the main face, classifies it window by window and
writes, per video, ``<stem>.json``, ``<stem>_overlay.mp4`` and ``<stem>_keyframes.png`` into
``--out`` (see ``tdrag.predict``: inference, drawing, output). A video that cannot be used
(missing, not a video, zero frames, truncated, no face) gets one error line naming the file and
the reason; the others are still processed, and the exit code is 1 when any video failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="run a trained model on video files (face detection and crop, attention overlay)",
        description=(
            "Follow the main face in each video, classify its expression with a trained checkpoint "
            "(per window and overall) and write <stem>.json, <stem>_overlay.mp4 and "
            "<stem>_keyframes.png per video into --out."
        ),
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, avi, mov, ...)")
    parser.set_defaults(intermixed="videos")  # taken among the options too (tdrag.cli)
    parser.add_argument(
        "--checkpoint", required=True, metavar="CKPT", help="a checkpoint .pt file or a run dir (uses its best.pt)"
    )
    parser.add_argument("--out", default="predictions", metavar="DIR", help="output folder (default: predictions)")
    parser.add_argument(
        "--window",
        type=float,
        default=4.0,
        metavar="SECONDS",
        help=(
            "classify videos in windows of about this many seconds, like DFEW's short clips, and "
            "average the window probabilities; 0 = the whole video as one window (default: 4)"
        ),
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--detect-every",
        type=int,
        default=None,
        metavar="K",
        help="run the face detector on every K-th frame (default: about 10 times per second of video)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (shown on a terminal only)")
    parser.set_defaults(func=run)


def _unique_stems(paths: list[Path]) -> list[str]:
    """Output stems, made unique when two videos share a file name (a/x.mp4, b/x.mp4 -> x, x_2)."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = path.stem or "video"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def _quiet_video_backends() -> None:
    """The CLI reports each bad file in one line; FFmpeg's and OpenCV's own stderr chatter
    ("moov atom not found", backend warnings) would only repeat it less clearly."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg starts
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # builds without the logging module
        pass


def _bar(videos: list[Path], hidden: bool):
    """The videos, with a progress bar on a terminal only (disable=None): in a captured log its
    carriage returns would leave the next error line glued to it; tqdm.write clears the bar before
    each line on a terminal."""
    from tqdm.auto import tqdm

    return tqdm(videos, desc="videos", unit="video", file=sys.stderr, disable=True if hidden else None)


def _make_out(out: Path) -> None:
    """Create ``--out`` (one error line naming it when it cannot be) and remove the staging folders
    killed runs left in it (the caller holds it: no live run is using them)."""
    from tdrag import ownership
    from tdrag.errors import OutputError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    ownership.remove_leftovers(out, (".predict-",))


def _predict_one(video: Path, stem: str, args: argparse.Namespace, model, config, checkpoint, class_names, device,
                 out: Path) -> bool:
    """Predict one video and write its files; on failure print one error line. Returns success."""
    from tqdm.auto import tqdm

    from tdrag.errors import TdragError, error_message
    from tdrag.predict.inference import predict_video
    from tdrag.predict.output import write_prediction
    from tdrag.predict.video import VideoError

    try:
        prediction = predict_video(
            model, config, video, window=args.window or None, device=device, detect_every=args.detect_every,
            class_names=class_names,
        )
        paths = write_prediction(prediction, config, checkpoint, out, stem=stem)
    except (VideoError, TdragError, OSError) as exc:
        tqdm.write(f"error: {error_message(exc)}", file=sys.stderr)
        return False
    except Exception as exc:  # one bad video must not stop the others; say what broke
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        tqdm.write(f"error: {video}: {type(exc).__name__}: {detail}", file=sys.stderr)
        return False
    tqdm.write(
        f"{video}: {prediction.top_class} ({prediction.probabilities[prediction.top_index]:.2f}), "
        f"{len(prediction.windows)} window(s), face on {100 * prediction.face.coverage:.0f}% of sampled frames "
        f"-> {paths['json']}"
    )
    return True


def run(args: argparse.Namespace) -> int:
    from tdrag import ownership
    from tdrag.models.registry import load_model
    from tdrag.runs.checkpoints import CheckpointError, checkpoint_class_names, load_checkpoint, select_checkpoint
    from tdrag.runtime import resolve_device

    _quiet_video_backends()
    if args.window < 0:
        print(f"error: --window must be >= 0 seconds, got {args.window}", file=sys.stderr)
        return 2
    if args.detect_every is not None and args.detect_every < 1:
        print(f"error: --detect-every must be >= 1, got {args.detect_every}", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:  # CUDA asked for but absent, or a bad device string
        print(f"error: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    try:
        choice = select_checkpoint(args.checkpoint)
        checkpoint = choice.path
        model, config = load_model(checkpoint, device=device)
        class_names = checkpoint_class_names(load_checkpoint(checkpoint), checkpoint)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a file the safe loader chokes on in some other way
        print(f"error: {args.checkpoint}: cannot load checkpoint ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2

    # Say which checkpoint is used and why (a run dir's best.pt only when chosen on held-out clips).
    print(f"checkpoint: {choice.reason}", file=sys.stderr)
    videos = [Path(v) for v in args.videos]
    out = Path(args.out)
    with ownership.hold_output(out, "predict"):  # a second predict into --out refuses meanwhile
        _make_out(out)
        failed = sum(not _predict_one(video, stem, args, model, config, checkpoint, class_names, device, out)
                     for video, stem in zip(_bar(videos, args.no_progress), _unique_stems(videos)))
    done = len(videos) - failed
    print(f"{done} of {len(videos)} video(s) predicted into {out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
