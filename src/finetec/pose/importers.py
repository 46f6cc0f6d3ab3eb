"""Importers for keypoints made by other tools, as per-frame candidate lists in COCO-17.

* :func:`import_openpose`: a folder of OpenPose per-frame JSON files (``--write_json``; ``people[i]
  ['pose_keypoints_2d']`` = x, y, c per joint). BODY_25 output (25 joints) is reduced to OpenPose's COCO-18 order
  (dropping MidHip and the six foot joints) and, like COCO-18 output, mapped to ``coco17`` through
  :func:`finetec.layouts.convert_keypoints` (the layout ``openpose18``).
* :func:`import_coco_keypoints`: a COCO keypoint JSON, either a results list (``[{image_id, keypoints, score},
  ...]``, what MMPose/Detectron2 write) or a dataset dict with ``images`` and ``annotations``.

Both return :class:`ImportedPoses`; :func:`finetec.pose.extract.annotation_from_poses` picks one person per frame
with the tracker and builds the PYSKL annotation. Frames without a file or without people are empty (missing).

Choices: an OpenPose frame's index is the number before ``_keypoints.json`` (else the last number in the file
name), counted from 0 as OpenPose does; files without numbers are taken in name order. A joint with confidence 0
is missing (score 0). In a COCO results list ``image_id - image_id_offset`` is the frame index and a joint's
third value is its score; in a COCO dataset dict the frames are the ``images`` sorted by ``frame_id`` (if every
image has one) else by ``id``, and the third value is a visibility flag (score 1 if > 0 else 0).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from finetec.data.io import DataFileError
from finetec.layouts import convert_keypoints

from .base import PersonPose

__all__ = ["ImportedPoses", "PoseImportError", "BODY25_TO_OPENPOSE18", "import_openpose", "import_coco_keypoints",
           "openpose_to_coco17"]

#: BODY_25 index of each OpenPose COCO-18 joint (BODY_25 = COCO-18 with MidHip at 8 and six foot joints at 19-24)
BODY25_TO_OPENPOSE18 = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], dtype=np.int64)
_OPENPOSE_JOINTS = {25: "BODY_25", 18: "COCO-18"}


class PoseImportError(DataFileError):
    """A keypoint file from another tool cannot be read; the message names the file and the place."""


@dataclass
class ImportedPoses:
    """Per-frame candidates (``frames[t]`` = persons in frame t, COCO-17), the image shape ``(h, w)`` when the
    file says it, and where they came from."""

    frames: list[list[PersonPose]]
    img_shape: tuple[int, int] | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_frames(self) -> int:
        return len(self.frames)


def openpose_to_coco17(people: np.ndarray, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``people [K, V, 3]`` OpenPose (x, y, c) with V = 25 (BODY_25) or 18 (COCO-18) -> COCO-17 ``keypoints
    [K, 17, 2]`` and ``scores [K, 17]``."""
    people = np.asarray(people, dtype=np.float32)
    if people.ndim != 3 or people.shape[-1] != 3 or people.shape[1] not in _OPENPOSE_JOINTS:
        raise PoseImportError(f"{where or 'OpenPose keypoints'}: expected [K, 25 or 18, 3] (BODY_25 or COCO-18), "
                              f"got shape {people.shape}")
    if people.shape[1] == 25:
        people = people[:, BODY25_TO_OPENPOSE18]
    score = np.clip(people[..., 2], 0.0, None)
    return convert_keypoints(people[..., :2], score, "openpose18", "coco17")


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise PoseImportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PoseImportError(f"{path}: not readable JSON ({type(e).__name__}: {e})") from e


def _flat_keypoints(values: Any, where: str, joints: Sequence[int]) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise PoseImportError(f"{where}: keypoints must be a flat list of numbers") from None
    if arr.size % 3 or arr.size // 3 not in joints:
        raise PoseImportError(f"{where}: {arr.size} keypoint numbers; expected 3 x one of {sorted(joints)} joints")
    if not np.isfinite(arr).all():
        raise PoseImportError(f"{where}: non-finite keypoint values")
    return arr.reshape(-1, 3)


def _persons(kp: np.ndarray, sc: np.ndarray, person_scores: Sequence[float | None]) -> list[PersonPose]:
    return [PersonPose(k, s, "coco17", ps) for k, s, ps in zip(kp, sc, person_scores)]


_NUM_RE = re.compile(r"(\d+)_keypoints\.json$")
_LAST_NUM_RE = re.compile(r"(\d+)(?!.*\d)")


