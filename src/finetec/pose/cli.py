"""``finetec data extract``: pose extraction over many videos -> a PYSKL pickle.

::

    finetec data extract VIDEOS... [--labels labels.csv] --out DATA.pkl [--workers N] [--test-actors 8,9,10]

The lead's CLI adds the command with :func:`add_commands` (given the ``data`` subparsers); ``python -m
finetec.pose.cli extract ...`` runs it directly. MediaPipe lives in its own environment (``make pose-env``): when
it cannot be imported here, the command re-runs itself with ``$FINETEC_POSE_PYTHON`` or the repository's
``.venv-pose/bin/python``, and says to run ``make pose-env`` when neither has it. Only the standard library is
imported at module level.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["add_commands", "cmd_extract", "main", "pose_python"]

_CHILD_ENV = "FINETEC_POSE_CHILD"


def _box(s: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in s.replace(" ", ",").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--box: expected x1,y1,x2,y2 numbers, got {s!r}") from None
    if len(vals) != 4 or vals[2] <= vals[0] or vals[3] <= vals[1]:
        raise argparse.ArgumentTypeError(f"--box: expected x1,y1,x2,y2 with x2 > x1 and y2 > y1, got {s!r}")
    return vals


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="*", metavar="VIDEOS", help="video files or folders of videos (default: every "
                   "video listed in --labels)")
    p.add_argument("--labels", default=None, metavar="CSV", help="CSV with columns video,label (class name or "
                   "0-based index; or class_name) and optional actor, split, box; video paths relative to the CSV")
    p.add_argument("--out", required=True, metavar="DATA.pkl", help="output PYSKL pickle (coco17, pixels)")
    p.add_argument("--workers", type=_positive, default=1, help="parallel processes (default 1)")
    p.add_argument("--backend", default="mediapipe", help="pose backend (default mediapipe) or module:Class")
    p.add_argument("--classes", default=None, metavar="FILE", help="class names, one a line, fixing label order")
    p.add_argument("--label-column", default=None, help="CSV column holding the label (default label, else "
                   "class_name)")
    p.add_argument("--test-actors", default="auto", help="comma-separated actor ids for the 'test' split "
                   "(others: 'train'); 'auto' = last 30%% of the sorted ids; 'none' = no actor split")
    p.add_argument("--box", type=_box, default=None, metavar="X1,Y1,X2,Y2", help="first-frame box of the person "
                   "to track, in pixels (for every video without a box in the CSV)")
    p.add_argument("--max-frames", type=_positive, default=None, help="extract at most this many frames per video")
    p.add_argument("--parts", default=None, metavar="DIR", help="per-video part files (default OUT.parts/); a "
                   "rerun reuses finished ones")
    p.add_argument("--min-detection-confidence", type=float, default=0.5)
    p.add_argument("--min-tracking-confidence", type=float, default=0.5)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_commands(subparsers: Any) -> None:
    """Add ``extract`` to the ``data`` command's subparsers."""
    p = subparsers.add_parser("extract", help="pose extraction from videos -> PYSKL pickle (MediaPipe, COCO-17)",
                              description="Extract COCO-17 poses from videos (one tracked person, per-frame "
                                          "scores, frames without a person marked missing) into a PYSKL pickle.")
    _add_arguments(p)
    p.set_defaults(func=cmd_extract)


def _argv(args: argparse.Namespace) -> list[str]:
    """The command line that reproduces ``args`` (for re-running in the pose environment)."""
    out = [str(v) for v in args.videos] + ["--out", str(args.out), "--workers", str(args.workers),
                                           "--backend", args.backend, "--test-actors", str(args.test_actors),
                                           "--min-detection-confidence", repr(args.min_detection_confidence),
                                           "--min-tracking-confidence", repr(args.min_tracking_confidence)]
    for opt in ("labels", "classes", "label_column", "max_frames", "parts"):
        v = getattr(args, opt)
        if v is not None:
            out += ["--" + opt.replace("_", "-"), str(v)]
    if args.box is not None:
        out.append("--box=" + ",".join(repr(float(x)) for x in args.box))  # '=': a negative x1 is not an option
    if args.no_progress:
        out.append("--no-progress")
    return out


