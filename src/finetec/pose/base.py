"""The pose-backend interface and its result types.

A backend turns one RGB frame into the persons it finds there, each a :class:`PersonPose` (keypoints in pixels,
per-joint scores, in a named layout from :mod:`finetec.layouts`). An empty list means no person was found: the
frame is a real missing frame, and extraction keeps it as such (``frame_mask`` False), never filling it in.
Nothing here imports torch.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from finetec.layouts import get_layout

__all__ = ["Box", "PersonPose", "PoseBackend", "box_from_keypoints", "box_iou", "check_box", "stack_boxes"]

#: ``(x1, y1, x2, y2)`` in pixels
Box = tuple[float, float, float, float]


def check_box(box: Any, where: str = "box") -> Box:
    """A validated ``(x1, y1, x2, y2)`` box with x2 > x1 and y2 > y1 (finite numbers)."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected 4 numbers x1, y1, x2, y2, got {box!r}") from None
    if b.shape != (4,) or not np.isfinite(b).all():
        raise ValueError(f"{where}: expected 4 finite numbers x1, y1, x2, y2, got {box!r}")
    if b[2] <= b[0] or b[3] <= b[1]:
        raise ValueError(f"{where}: need x2 > x1 and y2 > y1, got {tuple(b.tolist())}")
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def box_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, thr: float = 0.0) -> Box | None:
    """Tight box around the joints whose score is above ``thr``; None when there is no such joint."""
    ok = scores > thr
    if not ok.any():
        return None
    pts = keypoints[ok]
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    return (float(x1), float(y1), float(max(x2, x1 + 1.0)), float(max(y2, y1 + 1.0)))


def box_iou(a: Box, boxes: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` with each row of ``boxes [K, 4]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[2], boxes[:, 2]) - np.maximum(a[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], boxes[:, 3]) - np.maximum(a[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area_a + areas - inter, 1e-9)


@dataclass
class PersonPose:
    """One detected person: ``keypoints [V, 2]`` float32 pixels (x, y), ``scores [V]`` float32 (0 = joint not
    found), ``layout`` the joint layout's name, ``score`` the person's confidence (mean joint score if None)."""

    keypoints: np.ndarray
    scores: np.ndarray
    layout: str = "coco17"
    score: float | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        sc = np.asarray(self.scores, dtype=np.float32)
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"PersonPose: keypoints must be [V, 2], got shape {kp.shape}")
        if sc.shape != (kp.shape[0],):
            raise ValueError(f"PersonPose: scores must be [V={kp.shape[0]}], got shape {sc.shape}")
        n = get_layout(self.layout).num_joints
        if kp.shape[0] != n:
            raise ValueError(f"PersonPose: layout {self.layout!r} has {n} joints, keypoints have {kp.shape[0]}")
        if not (np.isfinite(kp).all() and np.isfinite(sc).all()):
            raise ValueError("PersonPose: keypoints and scores must be finite (mark missing joints with score 0)")
        kp = np.where(sc[:, None] > 0, kp, 0.0).astype(np.float32)  # a joint not found has no position
        self.keypoints, self.scores = kp, sc
        if self.score is None:
            self.score = float(sc.mean()) if sc.size else 0.0

    def box(self, thr: float = 0.0) -> Box | None:
        """Box around the joints scored above ``thr`` (None if none)."""
        return box_from_keypoints(self.keypoints, self.scores, thr)


class PoseBackend(abc.ABC):
    """Frame -> persons. Subclasses set ``name`` and ``layout`` and implement :meth:`process`.

    ``process(frame, roi)``: ``frame`` is ``[H, W, 3]`` RGB uint8; ``roi`` an optional ``(x1, y1, x2, y2)`` region
    where the tracked person is expected (a backend may look only there; coordinates stay full-frame pixels).
    :meth:`reset` is called before each new video (backends with temporal state drop it).
    """

    name: str = "backend"
    layout: str = "coco17"

    @abc.abstractmethod
    def process(self, frame: np.ndarray, roi: Box | None = None) -> list[PersonPose]:
        """Persons found in ``frame`` (empty list: nobody)."""

    def reset(self) -> None:
        """Forget temporal state before a new video."""

    def close(self) -> None:
        """Release resources."""

    def config(self) -> dict[str, Any]:
        """Settings that change the output (stored with results so a resumed run can tell them apart)."""
        return {"backend": self.name}

    def __enter__(self) -> "PoseBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def check_frame(frame: np.ndarray) -> np.ndarray:
        """Raise a clear error unless ``frame`` is ``[H, W, 3]`` uint8."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            shape = getattr(frame, "shape", None)
            dtype = getattr(frame, "dtype", type(frame).__name__)
            raise ValueError(f"pose backend: frame must be an [H, W, 3] RGB uint8 array, got shape {shape} "
                             f"dtype {dtype}")
        return frame


def stack_boxes(persons: Sequence[PersonPose], thr: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes [K, 4], has_box [K])`` of the persons (rows without a box are zero)."""
    boxes = np.zeros((len(persons), 4), dtype=np.float64)
    has = np.zeros(len(persons), dtype=bool)
    for i, p in enumerate(persons):
        b = p.box(thr)
        if b is not None:
            boxes[i], has[i] = b, True
    return boxes, has
