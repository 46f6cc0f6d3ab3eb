"""``finetec viz`` subcommands (wired into ``finetec.cli`` by :func:`add_commands`).

::

    finetec viz skeleton PICKLE (--index I | --frame-dir NAME) [--split S] [--video V] [--level L] --out OUT.mp4|.gif
    finetec viz compare PICKLE (--index I | --frame-dir NAME) --level severe [--completer interpolation | --ckpt PATH]
                        --out OUT.mp4|.gif
    finetec viz confusion RUN_DIR [--level clean] [--classes FILE] --out OUT.png [--per-class-out OUT2.png]
    finetec viz curves RUN_DIR... [--metric top1] [--labels A B ...] --out OUT.png

Bad input prints ``finetec: error: ...`` and returns 2. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


class _Fail(Exception):
    pass


def _errors() -> tuple[type[BaseException], ...]:
    from finetec.data.io import DataFileError
    from finetec.data.sample import SampleError
    from finetec.data.transforms import TransformError
    from finetec.layouts import LayoutError

    from .plots import PlotError
    from .video import VizError

    errs: list[type[BaseException]] = [_Fail, VizError, PlotError, DataFileError, SampleError, TransformError,
                                       LayoutError, FileNotFoundError]
    if "finetec.engine.checkpoint" in sys.modules:
        errs.append(sys.modules["finetec.engine.checkpoint"].CheckpointError)
    return tuple(errs)


def _run(fn):
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except Exception as e:
            if isinstance(e, _errors()):
                print(f"finetec: error: {e}", file=sys.stderr)
                return 2
            raise

    wrapped.__name__ = fn.__name__
    return wrapped


def _select(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The sample named by --index / --frame-dir (in --split order when given) and the file's meta."""
    from finetec.data.io import load_samples

    samples, meta = load_samples(args.pickle, split=args.split)
    if args.frame_dir is not None:
        found = [s for s in samples if s.id == args.frame_dir]
        if not found:
            raise _Fail(f"{args.pickle}: no sample with frame_dir {args.frame_dir!r}"
                        + (f" in split {args.split!r}" if args.split else ""))
        return found[0], meta
    n = len(samples)
    if not -n <= args.index < n:
        raise _Fail(f"--index {args.index} out of range: {args.pickle} has {n} samples"
                    + (f" in split {args.split!r}" if args.split else ""))
    return samples[args.index], meta


def _check_out(out: str, suffixes: tuple[str, ...]) -> Path:
    p = Path(out)
    if p.suffix.lower() not in suffixes:
        raise _Fail(f"--out {out}: use a {' or '.join(suffixes)} file")
    return p


def _describe(sample: Any, meta: dict[str, Any]) -> str:
    classes = meta.get("classes") or []
    name = classes[sample.label] if 0 <= sample.label < len(classes) else str(sample.label)
    return f"{sample.id} ({name})"


@_run
def _cmd_skeleton(args: argparse.Namespace) -> int:
    import numpy as np

    from .skeleton import fit_to_canvas, render_sequence
    from .video import read_video, video_info, write_video

    out = _check_out(args.out, (".mp4", ".gif"))
    sample, meta = _select(args)
    title = _describe(sample, meta)
    if args.level:
        from .video import corrupted_at_true_times

        sample, kept = corrupted_at_true_times(sample, args.level, seed=args.seed)
        title += f", {args.level} ({int(kept.sum())}/{len(kept)} frames kept)"
    kp = sample.keypoint[..., :2]
    size = sample.img_shape
    frames = None
    fps = args.fps
    if args.video:
        info = video_info(args.video)
        if info["frames"] < sample.num_frames:
            raise _Fail(f"--video {args.video} has {info['frames']} frames but sample {sample.id!r} has "
                        f"{sample.num_frames}")
        if size is not None and tuple(size) != (info["height"], info["width"]):
            raise _Fail(f"--video {args.video} is {info['height']}x{info['width']} but the sample's img_shape is "
                        f"{size[0]}x{size[1]}")
        frames = read_video(args.video, max_frames=sample.num_frames)
        fps = fps or info["fps"] or 30.0
    elif size is None:  # normalised / 3D data: fit the present joints into a canvas
        s, off, size = fit_to_canvas(kp, sample.scores)
        kp = np.where((kp != 0).any(-1, keepdims=True), kp * s + off, 0.0)
    seq = render_sequence(kp, sample.layout, scores=sample.scores, mask=sample.mask, frames=frames, size=size,
                          scale=args.scale, title=title)
    write_video(seq, out, fps=fps or 30.0)
    print(f"wrote {out} ({sample.num_frames} frames of {title})")
    return 0


@_run
def _cmd_compare(args: argparse.Namespace) -> int:
    from .video import load_completer, render_comparison, write_video

    out = _check_out(args.out, (".mp4", ".gif"))
    completer = load_completer(ckpt=args.ckpt) if args.ckpt else load_completer(args.completer)
    sample, meta = _select(args)
    frames, seq = render_comparison(sample, args.level, completer, seed=args.seed, scale=args.scale,
                                    clip_len=args.clip_len)
    write_video(frames, out, fps=args.fps)
    import numpy as np

    err = seq["error"][seq["restored"]]
    mean = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
    print(f"wrote {out}: {_describe(sample, meta)} at {seq['level']}, {int(seq['kept'].sum())}/{len(seq['kept'])} "
          f"frames kept, completed by {seq['name']}; mean joint error on restored frames {mean:.1f} px")
    return 0


