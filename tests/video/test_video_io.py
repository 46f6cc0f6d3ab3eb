"""finetec.video.io: frames, metadata and the errors for missing / unreadable / truncated / corrupt videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from finetec.video import VideoDecodeError, VideoError, VideoReader, probe_video, read_video  # noqa: E402

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)


def encode(path: Path, frames: np.ndarray, fps: int = 10, rotation: float | None = None) -> Path:
    """mpeg4 video of ``frames [T, H, W, 3]`` uint8, with a display rotation (degrees counter-clockwise) if given."""
    c = av.open(str(path), "w")
    s = c.add_stream("mpeg4", rate=fps)
    s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    if rotation is not None:
        s.set_display_rotation(rotation)
    for img in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def write_video(path: Path, n: int = 12, w: int = 64, h: int = 48, fps: int = 10) -> Path:
    """Frame i is colour COLOURS[i % 3] plus fixed zero-mean texture (mpeg4, lossy but close on average)."""
    texture = np.random.default_rng(0).integers(-25, 26, (n, h, w, 1))  # payload dominates the headers
    frames = (COLOURS[np.arange(n) % 3][:, None, None].astype(np.int64) + texture).clip(0, 255).astype(np.uint8)
    return encode(path, frames, fps)


def test_read_video_frames_and_info(tmp_path):
    v = read_video(write_video(tmp_path / "a.mp4"))
    assert v.frames.shape == (12, 48, 64, 3) and v.frames.dtype == np.uint8
    assert v.error is None
    assert (v.info.width, v.info.height, v.info.num_frames, v.info.frames_exact) == (64, 48, 12, True)
    assert v.fps == pytest.approx(10.0) and v.info.img_shape == (48, 64)
    means = v.frames.reshape(12, -1, 3).mean(1)
    assert np.abs(means - COLOURS[np.arange(12) % 3]).max() < 12  # RGB order, frame order kept


def test_reader_streams_and_max_frames(tmp_path):
    path = write_video(tmp_path / "a.avi")
    with VideoReader(path, max_frames=5) as r:
        frames = list(r)
    assert len(frames) == 5 and r.frames_read == 5 and r.error is None
    assert probe_video(path).num_frames == 12
    with pytest.raises(ValueError, match="max_frames"):
        VideoReader(path, max_frames=0)


def test_missing_and_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(VideoError, match=r"nope\.mp4: no such file"):
        read_video(tmp_path / "nope.mp4")
    txt = tmp_path / "notes.mp4"
    txt.write_text("not a video at all\n" * 20)
    with pytest.raises(VideoError, match=r"notes\.mp4: cannot open"):
        probe_video(txt)
    with pytest.raises(VideoError, match="not a file"):
        probe_video(tmp_path)


def test_truncated_mp4_without_index_cannot_be_opened(tmp_path):
    data = write_video(tmp_path / "a.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # the moov atom is at the end: gone
    with pytest.raises(VideoError, match=r"cut\.mp4: .*truncated/corrupt"):
        read_video(cut)


def test_truncated_avi_keeps_frames_and_says_where(tmp_path):
    data = write_video(tmp_path / "a.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 2 // 3])
    v = read_video(cut)
    k = v.frames.shape[0]
    assert 0 < k < 12
    assert v.error is not None and "cut.avi" in v.error and f"ended at frame {k} of the 12" in v.error
    with pytest.raises(VideoDecodeError) as ei:
        read_video(cut, on_error="raise")
    assert ei.value.frames_read == k


def test_decode_error_mid_stream_keeps_frames(tmp_path):
    data = bytearray(write_video(tmp_path / "a.mp4").read_bytes())
    mid = len(data) // 2
    data[mid: mid + 200] = b"\x00" * 200  # zero a run of bytes inside the mdat payload
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    v = read_video(bad)
    k = v.frames.shape[0]
    assert 0 < k < 12
    assert f"decode error at frame {k}" in v.error and "bad.mp4" in v.error and f"kept the {k} frames" in v.error
    with pytest.raises(VideoDecodeError, match=f"decode error at frame {k}") as ei:
        read_video(bad, on_error="raise")
    assert ei.value.frames_read == k


def test_real_florence_clip(data_root):
    clip = data_root / "florence3d" / "videos" / "GestureRecording_Id1actor1idAction1category1.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    v = read_video(clip)
    assert v.frames.shape == (27, 480, 640, 3) and v.error is None
    assert v.fps == pytest.approx(20.0)
    assert 20 < v.frames.mean() < 235  # a real image, not blank


def _write_rotated(path: Path, degrees: float, n: int = 4) -> Path:
    """Stored 64 x 32 frames, black with a white band over the left 8 columns, and a display rotation."""
    frames = np.zeros((n, 32, 64, 3), np.uint8)
    frames[:, :, :8] = 255
    return encode(path, frames, rotation=degrees)


@pytest.mark.parametrize("degrees, shape, band", [
    (-90, (64, 32), "top"),  # a portrait phone clip: shown turned a quarter clockwise, the left edge goes up
    (90, (64, 32), "bottom"),  # a quarter counter-clockwise: the left edge goes down
    (180, (32, 64), "right"),
])
def test_display_rotation_is_applied(tmp_path, degrees, shape, band):
    path = _write_rotated(tmp_path / "r.mp4", degrees)
    info = probe_video(path)
    assert info.rotation == degrees and info.img_shape == shape
    v = read_video(path)
    assert v.frames.shape == (4, *shape, 3) and v.frames.flags.c_contiguous
    bright = v.frames[0].mean(-1) > 128
    where = {"top": bright[:8].all() and not bright[-8:].any(), "bottom": bright[-8:].all() and not bright[:8].any(),
             "right": bright[:, -8:].all() and not bright[:, :8].any()}
    assert where[band]
    with VideoReader(path, autorotate=False) as r:  # as stored
        raw = list(r)
        assert r.info.rotation == 0 and r.info.img_shape == (32, 64)
    assert raw[0].shape == (32, 64, 3) and (raw[0][:, :8].mean(-1) > 128).all()


def test_rotation_that_is_not_a_quarter_turn_is_refused(tmp_path):
    path = _write_rotated(tmp_path / "r.mp4", 30)
    with pytest.raises(VideoError, match=r"r\.mp4: display rotation of (29|30) degrees is not a multiple of 90"):
        probe_video(path)
    with VideoReader(path, autorotate=False) as r:
        assert len(list(r)) == 4
