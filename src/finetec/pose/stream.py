"""Per-frame poses of a video as they are computed: :func:`iter_video_poses` (a generator) and
``python -m finetec.pose.stream VIDEO`` (one JSON line per frame on stdout, flushed at once).

This is how ``finetec stream`` gets poses while the video is decoded: MediaPipe lives in the ``.venv-pose``
environment (numpy < 2, no torch), the recognizer in the main one, so the recognizer's process reads these lines
from a child process. A line is ``{"t": frame index, "keypoints": [[x, y], ...] | null, "scores": [...] | null,
"h": height, "w": width, "pose_ms": time of the pose estimation of that frame}``; ``keypoints`` is null when no
person was found (a missing frame). The last line is ``{"end": true, "frames": N, "error": null | message}``.
Torch-free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Iterator, Sequence

from .base import Box, PoseBackend
from .tracker import SingleTracker

__all__ = ["iter_video_poses", "main"]


def iter_video_poses(path: "str | os.PathLike", backend: PoseBackend, box: Box | None = None,
                     max_frames: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per decoded frame (see the module docstring), then the end record."""
    from ..video.io import VideoReader

    tracker = SingleTracker(box)
    backend.reset()
    n = 0
    with VideoReader(path, max_frames=max_frames) as reader:
        h, w = reader.info.height, reader.info.width
        for frame in reader:
            t0 = time.perf_counter()
            roi = (tracker.roi(frame.shape) or (0.0, 0.0, float(w), float(h))) if box is not None else None
            person = tracker.update(backend.process(frame, roi))
            ms = (time.perf_counter() - t0) * 1e3
            yield {"t": n, "keypoints": None if person is None else person.keypoints.round(2).tolist(),
                   "scores": None if person is None else person.scores.round(4).tolist(), "h": h, "w": w,
                   "pose_ms": round(ms, 2)}
            n += 1
        error = reader.error
    yield {"end": True, "frames": n, "error": None if error is None else str(error)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m finetec.pose.stream", description=__doc__.split("\n\n")[0])
    p.add_argument("video")
    p.add_argument("--backend", default="mediapipe")
    p.add_argument("--box", default=None, help="first-frame box x1,y1,x2,y2 of the person to follow")
    p.add_argument("--max-frames", type=int, default=None)
    args = p.parse_args(argv)
    from .base import check_box
    from .extract import build_backend

    try:
        box = check_box(tuple(float(v) for v in args.box.split(","))) if args.box else None
        backend = build_backend(args.backend)
        for rec in iter_video_poses(args.video, backend, box, args.max_frames):
            sys.stdout.write(json.dumps(rec) + "\n")
            sys.stdout.flush()
    except Exception as e:  # reported in the end record, so the reading process can say what went wrong
        sys.stdout.write(json.dumps({"end": True, "frames": -1, "error": f"{type(e).__name__}: {e}",
                                     "fatal": True}) + "\n")
        sys.stdout.flush()
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
