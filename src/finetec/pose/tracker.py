"""A simple single-person tracker: keeps one identity across frames.

Each frame, :meth:`SingleTracker.update` gets the persons a backend found and returns the one that continues the
track, or None (the frame is missing for this person). The reference is the box of the last accepted person, or
the box the user gave for the first frame (as the FineTec paper's Gym288 pipeline annotates a first-frame box).

Choices: a candidate continues the track when its keypoint box overlaps the reference with IoU >= ``min_iou``
(the best-overlapping one wins); failing that, the nearest candidate whose box centre lies within
``min(max_shift * (1 + lost), max_gate)`` reference-box diagonals (``lost`` = frames since the last match, so the
gate widens while the person is missing and a re-appearing person is picked up again, but not without bound: after
a long loss someone across the frame is not the tracked person) and whose box diagonal is within a factor
``max_scale`` of the reference's (a person much nearer or farther from the camera is someone else). With no reference yet (no user box,
nobody seen), the largest person (box area) starts the track. Boxes are tight boxes around joints scored above
``joint_thr``; the track box is the last accepted box, without smoothing. :meth:`SingleTracker.roi` gives the
region to search next (the reference box scaled by ``roi_scale * (1 + 0.5 * lost)``, clipped to the frame), which
a backend such as MediaPipe uses to look only around the tracked person.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import Box, PersonPose, box_iou, check_box, stack_boxes

__all__ = ["SingleTracker"]


class SingleTracker:
    """Keep one person across frames; ``box`` is an optional first-frame box ``(x1, y1, x2, y2)`` in pixels."""

    def __init__(self, box: Box | None = None, *, min_iou: float = 0.2, max_shift: float = 0.5,
                 max_gate: float = 1.0, max_scale: float = 2.0, joint_thr: float = 0.1, min_score: float = 0.0,
                 roi_scale: float = 1.5) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"SingleTracker: min_iou must be in (0, 1], got {min_iou}")
        if max_shift < 0:
            raise ValueError(f"SingleTracker: max_shift must be >= 0, got {max_shift}")
        if max_gate < max_shift:
            raise ValueError(f"SingleTracker: max_gate must be >= max_shift ({max_shift}), got {max_gate}")
        if max_scale < 1.0:
            raise ValueError(f"SingleTracker: max_scale must be >= 1, got {max_scale}")
        self.max_gate, self.max_scale = float(max_gate), float(max_scale)
        if roi_scale < 1.0:
            raise ValueError(f"SingleTracker: roi_scale must be >= 1, got {roi_scale}")
        self.min_iou, self.max_shift = float(min_iou), float(max_shift)
        self.joint_thr, self.min_score, self.roi_scale = float(joint_thr), float(min_score), float(roi_scale)
        self.reset(box)

    def reset(self, box: Box | None = None) -> None:
        """Start a new track (optionally from a user box)."""
        self.user_box = None if box is None else check_box(box, "tracker first-frame box")
        self.box: Box | None = self.user_box
        self.lost = 0
        self.matched = 0

    def update(self, persons: Sequence[PersonPose]) -> PersonPose | None:
        """The person continuing the track in this frame, or None."""
        cands = [p for p in persons if p.score is not None and p.score >= self.min_score]
        boxes, has = stack_boxes(cands, self.joint_thr)
        idx = np.flatnonzero(has)
        choice = None
        if idx.size:
            if self.box is None:
                area = (boxes[idx, 2] - boxes[idx, 0]) * (boxes[idx, 3] - boxes[idx, 1])
                choice = int(idx[np.argmax(area)])
            else:
                choice = self._associate(boxes[idx], idx)
        if choice is None:
            self.lost += 1
            return None
        self.box = tuple(float(v) for v in boxes[choice])  # type: ignore[assignment]
        self.lost = 0
        self.matched += 1
        return cands[choice]

    def _associate(self, boxes: np.ndarray, idx: np.ndarray) -> int | None:
        ref = self.box
        assert ref is not None
        iou = box_iou(ref, boxes)
        best = int(np.argmax(iou))
        if iou[best] >= self.min_iou:
            return int(idx[best])
        centre = np.array([(ref[0] + ref[2]) / 2, (ref[1] + ref[3]) / 2])
        diag = float(np.hypot(ref[2] - ref[0], ref[3] - ref[1]))
        c = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
        dist = np.linalg.norm(c - centre, axis=1) / max(diag, 1e-9)
        scale = np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / max(diag, 1e-9)
        ok = (scale <= self.max_scale) & (scale >= 1.0 / self.max_scale)
        dist = np.where(ok, dist, np.inf)
        near = int(np.argmin(dist))
        if dist[near] <= min(self.max_shift * (1 + self.lost), self.max_gate):
            return int(idx[near])
        return None

    def roi(self, frame_shape: tuple[int, ...]) -> Box | None:
        """Region ``(x1, y1, x2, y2)`` to search in the next frame (None: the whole frame); ``frame_shape`` is
        ``(H, W, ...)``."""
        if self.box is None:
            return None
        h, w = int(frame_shape[0]), int(frame_shape[1])
        x1, y1, x2, y2 = self.box
        s = self.roi_scale * (1 + 0.5 * self.lost)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = max(x2 - x1, y2 - y1) * s / 2  # square region: the person may turn or raise the arms
        box = (max(0.0, cx - half), max(0.0, cy - half), min(float(w), cx + half), min(float(h), cy + half))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        if box == (0.0, 0.0, float(w), float(h)):
            return None
        return box