def _read_classes(path: str) -> list[str]:
    p = Path(path)
    if p.suffix.lower() in (".pkl", ".pickle"):
        from finetec.data.io import load_annotations

        classes = load_annotations(p)["meta"].get("classes")
        if not classes:
            raise _Fail(f"--classes {path}: the pickle has no meta['classes']")
        return [str(c) for c in classes]
    names = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    if not names:
        raise _Fail(f"--classes {path}: no class names (one a line)")
    return names


@_run
def _cmd_confusion(args: argparse.Namespace) -> int:
    from .plots import plot_run_confusion

    out = _check_out(args.out, (".png",))
    per = _check_out(args.per_class_out, (".png",)) if args.per_class_out else None
    classes = _read_classes(args.classes) if args.classes else None
    a, b = plot_run_confusion(args.run, out, level=args.level, class_names=classes, per_class_out=per)
    print(f"wrote {a} and {b}")
    return 0


@_run
def _cmd_curves(args: argparse.Namespace) -> int:
    from .plots import plot_accuracy_curves

    out = _check_out(args.out, (".png",))
    plot_accuracy_curves(args.runs, out, metric=args.metric, labels=args.labels, levels=args.levels,
                         title=args.title or "")
    print(f"wrote {out}")
    return 0


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("pickle", metavar="PICKLE", help="PYSKL skeleton pickle")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--index", type=int, help="position of the sample (in --split order when given)")
    g.add_argument("--frame-dir", help="the sample's frame_dir (id)")
    p.add_argument("--split", default=None, help="count --index within this split (e.g. test)")
    p.add_argument("--scale", type=float, default=1.0, help="resize factor of the output frames")
    p.add_argument("--seed", type=int, default=0, help="corruption seed (as test.seed)")


def add_commands(subparsers: Any) -> None:
    """Add ``viz`` (with ``skeleton``, ``compare``, ``confusion``, ``curves``) to an argparse subparsers object."""
    v = subparsers.add_parser("viz", help="draw skeletons, completions and test-run plots",
                              description="Skeleton videos, GT/corrupted/completed comparisons, confusion matrices "
                                          "and accuracy-vs-corruption curves.")
    sub = v.add_subparsers(dest="viz_command", required=True, metavar="SUBCOMMAND")

    s = sub.add_parser("skeleton", help="draw one sample's skeletons (over its video or on a blank canvas)")
    _add_selection(s)
    s.add_argument("--video", default=None, help="draw over this video (frame t under skeleton t)")
    s.add_argument("--level", default=None, help="corrupt the sample first (e.g. severe): dropped frames show grey")
    s.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's, else 30)")
    s.add_argument("--out", required=True, help="OUT.mp4 or OUT.gif")
    s.set_defaults(func=_cmd_skeleton)

    c = sub.add_parser("compare", help="ground truth / corrupted / completed side by side")
    _add_selection(c)
    c.add_argument("--level", required=True, help="corruption level or preset (e.g. severe)")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--completer", default="interpolation", help="a non-learned completer (default interpolation)")
    g.add_argument("--ckpt", default=None, help="model.pth of a task: completion run (e.g. FineTec's completion)")
    c.add_argument("--clip-len", type=int, default=None,
                   help="sample this many frames first, as the test pipeline does (default: the checkpoint's "
                        "clip_len; a non-learned completer: every frame)")
    c.add_argument("--fps", type=float, default=15.0)
    c.add_argument("--out", required=True, help="OUT.mp4 or OUT.gif")
    c.set_defaults(func=_cmd_compare)

    f = sub.add_parser("confusion", help="confusion matrix and per-class accuracy of a test run")
    f.add_argument("run", metavar="RUN_DIR", help="run directory (its test/<level>.npz) or an .npz file")
    f.add_argument("--level", default=None, help="which test/<level>.npz (default: the mildest present)")
    f.add_argument("--classes", default=None, help="class names: a text file (one a line) or a pickle with meta")
    f.add_argument("--out", required=True, help="confusion matrix PNG")
    f.add_argument("--per-class-out", default=None, help="per-class accuracy PNG (default OUT_per_class.png)")
    f.set_defaults(func=_cmd_confusion)

    k = sub.add_parser("curves", help="accuracy vs corruption level across runs")
    k.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (their test/metrics.json)")
    k.add_argument("--metric", default="top1", help="top1 | top5 | mean_class_accuracy")
    k.add_argument("--labels", nargs="+", default=None, help="legend names, one per run")
    k.add_argument("--levels", nargs="+", default=None,
                   help="x-axis levels/presets in this order (default: the paper's levels any run has)")
    k.add_argument("--title", default=None)
    k.add_argument("--out", required=True, help="PNG")
    k.set_defaults(func=_cmd_curves)
