"""Shared fixtures.

- ``data_root``: the shared data folder (``$FINETEC_DATA`` or ``../shared/data`` next to the repository); tests
  that need it are skipped cleanly where it is absent.
- ``penn_dir``: Penn Action's ``labels/`` folder under ``data_root``.
- ``tiny_pyskl``: a small generated PYSKL pickle (coco17, float16 keypoints, scores, one sample with dropped
  frames, split train/val, meta with class names) written to ``tmp_path``; see :func:`make_tiny_pyskl`.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path | None:
    env = os.environ.get("FINETEC_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("shared data folder not found (set $FINETEC_DATA)")
    return root


@pytest.fixture(scope="session")
def penn_dir(data_root: Path) -> Path:
    d = data_root / "penn_action" / "labels"
    if not d.is_dir() or not any(d.glob("*.mat")):
        pytest.skip(f"Penn Action labels not found under {d}")
    return d


TINY_CLASSES = ["vault", "floor", "beam"]


def make_tiny_pyskl(seed: int = 0, num: int = 6, V: int = 17) -> dict[str, Any]:
    """A PYSKL dict like the ones PYSKL ships: float16 ``keypoint [1, T, V, 2]`` in pixels, ``keypoint_score``
    (some zeros), ``img_shape``, labels 0..2 cycling; sample 1 has a ``frame_mask`` with 3 dropped frames;
    split ``train`` = even samples, ``val`` = odd samples."""
    rng = np.random.default_rng(seed)
    anns = []
    for i in range(num):
        T = 10 + 3 * i
        kp = rng.uniform(0, 480, size=(1, T, V, 2)).astype(np.float16)
        score = rng.uniform(0.2, 1.0, size=(1, T, V)).astype(np.float16)
        score[0, :, i % V] = 0  # one missing joint track per sample
        ann = {"frame_dir": f"clip_{i:03d}", "label": i % len(TINY_CLASSES), "total_frames": T,
               "img_shape": (480, 640), "original_shape": (480, 640), "keypoint": kp, "keypoint_score": score}
        if i == 1:
            mask = np.ones(T, bool)
            mask[[2, 3, 7]] = False
            ann["frame_mask"] = mask
        anns.append(ann)
    split = {"train": [a["frame_dir"] for a in anns[0::2]], "val": [a["frame_dir"] for a in anns[1::2]]}
    return {"split": split, "annotations": anns, "meta": {"layout": "coco17", "classes": list(TINY_CLASSES),
                                                         "source": "generated test data"}}


@pytest.fixture
def tiny_pyskl(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_pyskl.pkl"
    with open(path, "wb") as f:  # written the way PYSKL/mmcv writes its pickles
        pickle.dump(make_tiny_pyskl(), f, protocol=4)
    return path


def write_square_video(path: Path, centres: np.ndarray, w: int = 64, h: int = 48, side: int = 10,
                       fps: int = 10) -> Path:
    """A video of a white ``side`` x ``side`` square on a dark grey background, centred at ``centres[t]`` (x, y) in
    frame t (written by finetec's own video writer)."""
    from finetec.viz.video import write_video

    frames = []
    for cx, cy in np.asarray(centres, dtype=np.int64):
        img = np.full((h, w, 3), 40, np.uint8)
        img[max(cy - side // 2, 0):cy + side // 2, max(cx - side // 2, 0):cx + side // 2] = 255
        frames.append(img)
    write_video(frames, path, fps=fps)
    return path


def make_video_dataset(root: Path, per_class: tuple[int, int] = (4, 2), T: int = 10) -> Path:
    """Small videos + skeletons: class 0's square moves right, class 1's moves down, class 2's stays; 17 COCO joints
    scattered around the square (so the activity box covers it). Sample ``c0_train0`` has a ``filename`` key (the
    others are found as ``<frame_dir>.mp4``); ``c2_test1`` has no observed joint. Returns the pickle path; videos
    are in ``root/videos``."""
    import pickle as _pickle

    rng = np.random.default_rng(0)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    anns, split = [], {"train": [], "test": []}
    t = np.arange(T)
    for c in range(3):
        for part, n in zip(("train", "test"), per_class):
            for i in range(n):
                start = rng.integers(14, 20, 2)
                step = {0: (3, 0), 1: (0, 2), 2: (0, 0)}[c]
                centres = start[None] + t[:, None] * np.array(step)[None]
                fd = f"c{c}_{part}{i}"
                write_square_video(root / "videos" / f"{fd}.mp4", centres)
                kp = centres[None, :, None, :] + rng.uniform(-5, 5, (1, T, 17, 2))
                score = np.ones((1, T, 17), np.float32)
                if fd == "c2_test1":
                    score[:] = 0
                    kp[:] = 0
                ann = {"frame_dir": fd, "label": c, "total_frames": T, "img_shape": (48, 64),
                       "original_shape": (48, 64), "keypoint": kp.astype(np.float32), "keypoint_score": score}
                if fd == "c0_train0":
                    ann["filename"] = f"{fd}.mp4"
                anns.append(ann)
                split[part].append(fd)
    path = root / "video_ann.pkl"
    with open(path, "wb") as f:
        _pickle.dump({"split": split, "annotations": anns,
                      "meta": {"layout": "coco17", "classes": ["right", "down", "still"], "source": "generated"}},
                     f, protocol=4)
    return path


@pytest.fixture
def tiny_videos(tmp_path: Path) -> Path:
    """``make_video_dataset`` in ``tmp_path``: the pickle path (videos in its folder's ``videos/``)."""
    pytest.importorskip("av")
    return make_video_dataset(tmp_path)
