"""Penn Action (Zhang et al., ICCV 2013): one MATLAB ``.mat`` label file per clip -> PYSKL annotations.

Each file holds ``action``, ``pose`` (camera viewpoint), ``x``/``y``/``visibility`` ``[T, 13]``, ``bbox [T, 4]``
(x1, y1, x2, y2), ``dimensions`` (h, w, T), ``nframes`` and ``train`` (1 = official train split, -1 = test).
Joints are in the ``penn13`` layout order.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from ..io import DataFileError, save_annotations

__all__ = ["PENN_CLASSES", "PENN_SOURCE", "read_penn_mat", "read_penn_action", "prepare_penn_action"]

#: the 15 Penn Action classes, alphabetical; a clip's label is the index of its action here
PENN_CLASSES: tuple[str, ...] = (
    "baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk", "golf_swing", "jump_rope",
    "jumping_jacks", "pullup", "pushup", "situp", "squat", "strum_guitar", "tennis_forehand", "tennis_serve",
)
PENN_SOURCE = "Penn Action (Zhang et al., ICCV 2013)"
_NUM_JOINTS = 13


def _scalar_str(mat: dict, key: str, path: Path) -> str:
    v = np.asarray(mat[key]).ravel()
    if v.size != 1:
        raise DataFileError(f"{path}: '{key}' should hold one string, got {v.size} values")
    return str(v[0])


def _scalar_int(mat: dict, key: str, path: Path) -> int:
    v = np.asarray(mat[key]).ravel()
    if v.size != 1 or not np.issubdtype(v.dtype, np.number):
        raise DataFileError(f"{path}: '{key}' should hold one number, got {v!r}")
    return int(v[0])


def read_penn_mat(path: "str | os.PathLike") -> dict[str, Any]:
    """One Penn Action label file as a PYSKL annotation dict.

    ``keypoint [1, T, 13, 2]`` float32 pixel coordinates as annotated (also for invisible joints),
    ``keypoint_score [1, T, 13]`` = the visibility flag (0 = missing joint), ``img_shape`` (h, w), ``label`` =
    index in :data:`PENN_CLASSES`, plus ``bbox [T, 4]`` float32, ``viewpoint`` (the ``pose`` field) and
    ``penn_train`` (bool). T is the length of ``x``/``y``/``visibility``; ``nframes``/``dimensions[2]`` are not
    trusted. Two official files have one ``bbox`` row fewer than frames: missing trailing rows repeat the last box
    and ``bbox_padded_frames`` says how many were filled (extra rows are cut).
    """
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except FileNotFoundError:
        raise
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError/OSError on corrupt files
        raise DataFileError(f"{path}: cannot read Penn Action .mat file ({type(e).__name__}: {e})") from e
    missing = [k for k in ("action", "pose", "x", "y", "visibility", "bbox", "dimensions", "train") if k not in mat]
    if missing:
        raise DataFileError(f"{path}: not a Penn Action label file, missing keys {missing}")

    action = _scalar_str(mat, "action", path)
    if action not in PENN_CLASSES:
        raise DataFileError(f"{path}: unknown action {action!r}; expected one of {list(PENN_CLASSES)}")
    x = np.asarray(mat["x"], dtype=np.float32)
    y = np.asarray(mat["y"], dtype=np.float32)
    vis = np.asarray(mat["visibility"])
    if x.ndim != 2 or x.shape[1] != _NUM_JOINTS or y.shape != x.shape or vis.shape != x.shape:
        raise DataFileError(f"{path}: x/y/visibility must all be [T, {_NUM_JOINTS}], got {x.shape}, {y.shape}, "
                            f"{vis.shape}")
    T = x.shape[0]
    if T == 0:
        raise DataFileError(f"{path}: clip has no frames")
    if not np.isin(vis, (0, 1)).all():
        raise DataFileError(f"{path}: visibility must be 0/1, found values {np.unique(vis)[:10].tolist()}")
    score = vis.astype(np.float32)
    kp = np.stack([x, y], axis=-1)
    bad = ~np.isfinite(kp).all(-1)
    if bad.any():  # never seen in the official files; a NaN joint is a missing joint
        kp[bad] = 0.0
        score[bad] = 0.0

    dims = np.asarray(mat["dimensions"]).ravel()
    if dims.size < 2 or not (dims[:2] > 0).all():
        raise DataFileError(f"{path}: 'dimensions' should be (h, w, T), got {dims.tolist()}")
    h, w = int(dims[0]), int(dims[1])

    bbox = np.asarray(mat["bbox"], dtype=np.float32)
    if bbox.ndim != 2 or bbox.shape[1] != 4 or bbox.shape[0] == 0:
        raise DataFileError(f"{path}: 'bbox' should be [T, 4], got {bbox.shape}")
    padded = max(T - bbox.shape[0], 0)
    if padded:
        bbox = np.concatenate([bbox, np.repeat(bbox[-1:], padded, axis=0)])
    bbox = bbox[:T]

    train = _scalar_int(mat, "train", path)
    if train not in (1, -1):
        raise DataFileError(f"{path}: 'train' should be 1 or -1, got {train}")
    ann: dict[str, Any] = {
        "frame_dir": path.stem,
        "label": PENN_CLASSES.index(action),
        "total_frames": T,
        "img_shape": (h, w),
        "original_shape": (h, w),
        "keypoint": kp[None],
        "keypoint_score": score[None],
        "bbox": bbox,
        "viewpoint": _scalar_str(mat, "pose", path),
        "penn_train": train == 1,
    }
    if padded:
        ann["bbox_padded_frames"] = padded
    return ann


def read_penn_action(src_dir: "str | os.PathLike", *, num_workers: int = 0) -> dict[str, Any]:
    """All ``*.mat`` files of a Penn Action ``labels/`` folder as a PYSKL dataset dict.

    ``split``: ``{'train': [...], 'test': [...]}`` from the official ``train`` flag (1,258 / 1,068 clips in the
    full release); ``meta``: layout ``penn13``, the class names and the source. ``num_workers > 0`` reads with that
    many processes.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise DataFileError(f"{src}: Penn Action labels folder not found")
    files = sorted(src.glob("*.mat"))
    if not files:
        raise DataFileError(f"{src}: no .mat label files")
    if num_workers > 0:
        with ProcessPoolExecutor(max_workers=num_workers) as ex:
            anns = list(ex.map(read_penn_mat, files, chunksize=max(1, len(files) // (4 * num_workers))))
    else:
        anns = [read_penn_mat(f) for f in files]
    split = {
        "train": [a["frame_dir"] for a in anns if a["penn_train"]],
        "test": [a["frame_dir"] for a in anns if not a["penn_train"]],
    }
    meta = {"layout": "penn13", "classes": list(PENN_CLASSES), "source": PENN_SOURCE}
    return {"split": split, "annotations": anns, "meta": meta}


def prepare_penn_action(src_dir: "str | os.PathLike", out_path: "str | os.PathLike", *,
                        num_workers: int = 0) -> dict[str, Any]:
    """Read Penn Action with :func:`read_penn_action` and write it (float32) atomically to ``out_path``."""
    data = read_penn_action(src_dir, num_workers=num_workers)
    save_annotations(data, out_path)
    return data
