"""MediaPipe on real clips, through the pose environment (``.venv-pose``, built by ``make pose-env``).

Runs ``finetec data extract`` from this (torch) environment, which has no mediapipe, so the command re-runs itself
with ``.venv-pose/bin/python``: on a Florence clip, on the first frames of sports2d_demo.mp4, and on the same
Florence clip with a camera dropout (frames 8-11 black), whose frames must come back marked missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from finetec.data.io import load_annotations  # noqa: E402
from finetec.pose import cli as pose_cli  # noqa: E402
from finetec.video import read_video  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
POSE_PY = REPO / ".venv-pose" / "bin" / "python"
DROPOUT = range(8, 12)
T = 24


def _write(path: Path, frames: np.ndarray, fps: int) -> None:
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=fps)
    s.width, s.height, s.pix_fmt, s.bit_rate = frames.shape[2], frames.shape[1], "yuv420p", 4_000_000
    for f in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()


@pytest.mark.skipif(not POSE_PY.is_file(), reason=f"pose environment {POSE_PY} absent: run `make pose-env`")
def test_mediapipe_extraction_on_real_clips(data_root, tmp_path, monkeypatch, capsys):
    florence = data_root / "florence3d" / "videos" / "GestureRecording_Id1actor1idAction1category1.mp4"
    demo = data_root / "videos" / "sports2d_demo.mp4"
    for p in (florence, demo):
        if not p.is_file():
            pytest.skip(f"{p} not found")
    v = read_video(florence)
    frames = v.frames.copy()
    frames[list(DROPOUT)] = 0  # the camera drops out: nobody visible
    dropout = tmp_path / "dropout.mp4"
    _write(dropout, frames, int(round(v.fps)))
    monkeypatch.delenv("FINETEC_POSE_PYTHON", raising=False)
    monkeypatch.delenv("FINETEC_POSE_CHILD", raising=False)
    out = tmp_path / "real.pkl"
    rc = pose_cli.main(["extract", str(florence), str(demo), str(dropout), "--out", str(out), "--max-frames",
                        str(T), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-3000:]
    data = load_annotations(out)
    assert data["meta"]["layout"] == "coco17"
    anns = {a["frame_dir"]: a for a in data["annotations"]}
    for name, shape in ((florence.stem, (480, 640)), ("sports2d_demo", (994, 1768)), ("dropout", (480, 640))):
        a = anns[name]
        kp, sc, fm = a["keypoint"], a["keypoint_score"], a["frame_mask"]
        assert kp.shape == (1, T, 17, 2) and sc.shape == (1, T, 17) and fm.shape == (T,), name
        assert tuple(a["img_shape"]) == shape
        assert ((sc >= 0) & (sc <= 1)).all() and np.isfinite(kp).all()
        assert (sc[0, ~fm] == 0).all() and (kp[0, ~fm] == 0).all()
        seen = sc[0, fm] > 0.5  # confidently placed joints lie in the image
        pts = kp[0, fm][seen]
        assert ((pts >= -2) & (pts <= np.array(shape[::-1]) + 2)).all(), name
        assert np.unique(sc[0, fm]).size > 17, f"{name}: per-frame, per-joint scores expected"
    assert anns[florence.stem]["frame_mask"].mean() >= 0.9
    assert anns["sports2d_demo"]["frame_mask"].mean() >= 0.6  # small, backlit person: MediaPipe misses a few
    fm = anns["dropout"]["frame_mask"]
    assert not fm[list(DROPOUT)].any(), fm  # real missing frames stay missing
    kept = np.delete(fm, list(DROPOUT))
    assert kept.mean() >= 0.9, fm
    # the person before and after the dropout is the same one (tracked), close to the clean clip's keypoints
    clean = anns[florence.stem]
    both = fm & clean["frame_mask"]
    err = np.abs(anns["dropout"]["keypoint"][0, both] - clean["keypoint"][0, both]).mean()
    assert err < 25, err
