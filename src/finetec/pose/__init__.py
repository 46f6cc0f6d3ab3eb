"""Offline pose extraction: backends (frame -> persons), importers of other tools' keypoints, a single-person
tracker, and video/dataset extraction into PYSKL pickles. Imports neither torch nor mediapipe (the MediaPipe
backend imports it when built; it lives in the ``.venv-pose`` environment, see ``make pose-env``)."""

from .base import Box, PersonPose, PoseBackend, box_from_keypoints, box_iou
from .extract import (VideoEntry, annotation_from_poses, build_backend, collect_videos, detection_rates,
                      extract_dataset, extract_video, make_split, read_labels)
from .importers import ImportedPoses, PoseImportError, import_coco_keypoints, import_openpose
from .mediapipe_backend import MEDIAPIPE_TO_COCO17, MediaPipeBackend, mediapipe_available
from .tracker import SingleTracker

__all__ = ["Box", "PersonPose", "PoseBackend", "box_from_keypoints", "box_iou", "VideoEntry",
           "annotation_from_poses", "build_backend", "collect_videos", "detection_rates", "extract_dataset",
           "extract_video", "make_split", "read_labels", "ImportedPoses", "PoseImportError", "import_coco_keypoints",
           "import_openpose", "MEDIAPIPE_TO_COCO17", "MediaPipeBackend", "mediapipe_available", "SingleTracker"]
