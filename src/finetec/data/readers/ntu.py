"""NTU RGB+D 60/120 raw ``.skeleton`` text files -> :class:`SkeletonSample` (layout ``nturgbd25``).

File format (Kinect v2 SDK dump)::

    frameCount
    bodyCount                                   # per frame
    bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence handRightState
        isRestricted leanX leanY trackingState  # per body: 10 values
    jointCount                                  # 25
    x y z depthX depthY colorX colorY orientationW orientationX orientationY orientationZ trackingState  # x 25
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..io import DataFileError
from ..sample import SampleError, SkeletonSample

__all__ = ["read_ntu_skeleton", "parse_ntu_name", "NTU_IMG_SHAPE"]

NTU_IMG_SHAPE = (1080, 1920)  # Kinect v2 colour frames (h, w)
_NUM_JOINTS = 25
_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_TRACKING_SCORE = np.array([0.0, 0.5, 1.0], dtype=np.float32)  # trackingState 0 / 1 (inferred) / 2 (tracked)


def parse_ntu_name(name: str) -> dict[str, int]:
    """``S001C002P003R002A013`` -> ``{'setup': 1, 'camera': 2, 'performer': 3, 'replication': 2, 'action': 13}``;
    only the keys found (``action`` alone from a bare ``A###``)."""
    m = _NAME_RE.search(name)
    if m:
        return dict(zip(("setup", "camera", "performer", "replication", "action"), map(int, m.groups())))
    a = re.search(r"A(\d{3})", name)
    return {"action": int(a.group(1))} if a else {}


class _Lines:
    """Line cursor with 1-based line numbers for error messages."""

    def __init__(self, lines: list[str], path: Path):
        self.lines, self.path, self.i = lines, path, 0

    def fail(self, msg: str, lineno: int | None = None) -> DataFileError:
        return DataFileError(f"{self.path}:{self.i if lineno is None else lineno}: {msg}")

    def next_tokens(self, what: str) -> list[str]:
        if self.i >= len(self.lines):
            raise DataFileError(f"{self.path}: truncated at line {self.i + 1} (file has {len(self.lines)} lines): "
                                f"expected {what}")
        self.i += 1
        return self.lines[self.i - 1].split()

    def next_int(self, what: str) -> int:
        toks = self.next_tokens(what)
        if len(toks) != 1:
            raise self.fail(f"expected {what} (one integer), got {' '.join(toks)[:80]!r}")
        try:
            return int(toks[0])
        except ValueError:
            raise self.fail(f"expected {what} (one integer), got {toks[0]!r}") from None


def _first_bad_joint_line(lines: list[str], block_starts: list[int]) -> int:
    """0-based index of the first joint line that is not 12 numbers (slow path for error messages)."""
    for s in block_starts:
        for i in range(s, s + _NUM_JOINTS):
            toks = lines[i].split()
            try:
                if len(toks) == 12:
                    np.array(toks, dtype=np.float64)
                    continue
            except ValueError:
                pass
            return i
    return block_starts[0]


def read_ntu_skeleton(path: "str | os.PathLike", max_person: int = 2, coords: str = "3d") -> SkeletonSample:
    """Read one NTU RGB+D ``.skeleton`` file.

    coords: ``'3d'`` camera-space metres (x, y, z) or ``'2d'`` colour-image pixels (colorX, colorY) with
    ``img_shape`` (1080, 1920). Bodies are tracked by ``bodyID`` and ranked by motion energy (sum over x, y, z of
    the std of the 3D coordinates over the frames where the body is present, the PYSKL/ST-GCN ``get_nonzero_std``
    convention); the ``max_person`` most energetic are kept (M = min(#bodies, max_person)). Score: 1 tracked, 0.5
    inferred, 0 not tracked or body absent. Frames where no kept body is present have mask False.
    Label: action number from the file name's ``A###`` minus 1 (-1 if absent); id: the file stem.
    Truncated/malformed files raise :class:`DataFileError` with the line number; a file with no body in any
    frame raises :class:`SampleError`.
    """
    path = Path(path)
    if coords not in ("3d", "2d"):
        raise ValueError(f"coords must be '3d' or '2d', got {coords!r}")
    if max_person < 1:
        raise ValueError(f"max_person must be >= 1, got {max_person}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not a text .skeleton file ({e})") from e
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    cur = _Lines(lines, path)

    T = cur.next_int("frame count")
    if T < 0:
        raise cur.fail(f"negative frame count {T}")
    frame_of, body_ids, block_starts = [], [], []  # one entry per (frame, body)
    for t in range(T):
        n_body = cur.next_int(f"body count of frame {t + 1}/{T}")
        if n_body < 0:
            raise cur.fail(f"negative body count {n_body}")
        for b in range(n_body):
            info = cur.next_tokens(f"body info line (frame {t + 1}, body {b + 1})")
            if len(info) != 10:
                raise cur.fail(f"body info line must have 10 values, got {len(info)}")
            n_joint = cur.next_int(f"joint count (frame {t + 1}, body {b + 1})")
            if n_joint != _NUM_JOINTS:
                raise cur.fail(f"expected {_NUM_JOINTS} joints, got {n_joint}")
            if cur.i + n_joint > len(lines):
                raise DataFileError(f"{path}: truncated at line {len(lines) + 1} (file has {len(lines)} lines): "
                                    f"frame {t + 1} body {b + 1} needs {n_joint} joint lines from line {cur.i + 1}")
            frame_of.append(t)
            body_ids.append(info[0])  # kept as text: 17-digit ids do not survive float parsing
            block_starts.append(cur.i)
            cur.i += n_joint
    if cur.i < len(lines):
        raise cur.fail(f"unexpected data after the last of {T} frames: {lines[cur.i][:80]!r}", cur.i + 1)

    B = len(block_starts)
    if B == 0:
        raise SampleError(f"{path}: no body in any of the {T} frames (an NTU 'missing skeleton' sample)")
    block = "\n".join("\n".join(lines[s:s + _NUM_JOINTS]) for s in block_starts)
    try:
        vals = np.array(block.split(), dtype=np.float64)
        if vals.size != B * _NUM_JOINTS * 12:
            raise ValueError(f"{vals.size} values for {B * _NUM_JOINTS} joint lines")
    except ValueError as e:
        bad = _first_bad_joint_line(lines, block_starts)
        raise cur.fail(f"joint line must have 12 numbers, got {lines[bad].strip()[:80]!r}", bad + 1) from e
    vals = vals.reshape(B, _NUM_JOINTS, 12)
    if not np.isfinite(vals).all():
        b, j = np.argwhere(~np.isfinite(vals).all(-1))[0]
        raise cur.fail("non-finite joint value", block_starts[b] + j + 1)
    state = vals[..., 11]
    if not np.isin(state, (0, 1, 2)).all():
        b, j = np.argwhere(~np.isin(state, (0, 1, 2)))[0]
        raise cur.fail(f"joint trackingState must be 0, 1 or 2, got {state[b, j]:g}", block_starts[b] + j + 1)

    uniq, track = np.unique(np.asarray(body_ids), return_inverse=True)
    frame_of_a = np.asarray(frame_of)
    P = len(uniq)
    key = track * T + frame_of_a
    if np.unique(key).size != B:
        dup = np.flatnonzero(np.bincount(key, minlength=P * T) > 1)[0]
        raise DataFileError(f"{path}: body {uniq[dup // T]} appears twice in frame {dup % T + 1}")
    data = np.zeros((P, T, _NUM_JOINTS, 12), dtype=np.float64)
    present = np.zeros((P, T), dtype=bool)
    data[track, frame_of_a] = vals
    present[track, frame_of_a] = True

    # motion energy: sum_c std over (present frames, joints) of coordinate c (PYSKL/ST-GCN get_nonzero_std)
    xyz = data[..., :3]
    w = present[:, :, None, None]
    n = np.maximum(present.sum(1) * _NUM_JOINTS, 1)[:, None]
    mean = (xyz * w).sum((1, 2)) / n
    var = (((xyz - mean[:, None, None]) ** 2) * w).sum((1, 2)) / n
    energy = np.sqrt(var).sum(-1)
    keep = np.argsort(-energy, kind="stable")[:max_person]

    data, present = data[keep], present[keep]
    kp = data[..., 0:3] if coords == "3d" else data[..., 5:7]
    score = _TRACKING_SCORE[data[..., 11].astype(np.int64)] * present[:, :, None]
    meta = {k: v for k, v in parse_ntu_name(path.stem).items() if k != "action"}
    action = parse_ntu_name(path.stem).get("action")
    return SkeletonSample(
        keypoint=kp.astype(np.float32),
        score=score.astype(np.float32),
        mask=present.any(0),
        label=action - 1 if action is not None else -1,
        id=path.stem,
        img_shape=NTU_IMG_SHAPE if coords == "2d" else None,
        layout="nturgbd25",
        meta=meta,
    )
