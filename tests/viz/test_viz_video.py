"""Video writing / reading, side-by-side panels and the ground truth / corrupted / completed comparison."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.data.sample import SkeletonSample
from finetec.viz.video import (
    VizError, comparison_sequences, corrupted_at_true_times, load_completer, read_video, render_comparison,
    side_by_side, video_info, write_video,
)


def _frames(T: int, h: int, w: int) -> list[np.ndarray]:
    out = []
    for t in range(T):
        f = np.zeros((h, w, 3), np.uint8)
        f[..., 0] = 200  # red-ish
        f[: 4 + 2 * t, :8] = 255  # differs per frame (GIF would merge identical frames)
        out.append(f)
    return out


def test_mp4_round_trip_pads_odd_sizes(tmp_path):
    path = write_video(_frames(7, 33, 50), tmp_path / "a.mp4", fps=12)
    info = video_info(path)
    assert info["frames"] == 7 and (info["height"], info["width"]) == (34, 50) and info["fps"] == pytest.approx(12)
    back = list(read_video(path))
    assert len(back) == 7 and back[0].shape == (34, 50, 3)
    centre = back[3][20:30, 20:40].reshape(-1, 3).mean(0)
    assert abs(centre[0] - 200) < 12 and centre[1] < 15 and centre[2] < 15  # colour survives yuv420p
    assert len(list(read_video(path, start=5, max_frames=10))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temp file left


def test_gif_frame_count_and_size(tmp_path):
    path = write_video(iter(_frames(5, 21, 30)), tmp_path / "a.gif", fps=10)
    from PIL import Image

    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (30, 21)
        assert im.info["duration"] == 100


def test_write_errors_leave_no_file(tmp_path):
    with pytest.raises(VizError, match="unsupported format '.avi'"):
        write_video(_frames(2, 8, 8), tmp_path / "a.avi")
    with pytest.raises(VizError, match="no frames"):
        write_video([], tmp_path / "a.mp4")
    with pytest.raises(VizError, match=r"frame 1 has shape \(8, 10, 3\), frame 0 has \(8, 8, 3\)"):
        write_video([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)], tmp_path / "b.mp4")
    with pytest.raises(VizError, match="frame 0 must be uint8"):
        write_video([np.zeros((8, 8, 3), np.float32)], tmp_path / "c.gif")
    assert list(tmp_path.iterdir()) == []


def test_side_by_side_layout_and_errors():
    a = [np.full((10, 20, 3), 1, np.uint8)] * 3
    b = [np.full((12, 30, 3), 2, np.uint8)] * 3
    out = list(side_by_side([a, b], gap=4))
    assert len(out) == 3 and out[0].shape == (12, 54, 3)
    assert out[0][0, 0, 0] == 1 and out[0][0, 24, 0] == 2 and out[0][11, 0, 0] == 255 and out[0][0, 21, 0] == 255
    titled = list(side_by_side([a, b], titles=["x", "y"]))
    assert titled[0].shape[0] > 12 and titled[0].shape[1] == 56
    with pytest.raises(VizError, match="panels must have the same length"):
        list(side_by_side([a, b[:2]]))
    with pytest.raises(VizError, match="2 panels but 1 titles"):
        list(side_by_side([a, b], titles=["x"]))


def _linear_sample(T: int = 40) -> SkeletonSample:
    """13 joints moving linearly right (2 px / frame) in a 240 x 320 image."""
    rng = np.random.default_rng(0)
    base = rng.uniform(60, 180, size=(13, 2)).astype(np.float32)
    t = np.arange(T, dtype=np.float32)[:, None, None]
    kp = base[None] + t * np.array([2.0, 0.0], np.float32)
    return SkeletonSample(keypoint=kp[None], label=0, id="lin", img_shape=(240, 320), layout="penn13",
                          score=np.ones((1, T, 13), np.float32))


def test_comparison_inplace_interpolation_restores_linear_motion():
    s = _linear_sample()
    seq = comparison_sequences(s, "T-low", "interpolation")  # 50 % dropped in place
    kept = seq["kept"]
    assert kept.sum() == 20 and seq["mode"] == "inplace" and seq["gt"].shape == (1, 40, 13, 2)
    np.testing.assert_allclose(seq["gt"], s.keypoint, atol=1e-4)
    np.testing.assert_allclose(seq["corrupted"][:, kept], s.keypoint[:, kept], atol=1e-4)
    assert (seq["corrupted"][:, ~kept] == 0).all() and (seq["corrupted_score"][:, ~kept] == 0).all()
    k = np.flatnonzero(kept)
    inner = np.zeros(40, bool)
    inner[k[0]:k[-1] + 1] = True
    # pixel -> normalised -> completer -> pixel round trip: interpolation of a linear motion is exact between the
    # first and last kept frames
    np.testing.assert_allclose(seq["completed"][:, inner], s.keypoint[:, inner], atol=1e-3)
    assert np.nanmax(seq["error"][inner]) < 1e-3
    assert (seq["restored"] == ~kept).all()


def test_comparison_compact_and_clip_len():
    s = _linear_sample()
    seq = comparison_sequences(s, "severe", "interpolation", clip_len=16)
    assert seq["completed"].shape == (1, 16, 13, 2) and seq["mode"] == "compact"
    assert seq["kept"].sum() == 4  # 75 % of 16 distinct source frames dropped
    np.testing.assert_allclose(seq["gt"][0], s.keypoint[0, seq["frame_inds"]], atol=1e-4)
    np.testing.assert_allclose(seq["corrupted"][:, seq["kept"]], seq["gt"][:, seq["kept"]], atol=1e-4)
    with pytest.raises(VizError, match="drops nothing"):
        comparison_sequences(s, "clean", "interpolation")
    with pytest.raises(VizError, match="unknown|not a preset|severe2"):
        comparison_sequences(s, "severe2", "interpolation")
    with pytest.raises(VizError, match="2D"):
        comparison_sequences(SkeletonSample(keypoint=np.zeros((1, 5, 13, 3)), id="x", layout="penn13"), "severe",
                             "interpolation")


def test_corrupted_at_true_times():
    s = _linear_sample()
    cor, kept = corrupted_at_true_times(s, "severe")
    assert kept.sum() == 10 and (cor.mask == kept).all()
    np.testing.assert_array_equal(cor.keypoint[:, kept], s.keypoint[:, kept])
    assert (cor.keypoint[:, ~kept] == 0).all()


def test_render_comparison_three_panels():
    frames, seq = render_comparison(_linear_sample(12), "moderate", "interpolation", scale=0.5)
    frames = list(frames)
    assert len(frames) == 12
    assert frames[0].shape[1] == 3 * 160 + 2 * 6 and frames[0].shape[0] > 120


def test_load_completer_errors():
    with pytest.raises(VizError, match="unknown completer 'nope'"):
        load_completer("nope")
    with pytest.raises(VizError, match="is learned"):
        load_completer("simlpe")
    with pytest.raises(VizError, match="exactly one"):
        load_completer()


def test_completion_checkpoint(tmp_path):
    """A (fresh) FineTec completion checkpoint: rebuilt from its config; its zero-initialised residual makes it
    return the linear interpolation, i.e. the 'interpolation' completer's output on the same clip."""
    import torch

    from finetec.engine.checkpoint import export_model
    from finetec.engine.lit_completion import build_completer

    m = build_completer({"name": "finetec"}, clip_len=8, num_joints=13)
    g = torch.Generator().manual_seed(0)
    m.bank.load(torch.rand(4, 8, 13, 2, generator=g) - 0.5, torch.ones(4, 8, 13))
    path = export_model(m, {"task": "completion", "layout": "penn13", "clip_len": 8, "mode": "compact"},
                        {"model": {"name": "finetec"}, "data": {"norm": "image"}}, tmp_path / "model.pth")
    c = load_completer(ckpt=path)
    assert c.clip_len == 8 and c.layout == "penn13" and c.norm == "image"
    s = _linear_sample(20)
    a = comparison_sequences(s, "moderate", c)
    b = comparison_sequences(s, "moderate", "interpolation", clip_len=8)
    assert a["completed"].shape == (1, 8, 13, 2)
    np.testing.assert_allclose(a["completed"], b["completed"], atol=1e-3)
    with pytest.raises(VizError, match="clips of 8 frames, not 10"):
        comparison_sequences(s, "moderate", c, clip_len=10)
    with pytest.raises(VizError, match="trained on layout 'penn13'"):
        comparison_sequences(SkeletonSample(keypoint=np.ones((1, 5, 17, 2)), id="c", layout="coco17",
                                            img_shape=(10, 10)), "moderate", c)
    rec = export_model(torch.nn.Linear(2, 2), {"num_classes": 3}, {"model": {"name": "stgcn"}},
                       tmp_path / "rec.pth")
    with pytest.raises(VizError, match="not a completion checkpoint"):
        load_completer(ckpt=rec)