def import_openpose(folder: "str | os.PathLike", *, total_frames: int | None = None,
                    img_shape: tuple[int, int] | None = None) -> ImportedPoses:
    """Read an OpenPose ``--write_json`` folder (one ``*.json`` per frame) into per-frame COCO-17 candidates."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PoseImportError(f"OpenPose folder {folder}: no such folder")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise PoseImportError(f"OpenPose folder {folder}: no *.json files")
    numbers = []
    for f in files:
        m = _NUM_RE.search(f.name) or _LAST_NUM_RE.search(f.stem)
        numbers.append(int(m.group(1)) if m else None)
    if all(n is None for n in numbers):
        index = list(range(len(files)))
    elif any(n is None for n in numbers):
        bad = files[numbers.index(None)].name
        raise PoseImportError(f"OpenPose folder {folder}: file {bad} has no frame number while others do")
    else:
        index = [int(n) for n in numbers]  # type: ignore[arg-type]
        if len(set(index)) != len(index):
            raise PoseImportError(f"OpenPose folder {folder}: two files share a frame number")
    T = max(index) + 1 if total_frames is None else int(total_frames)
    if max(index) >= T:
        raise PoseImportError(f"OpenPose folder {folder}: frame {max(index)} beyond total_frames={T}")
    frames: list[list[PersonPose]] = [[] for _ in range(T)]
    kinds = set()
    for f, t in zip(files, index):
        data = _read_json(f)
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise PoseImportError(f"{f}: expected an OpenPose dict with a 'people' list")
        arrs = []
        for i, p in enumerate(people):
            where = f"{f}: people[{i}]"
            if not isinstance(p, dict) or "pose_keypoints_2d" not in p:
                raise PoseImportError(f"{where}: no 'pose_keypoints_2d'")
            if not p["pose_keypoints_2d"]:
                continue  # OpenPose writes [] when body keypoints were not computed
            arrs.append(_flat_keypoints(p["pose_keypoints_2d"], where, (25, 18)))
        if not arrs:
            continue
        if len({a.shape[0] for a in arrs}) != 1:
            raise PoseImportError(f"{f}: people have different joint counts {[a.shape[0] for a in arrs]}")
        stacked = np.stack(arrs)
        kinds.add(_OPENPOSE_JOINTS[stacked.shape[1]])
        kp, sc = openpose_to_coco17(stacked, str(f))
        frames[t] = _persons(kp, sc, [None] * len(kp))
    if len(kinds) > 1:
        raise PoseImportError(f"OpenPose folder {folder}: mixes {sorted(kinds)} outputs")
    return ImportedPoses(frames, img_shape, str(folder), {"openpose_model": kinds.pop() if kinds else None})


def import_coco_keypoints(path: "str | os.PathLike", *, total_frames: int | None = None, image_id_offset: int = 0,
                          img_shape: tuple[int, int] | None = None) -> ImportedPoses:
    """Read COCO keypoints (a results list, or a dataset dict with ``images``/``annotations``) of one video."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        items, frame_of, dataset = data, None, False
    elif isinstance(data, dict) and isinstance(data.get("annotations"), list):
        items, dataset = data["annotations"], True
        images = data.get("images") or []
        if not isinstance(images, list) or not all(isinstance(im, dict) and "id" in im for im in images):
            raise PoseImportError(f"{path}: 'images' must be a list of dicts with an 'id'")
        key = "frame_id" if images and all("frame_id" in im for im in images) else "id"
        order = sorted(images, key=lambda im: im[key])
        frame_of = {im["id"]: t for t, im in enumerate(order)}
        if img_shape is None and order and all("height" in im and "width" in im for im in order[:1]):
            img_shape = (int(order[0]["height"]), int(order[0]["width"]))
        if total_frames is None and order:
            total_frames = len(order)
    else:
        raise PoseImportError(f"{path}: expected a COCO results list or a dict with 'annotations'")
    per_frame: dict[int, list[tuple[np.ndarray, float | None]]] = {}
    for i, item in enumerate(items):
        where = f"{path}: entry {i}"
        if not isinstance(item, dict) or "keypoints" not in item or "image_id" not in item:
            raise PoseImportError(f"{where}: needs 'image_id' and 'keypoints'")
        if item.get("category_id", 1) != 1:
            continue  # only persons carry keypoints
        img = item["image_id"]
        if frame_of is not None:
            if img not in frame_of:
                raise PoseImportError(f"{where}: image_id {img!r} is not in 'images'")
            t = frame_of[img]
        else:
            if not isinstance(img, int) or isinstance(img, bool):
                raise PoseImportError(f"{where}: image_id must be an int frame number, got {img!r}")
            t = img - image_id_offset
            if t < 0:
                raise PoseImportError(f"{where}: image_id {img} < image_id_offset {image_id_offset}")
        arr = _flat_keypoints(item["keypoints"], where, (17,))
        score = item.get("score")
        per_frame.setdefault(t, []).append((arr, None if score is None else float(score)))
    if not per_frame and total_frames is None:
        raise PoseImportError(f"{path}: no person keypoints and no total_frames given")
    T = (max(per_frame) + 1 if per_frame else 0) if total_frames is None else int(total_frames)
    if per_frame and max(per_frame) >= T:
        raise PoseImportError(f"{path}: frame {max(per_frame)} beyond total_frames={T}")
    frames: list[list[PersonPose]] = [[] for _ in range(T)]
    for t, entries in per_frame.items():
        arr = np.stack([e[0] for e in entries])
        sc = (arr[..., 2] > 0).astype(np.float32) if dataset else np.clip(arr[..., 2], 0.0, None)
        frames[t] = _persons(arr[..., :2], sc, [e[1] for e in entries])
    return ImportedPoses(frames, img_shape, str(path), {"format": "coco-dataset" if dataset else "coco-results"})
