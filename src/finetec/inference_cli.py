"""``finetec predict`` and ``finetec stream``.

::

    finetec predict INPUT --ckpt PATH [--ckpt PATH ...] [--weights W ...] [--topk 5] [--out result.json]
                    [--index I | --frame-dir NAME] [--video-root DIR]
    finetec stream VIDEO --ckpt PATH [--window T] [--stride S] [--box X1,Y1,X2,Y2] [--out windows.json]

``INPUT`` is a video (poses extracted with MediaPipe in the pose environment, frames without a person kept
missing), a keypoint JSON (COCO keypoint results file, or an OpenPose per-frame JSON folder; ``--img-shape H,W``
when the file does not say it) or a PYSKL pickle (every sample, or one). ``stream`` reads the video's poses from a
child process as they are estimated (:mod:`finetec.pose.stream`) and recognizes every ``--stride`` frames over the
last ``--window`` frames, printing each window's label and recognition latency.

Several ``--ckpt`` (skeleton streams and/or RGB models, e.g. TSM trained with ``task: rgb``) are fused with Eq. 14 of
the multimodal paper (``--weights``, one per checkpoint, default equal). An RGB model reads each sample's video: the
INPUT video itself, or for a pickle the entries' ``filename`` / ``<frame_dir><suffix>`` under ``--video-root``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["add_commands"]

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


class InputError(ValueError):
    """An input that is none of video / keypoint JSON / pickle, or that cannot be read."""


def _pose_command(module: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """How to run ``python -m module argv`` where mediapipe is importable (here, or the pose environment)."""
    from .pose.cli import pose_python
    from .pose.mediapipe_backend import mediapipe_available

    env = dict(os.environ)
    if mediapipe_available():
        return [sys.executable, "-m", module, *argv], env
    py = pose_python()
    if py is None:
        raise InputError("poses from a video need mediapipe==0.10.21: run `make pose-env` (or set "
                         "$FINETEC_POSE_PYTHON to a Python that has it)")
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["FINETEC_POSE_CHILD"] = "1"
    return [py, "-m", module, *argv], env


def _video_annotations(path: Path, box: Any) -> list[dict[str, Any]]:
    from .data.io import load_annotations

    with tempfile.TemporaryDirectory(prefix="finetec-predict-") as tmp:
        out = Path(tmp) / "poses.pkl"
        argv = ["extract", str(path), "--out", str(out), "--no-progress", "--test-actors", "none"]
        if box is not None:
            argv.append("--box=" + ",".join(str(v) for v in box))  # '=': a negative x1 is not an option
        cmd, env = _pose_command("finetec.pose.cli", argv)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise InputError(f"{path}: pose extraction failed (exit {proc.returncode}): {tail}")
        return list(load_annotations(out)["annotations"])


def _img_shape(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--img-shape must be H,W (two integers), got {text!r}") from None
    return h, w


def load_input(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None]:
    """``(annotations, layout)`` of ``args.input``."""
    path = Path(args.input)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir() or path.suffix.lower() == ".json":
        from .pose import annotation_from_poses, import_coco_keypoints, import_openpose

        poses = import_openpose(path) if path.is_dir() else import_coco_keypoints(path)
        ann = annotation_from_poses(poses, frame_dir=path.stem, img_shape=_img_shape(args.img_shape) or poses.img_shape,
                                    box=args.box)
        return [ann], "coco17"
    if path.suffix.lower() in VIDEO_SUFFIXES:
        anns = _video_annotations(path, args.box)
        for a in anns:  # the skeleton's video, for RGB models
            a["filename"] = str(path.resolve())
        return anns, "coco17"
    from .data.io import load_annotations

    data = load_annotations(path)
    anns = list(data["annotations"])
    if args.frame_dir is not None:
        anns = [a for a in anns if a["frame_dir"] == args.frame_dir]
        if not anns:
            raise InputError(f"{path}: no sample with frame_dir {args.frame_dir!r}")
    elif args.index is not None:
        if not 0 <= args.index < len(anns):
            raise InputError(f"{path}: --index {args.index} out of range ({len(anns)} samples)")
        anns = [anns[args.index]]
    return anns, (data.get("meta") or {}).get("layout")


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.sample import SampleError
    from .inference import Predictor, fused_predictions, open_predictor
    from .utils.io import atomic_write_text

    from .models.multimodal.fusion import fusion_weights

    ckpts = list(args.ckpt)
    if args.weights is not None and len(args.weights) != len(ckpts):
        raise InputError(f"--weights: one per --ckpt ({len(ckpts)}), got {len(args.weights)}")
    try:
        lam = fusion_weights(args.weights, len(ckpts), "--weights")
    except ValueError as e:
        raise InputError(str(e)) from None
    predictors = [open_predictor(c, video_root=args.video_root) for c in ckpts]
    for c, p in zip(ckpts[1:], predictors[1:]):
        if p.classes != predictors[0].classes:
            raise InputError(f"{c} and {ckpts[0]} do not share their classes ({p.num_classes} vs "
                             f"{predictors[0].num_classes}, or other names / order); their scores cannot be fused")
    anns, layout = load_input(args)
    skeleton = [p for p in predictors if isinstance(p, Predictor)]
    usable, empty = [], []
    for a in anns:  # a clip in which pose estimation found nobody has no answer; the others still get theirs
        try:
            for p in skeleton:
                p.to_sample(a, layout)
            usable.append(a)
        except SampleError as e:
            if len(anns) == 1:
                raise
            empty.append({"id": str(a.get("frame_dir", "?")), "topk": [], "error": str(e)})
            print(f"{a.get('frame_dir', '?')}: (no answer: {e})")
    preds, per = fused_predictions(predictors, usable, weights=lam, topk=args.topk, layout=layout)
    classes = predictors[0].classes
    for i, p in enumerate(preds):
        alone = ("   [" + ", ".join(f"{m.input_kind}: {classes[int(sc[i].argmax())]}" for m, sc in zip(predictors, per))
                 + "]") if len(predictors) > 1 else ""
        print(f"{p.id}: " + ", ".join(f"{c} {prob:.3f}" for c, prob in p.topk)
              + (f"   (label: {classes[p.label]})" if 0 <= p.label < len(classes) else "") + alone)
    labelled = [i for i, p in enumerate(preds) if p.label >= 0]
    if len(labelled) > 1:
        y = np.array([preds[i].label for i in labelled])
        acc = float((np.stack([preds[i].scores for i in labelled]).argmax(1) == y).mean())
        line = f"top-1 on the {len(labelled)} labelled samples: {acc:.3f}"
        if len(predictors) > 1:
            line += " fused (" + ", ".join(f"{m.input_kind} {float((sc[labelled].argmax(1) == y).mean()):.3f}"
                                           for m, sc in zip(predictors, per)) + ")"
        print(line)
    if args.out:
        out = {"ckpt": [str(c) for c in ckpts] if len(ckpts) > 1 else str(ckpts[0]), "input": str(args.input),
               "predictions": [p.as_dict() for p in preds] + empty}
        if len(ckpts) > 1:
            out["weights"] = [float(w) for w in lam]
            for d, i in zip(out["predictions"], range(len(preds))):
                d["per_model"] = [{"ckpt": str(c), "input": m.input_kind, "top1": classes[int(sc[i].argmax())],
                                   "scores": [float(v) for v in sc[i]]} for c, m, sc in zip(ckpts, predictors, per)]
        atomic_write_text(args.out, json.dumps(out, indent=2) + "\n")
    return 0


def _pose_lines(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    argv = [str(args.video)] + (["--box=" + ",".join(str(v) for v in args.box)] if args.box else [])
    if args.max_frames:
        argv += ["--max-frames", str(args.max_frames)]
    cmd, env = _pose_command("finetec.pose.stream", argv)
    with tempfile.TemporaryFile(mode="w+") as err:
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1) as proc:
            assert proc.stdout is not None
            ended = False
            for line in proc.stdout:
                line = line.strip()
                if line.startswith("{"):
                    rec = json.loads(line)
                    ended = ended or bool(rec.get("end"))
                    yield rec
        if proc.returncode != 0 or not ended:
            err.seek(0)
            tail = "\n".join(err.read().strip().splitlines()[-3:])
            raise InputError(f"{args.video}: the pose process failed (exit {proc.returncode}): {tail}")


def cmd_stream(args: argparse.Namespace) -> int:
    import numpy as np

    from .inference import Predictor, StreamRecognizer
    from .layouts import convert_keypoints
    from .utils.io import atomic_write_text

    if not Path(args.video).is_file():
        raise InputError(f"video not found: {args.video}")
    predictor = Predictor(args.ckpt, num_clips=1)
    stream = None
    windows, pose_ms, frames = [], [], 0
    for rec in _pose_lines(args):
        if rec.get("end"):
            if rec.get("fatal"):
                raise InputError(f"{args.video}: pose estimation failed: {rec['error']}")
            if rec.get("error"):
                print(f"warning: {args.video}: {rec['error']} (after {rec.get('frames')} frames)", file=sys.stderr)
            continue
        if stream is None:
            stream = StreamRecognizer(predictor, args.window, args.stride, img_shape=(rec["h"], rec["w"]), topk=args.topk)
        frames += 1
        pose_ms.append(rec["pose_ms"])
        kp = sc = None
        if rec["keypoints"] is not None:
            kp, sc = np.asarray(rec["keypoints"], np.float32), np.asarray(rec["scores"], np.float32)
            if predictor.layout.name != "coco17":
                kp, sc = convert_keypoints(kp, sc, "coco17", predictor.layout)
        res = stream.push(kp, sc)
        if res is not None:
            label = ", ".join(f"{c} {p:.2f}" for c, p in res.topk) if res.topk else "(no person in the window)"
            pose_new = float(sum(pose_ms[-stream.stride:]))  # pose estimation of the frames new in this window
            print(f"frames {res.start:4d}-{res.end:4d}  persons in {res.valid_frames:3d}/{stream.window}  {label}  "
                  f"[recognition {res.latency_ms:.1f} ms, + pose of {stream.stride} new frames "
                  f"{pose_new:.0f} ms]", flush=True)
            windows.append({"start": res.start, "end": res.end, "valid_frames": res.valid_frames,
                            "topk": [{"class": c, "prob": p} for c, p in res.topk], "latency_ms": res.latency_ms,
                            "pose_ms_new_frames": pose_new})
    if stream is None:
        raise InputError(f"{args.video}: no frame could be decoded or the pose process failed")
    lat = [w["latency_ms"] for w in windows if w["topk"]]
    print(f"{frames} frames, {len(windows)} windows; pose {np.mean(pose_ms):.1f} ms/frame; recognition "
          + (f"{np.median(lat):.1f} ms/window (median)" if lat else "not run (no window had a person)"))
    if args.out:
        atomic_write_text(args.out, json.dumps({"video": str(args.video), "ckpt": str(args.ckpt),
                                                "window": stream.window, "stride": stream.stride,
                                                "pose_ms_mean": float(np.mean(pose_ms)), "windows": windows},
                                               indent=2) + "\n")
    return 0


def _box(text: str) -> tuple[float, ...]:
    from .pose.base import check_box

    try:
        return check_box(tuple(float(v) for v in text.split(",")), "--box")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_commands(sub: Any) -> None:
    p = sub.add_parser("predict", help="top-k classes of a video, keypoint JSON or pickle",
                       description="Print the top-k classes (probabilities) of INPUT with a trained recognizer.")
    p.add_argument("input", metavar="INPUT", help="video, COCO keypoint JSON, OpenPose JSON folder or PYSKL pickle")
    p.add_argument("--ckpt", required=True, action="append",
                   help="model.pth written by `finetec train` (or a Lightning .ckpt); repeat it to fuse several "
                        "models (skeleton streams, RGB) with Eq. 14")
    p.add_argument("--weights", type=float, nargs="+", default=None, metavar="W",
                   help="fusion weights, one per --ckpt (default: equal)")
    p.add_argument("--video-root", default=None, help="pickle + RGB model: folder of the entries' videos "
                   "(default: the RGB config's data.video.root)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--out", default=None, help="also write the predictions as JSON here")
    p.add_argument("--index", type=int, default=None, help="pickle: only this sample")
    p.add_argument("--frame-dir", default=None, help="pickle: only the sample with this frame_dir")
    p.add_argument("--img-shape", default=None, metavar="H,W", help="keypoint JSON: image size if not in the file")
    p.add_argument("--box", type=_box, default=None, metavar="X1,Y1,X2,Y2", help="first-frame box of the person")
    p.set_defaults(func=cmd_predict)
    s = sub.add_parser("stream", help="recognize a video over a sliding window as its frames arrive",
                       description="Estimate poses frame by frame and recognize over a sliding window.")
    s.add_argument("video", metavar="VIDEO")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--window", type=int, default=None, help="frames per window (default: the model's clip length)")
    s.add_argument("--stride", type=int, default=None, help="frames between answers (default: half a window)")
    s.add_argument("--topk", type=int, default=3)
    s.add_argument("--box", type=_box, default=None, metavar="X1,Y1,X2,Y2")
    s.add_argument("--max-frames", type=int, default=None)
    s.add_argument("--out", default=None, help="also write every window's answer as JSON here")
    s.set_defaults(func=cmd_stream)
