"""Test helpers: a small real backend that finds coloured squares in decoded frames, and a writer for videos of
such squares (PyAV, mpeg4). Importable by worker processes as ``pose_helpers:BlobBackend``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from finetec.pose.base import PersonPose, PoseBackend

COLOURS = {"white": (255, 255, 255), "magenta": (255, 0, 255)}
SIZE = 12  # side of a square, pixels


class BlobBackend(PoseBackend):
    """One 'person' per palette colour present (>= 20 pixels within ``tol``): 17 joints on a 4-column grid over the
    colour's bounding box, every joint scored 0.9. With a ``roi`` it looks only inside it."""

    name = "blob"
    layout = "coco17"

    def __init__(self, tol: int = 70) -> None:
        self.tol = tol
        self.rois: list = []

    def process(self, frame, roi=None):
        frame = self.check_frame(frame)
        self.rois.append(roi)
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (0, 0, w, h) if roi is None else (int(roi[0]), int(roi[1]), int(np.ceil(roi[2])),
                                                              int(np.ceil(roi[3])))
        sub = frame[y0:y1, x0:x1].astype(np.int64)
        out = []
        for c in COLOURS.values():
            ys, xs = np.nonzero((np.abs(sub - np.array(c)) < self.tol).all(-1))
            if ys.size < 20:
                continue
            bx1, bx2, by1, by2 = xs.min() + x0, xs.max() + x0, ys.min() + y0, ys.max() + y0
            j = np.arange(17)
            kp = np.stack([bx1 + (bx2 - bx1) * (j % 4) / 3, by1 + (by2 - by1) * (j // 4) / 4], 1)
            out.append(PersonPose(kp, np.full(17, 0.9), "coco17"))
        return out


def write_blob_video(path: Path, frames: Sequence[dict], w: int = 96, h: int = 64, fps: int = 10) -> Path:
    """``frames[t]`` maps a colour name to the top-left (x, y) of its square in frame t (missing = absent)."""
    import av

    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for spec in frames:
        img = np.full((h, w, 3), 40, dtype=np.uint8)
        for name, (x, y) in spec.items():
            img[y:y + SIZE, x:x + SIZE] = COLOURS[name]
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path
