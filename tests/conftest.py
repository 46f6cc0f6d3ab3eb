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