def pose_python() -> str | None:
    """An interpreter that can import mediapipe: ``$FINETEC_POSE_PYTHON``, else ``.venv-pose/bin/python`` of the
    repository (or of the current folder); None when neither exists."""
    cands = []
    env = os.environ.get("FINETEC_POSE_PYTHON")
    if env:
        cands.append(Path(env))
    repo = Path(__file__).resolve().parents[3]
    cands += [repo / ".venv-pose" / "bin" / "python", Path.cwd() / ".venv-pose" / "bin" / "python"]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def _has_mediapipe(python: str) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mediapipe') is None)"
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _reexec(args: argparse.Namespace) -> int:
    if os.environ.get(_CHILD_ENV):
        print(f"finetec: error: mediapipe is not importable by {sys.executable} either; run `make pose-env`",
              file=sys.stderr)
        return 2
    py = pose_python()
    if py is None or not _has_mediapipe(py):
        where = f" ({py} lacks it)" if py else ""
        print("finetec: error: the mediapipe backend needs mediapipe==0.10.21, which is not installed here and no "
              f"pose environment was found{where}; run `make pose-env` (or set $FINETEC_POSE_PYTHON to a Python "
              "that has mediapipe)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env[_CHILD_ENV] = "1"
    src = str(Path(__file__).resolve().parents[2])  # run this same finetec source in the pose environment
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print(f"finetec: mediapipe is not installed here; running the extraction with {py}", file=sys.stderr)
    return subprocess.call([py, "-m", "finetec.pose.cli", "extract", *_argv(args)], env=env)


def _test_actors(s: str) -> Any:
    s = str(s).strip()
    if s.lower() in ("auto", "none"):
        return None if s.lower() == "none" else "auto"
    vals = [x.strip() for x in s.split(",") if x.strip()]
    return [int(v) if v.lstrip("+-").isdigit() else v for v in vals]


def cmd_extract(args: argparse.Namespace) -> int:
    """Run ``finetec data extract`` (re-running in the pose environment when mediapipe is missing here)."""
    from finetec.data.io import DataFileError

    if args.backend == "mediapipe":
        from .mediapipe_backend import mediapipe_available

        if not mediapipe_available():
            return _reexec(args)
    from .extract import collect_videos, extract_dataset, format_detection_rates, make_split

    try:
        classes = None
        if args.classes is not None:
            try:
                classes = [ln.strip() for ln in Path(args.classes).read_text(encoding="utf-8").splitlines()
                           if ln.strip()]
            except OSError as e:
                raise DataFileError(f"--classes {args.classes}: {e}") from e
        entries, names = collect_videos(args.videos, args.labels, classes=classes, label_column=args.label_column)
        if args.box is not None:
            for e in entries:
                e.box = e.box or tuple(args.box)
        split = make_split(entries, _test_actors(args.test_actors))
        kwargs = {}
        if args.backend == "mediapipe":
            kwargs = {"min_detection_confidence": args.min_detection_confidence,
                      "min_tracking_confidence": args.min_tracking_confidence}
        s = extract_dataset(entries, args.out, classes=names, backend=args.backend, backend_kwargs=kwargs,
                            workers=args.workers, parts_dir=args.parts, split=split, max_frames=args.max_frames,
                            progress=not args.no_progress,
                            source=f"finetec data extract ({args.backend})" + (f" of {args.labels}" if args.labels
                                                                              else ""))
    except (DataFileError, ValueError, TypeError, ImportError) as e:
        print(f"finetec: error: {e}", file=sys.stderr)
        return 2
    if not s.per_class:
        for fd, err in s.failed.items():
            print(f"error: {fd}: {err}", file=sys.stderr)
        print(f"finetec: error: no video could be read; {s.out} not written", file=sys.stderr)
        return 1
    rate = s.detected / s.frames if s.frames else float("nan")
    print(f"{s.out}: {s.videos} videos ({s.extracted} extracted, {s.reused} reused from parts, {len(s.failed)} "
          f"failed); {s.frames} frames, {s.detected} with a person ({rate:.1%}), {s.frames - s.detected} missing")
    if s.frames_done:
        print(f"extraction: {s.frames_done} frames in {s.seconds:.1f} s = {s.frames_per_second:.1f} frames/s "
              f"({args.workers} worker(s))")
    if split:
        print("split: " + ", ".join(f"{k} {len(v)}" for k, v in split.items()))
    print(format_detection_rates(s.per_class))
    for fd, err in s.decode_errors.items():
        print(f"warning: {fd}: {err}", file=sys.stderr)
    for fd, err in s.failed.items():
        print(f"error: {fd}: {err}", file=sys.stderr)
    return 1 if s.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m finetec.pose.cli extract ...``."""
    parser = argparse.ArgumentParser(prog="finetec data")
    add_commands(parser.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
