"""MediaPipe Pose (``mediapipe==0.10.21``, fully offline) as a :class:`~finetec.pose.base.PoseBackend`.

MediaPipe's wheel carries ``pose_landmark_full.tflite`` only, so ``model_complexity=1`` is the one setting that
runs without a download. MediaPipe needs numpy < 2 and brings opencv-contrib: it lives in its own environment
(``make pose-env`` -> ``.venv-pose``); this module imports it only when a backend is built.

Its 33 landmarks map to COCO-17 by the indices :data:`MEDIAPIPE_TO_COCO17`; a joint's score is the landmark's
``visibility``. MediaPipe finds at most one person per frame.

Choices: on the whole frame the backend runs MediaPipe's video mode (``static_image_mode=False``: the detector
runs only when tracking is lost, landmarks are smoothed); given a region (``roi``, from a user's first-frame box
through the tracker) it runs image mode on the crop, since a moving crop would break MediaPipe's own tracking.
Landmarks MediaPipe places outside the frame are kept as predicted (with their visibility as score).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from .base import Box, PersonPose, PoseBackend

__all__ = ["MEDIAPIPE_TO_COCO17", "MediaPipeBackend", "mediapipe_available", "landmarks_to_coco17"]

#: MediaPipe landmark index of each COCO-17 joint (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles)
MEDIAPIPE_TO_COCO17 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], dtype=np.int64)
NUM_LANDMARKS = 33


def mediapipe_available() -> bool:
    """True when ``mediapipe`` can be imported in this environment (checked without importing it)."""
    return importlib.util.find_spec("mediapipe") is not None


def landmarks_to_coco17(landmarks: np.ndarray, width: float, height: float,
                        offset: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """``landmarks [33, 3]`` (normalised x, y, visibility) -> COCO-17 ``keypoints [17, 2]`` pixels and
    ``scores [17]``; ``width``/``height`` are the size of the image MediaPipe saw, ``offset`` its top-left corner
    in the full frame."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks_to_coco17: expected [33, 3] (x, y, visibility), got shape {landmarks.shape}")
    sel = landmarks[MEDIAPIPE_TO_COCO17]
    kp = sel[:, :2] * np.array([width, height]) + np.asarray(offset, dtype=np.float64)
    return kp.astype(np.float32), np.clip(sel[:, 2], 0.0, 1.0).astype(np.float32)


class MediaPipeBackend(PoseBackend):
    """MediaPipe Pose; see the module docstring for the modes."""

    name = "mediapipe"
    layout = "coco17"

    def __init__(self, *, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 smooth_landmarks: bool = True, model_complexity: int = 1) -> None:
        if model_complexity != 1:
            raise ValueError(f"MediaPipeBackend: model_complexity={model_complexity} needs a model download; only 1 "
                             "(pose_landmark_full.tflite, shipped in the mediapipe wheel) runs offline")
        for k, v in (("min_detection_confidence", min_detection_confidence),
                     ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"MediaPipeBackend: {k} must be in [0, 1], got {v}")
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as e:
            raise ImportError("MediaPipeBackend needs mediapipe==0.10.21, which lives in its own environment: run "
                              "`make pose-env` and use .venv-pose/bin/python (or set $FINETEC_POSE_PYTHON)") from e
        self._mp_pose = mp_pose
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.smooth_landmarks = bool(smooth_landmarks)
        self._graphs: dict[bool, Any] = {}

    def _graph(self, static: bool) -> Any:
        g = self._graphs.get(static)
        if g is None:
            g = self._mp_pose.Pose(static_image_mode=static, model_complexity=1,
                                   smooth_landmarks=self.smooth_landmarks and not static, enable_segmentation=False,
                                   min_detection_confidence=self.min_detection_confidence,
                                   min_tracking_confidence=self.min_tracking_confidence)
            self._graphs[static] = g
        return g

    def process(self, frame: np.ndarray, roi: Box | None = None) -> list[PersonPose]:
        frame = self.check_frame(frame)
        h, w = frame.shape[:2]
        if roi is None:
            image, offset, graph = frame, (0.0, 0.0), self._graph(False)
        else:
            x1, y1 = max(0, int(np.floor(roi[0]))), max(0, int(np.floor(roi[1])))
            x2, y2 = min(w, int(np.ceil(roi[2]))), min(h, int(np.ceil(roi[3])))
            if x2 - x1 < 2 or y2 - y1 < 2:
                raise ValueError(f"MediaPipeBackend: roi {roi} leaves no pixels of the {w}x{h} frame")
            image, offset, graph = np.ascontiguousarray(frame[y1:y2, x1:x2]), (float(x1), float(y1)), self._graph(True)
        result = graph.process(image)
        if result.pose_landmarks is None:
            return []
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        kp, sc = landmarks_to_coco17(lm, image.shape[1], image.shape[0], offset)
        return [PersonPose(kp, sc, self.layout)]

    def reset(self) -> None:
        """Restart the graphs: the next video starts with a fresh detector and no tracking/smoothing history."""
        for g in self._graphs.values():
            g.reset()

    def close(self) -> None:
        for g in self._graphs.values():
            g.close()
        self._graphs.clear()

    def config(self) -> dict[str, Any]:
        return {"backend": self.name, "model_complexity": 1, "min_detection_confidence": self.min_detection_confidence,
                "min_tracking_confidence": self.min_tracking_confidence, "smooth_landmarks": self.smooth_landmarks}
