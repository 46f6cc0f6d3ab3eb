"""finetec.data.video: the skeleton-guided crop box (Eq. 1-2), TSM segment sampling, decoding, the video dataset."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from finetec.data.transforms import TransformError
from finetec.data.video import (DecodeFrames, FlipFrames, FormatRGBInput, ResizeFrames, SampleSegments,
                                SkeletonGuidedCrop, VideoDataset, activity_box, video_pipeline)


def _kp(points) -> np.ndarray:
    """[M=1, T=1, V, 2] from a list of (x, y)."""
    return np.asarray(points, dtype=np.float32)[None, None]


# ---------------------------------------------------------------------------------------------------- Eq. 1-2
def test_activity_box_hand_computed():
    # joints span x 100..200 (w 100), y 50..250 (h 200); alpha 0.3 -> 30 px and 60 px margins
    box, fb = activity_box(_kp([[100, 50], [200, 250], [150, 100]]), None, (480, 640), alpha=0.3)
    assert not fb
    np.testing.assert_allclose(box, [70, -10 + 10, 230, 310])  # y1 = max(50 - 60, 0) = 0
    box, _ = activity_box(_kp([[100, 100], [200, 300]]), None, (480, 640), alpha=0.0)
    np.testing.assert_allclose(box, [100, 100, 200, 300])


def test_activity_box_clamps_at_the_frame_border():
    # a person touching the left and bottom borders: the expanded box stops at 0 and at H, W
    box, fb = activity_box(_kp([[0, 300], [50, 479], [620, 400]]), None, (480, 640), alpha=0.3)
    assert not fb
    w, h = 620, 179
    np.testing.assert_allclose(box, [0, 300 - 0.3 * h, 640, 480])
    assert box[2] - 620 < 0.3 * w  # the right margin was clamped too


def test_activity_box_ignores_missing_detections():
    kp = np.array([[[[100, 100], [200, 200], [600, 5]],      # frame 0: joint 2 not detected (score 0)
                    [[110, 120], [190, 210], [0, 0]],        # frame 1: joint 2 not detected, zeros
                    [[630, 470], [630, 470], [630, 470]]]],  # frame 2: a dropped frame (mask False)
                  dtype=np.float32)
    score = np.array([[[1, 1, 0], [1, 1, 0], [1, 1, 1]]], dtype=np.float32)
    mask = np.array([True, True, False])
    box, fb = activity_box(kp, score, (480, 640), alpha=0.0, mask=mask)
    assert not fb
    np.testing.assert_allclose(box, [100, 100, 200, 210])
    # NaN coordinates of a joint marked detected are not taken either
    kp2 = kp.copy()
    kp2[0, 0, 0] = np.nan
    box2, _ = activity_box(kp2, score, (480, 640), alpha=0.0, mask=mask)
    np.testing.assert_allclose(box2, [110, 120, 200, 210])


def test_activity_box_without_any_detection_keeps_the_frame():
    kp = np.zeros((1, 4, 17, 2), np.float32)
    box, fb = activity_box(kp, np.zeros((1, 4, 17)), (48, 64))
    assert fb and box.tolist() == [0, 0, 64, 48]
    box, fb = activity_box(_kp([[900, 900]]), None, (48, 64))  # every joint outside the frame
    assert fb and box.tolist() == [0, 0, 64, 48]


def test_activity_box_single_joint_gets_min_size():
    box, fb = activity_box(_kp([[320, 240]]), None, (480, 640), alpha=0.5, min_size=40)
    assert not fb
    np.testing.assert_allclose(box, [320 - 20 - 20, 240 - 20 - 20, 320 + 20 + 20, 240 + 20 + 20])


def test_activity_box_bad_input():
    with pytest.raises(ValueError, match=r"\[M, T, V, C>=2\]"):
        activity_box(np.zeros((4, 17, 2)), None, (48, 64))
    with pytest.raises(ValueError, match="alpha"):
        activity_box(_kp([[1, 1]]), None, (48, 64), alpha=-1)
    with pytest.raises(ValueError, match="img_shape"):
        activity_box(_kp([[1, 1]]), None, (0, 64))


# ---------------------------------------------------------------------------------------------------- sampling
def test_sample_segments_training_one_draw_per_segment():
    t = SampleSegments(num_segments=4, frames_per_segment=2)
    for seed in range(5):
        r = t({"total_frames": 21, "rng": np.random.default_rng(seed), "frame_dir": "x"})
        inds = r["frame_inds"].reshape(4, 2)
        assert (inds[:, 1] == inds[:, 0] + 1).all()  # consecutive frames in a segment
        starts = inds[:, 0]
        assert ((starts >= np.arange(4) * 5) & (starts < np.arange(1, 5) * 5)).all()  # span 20 -> segments of 5
        assert r["clip_len"] == 8 and r["num_clips"] == 1


def test_sample_segments_test_mode_is_central_and_deterministic():
    t = SampleSegments(num_segments=4, frames_per_segment=1, num_clips=2, test_mode=True)
    r = t({"total_frames": 40, "frame_dir": "x"})
    # segments of 10; clip 0 a quarter into each segment, clip 1 three quarters
    assert r["frame_inds"].tolist() == [2, 12, 22, 32, 7, 17, 27, 37]
    one = SampleSegments(num_segments=4, test_mode=True)({"total_frames": 40, "frame_dir": "x"})
    assert one["frame_inds"].tolist() == [5, 15, 25, 35]  # one clip: the centres


def test_sample_segments_short_clip_clamps():
    t = SampleSegments(num_segments=8, frames_per_segment=3, test_mode=True)
    r = t({"total_frames": 5, "frame_dir": "x"})
    assert r["frame_inds"].max() == 4 and r["frame_inds"].min() >= 0 and len(r["frame_inds"]) == 24
    with pytest.raises(TransformError, match="no frames"):
        t({"total_frames": 0, "frame_dir": "x"})


# ---------------------------------------------------------------------------------------------------- decoding
def _results(tiny_videos, fd="c0_train1", **kw):
    data = pickle.loads(tiny_videos.read_bytes())
    ann = next(a for a in data["annotations"] if a["frame_dir"] == fd)
    r = {"frame_dir": fd, "total_frames": ann["total_frames"], "img_shape": ann["img_shape"],
         "keypoint": ann["keypoint"], "keypoint_score": ann["keypoint_score"], "rng": np.random.default_rng(0)}
    r.update(kw)
    return r


def test_decode_frames_reads_the_sampled_frames(tiny_videos):
    root = tiny_videos.parent / "videos"
    r = DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0, 9, 9, 3])))
    imgs = r["imgs"]
    assert imgs.shape == (4, 48, 64, 3) and imgs.dtype == np.uint8
    # the square of class 0 moves right 3 px a frame: its bright columns move
    cols = [np.flatnonzero((im.min(-1) > 200).any(0)) for im in imgs]
    assert cols[1].mean() - cols[0].mean() == pytest.approx(27, abs=2)
    assert np.array_equal(imgs[1], imgs[2])


def test_decode_frames_accepts_a_skeleton_that_is_a_prefix_of_its_video(tiny_videos):
    # `finetec data extract --max-frames 5` keeps the video's first 5 frames: they are the skeleton's frames
    root = tiny_videos.parent / "videos"
    whole = DecodeFrames(root)(_results(tiny_videos, frame_inds=np.arange(10)))["imgs"]
    r = DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([4, 0, 2]), total_frames=5))
    assert np.array_equal(r["imgs"], whole[[4, 0, 2]])


def test_decode_frames_errors_name_the_file(tiny_videos):
    root = tiny_videos.parent / "videos"
    with pytest.raises(TransformError, match="nope.mp4: no such file"):
        DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0]), filename="nope.mp4"))
    # a skeleton longer than its video (a truncated or wrong video, another fps): whatever is sampled
    for total, inds in ((30, [0]), (30, [29]), (11, [0, 4])):
        with pytest.raises(TransformError, match=rf"has 10 frames but the skeleton has {total}"):
            DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array(inds), total_frames=total))
    with pytest.raises(TransformError, match="within the skeleton's 5 frames"):
        DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0, 5]), total_frames=5))
    with pytest.raises(TransformError, match="img_shape"):
        DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0]), img_shape=(480, 640)))
    bad = root / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(TransformError, match="bad.mp4"):
        DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0]), filename="bad.mp4"))


def test_crop_is_one_box_for_all_frames(tiny_videos):
    root = tiny_videos.parent / "videos"
    r = DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0, 5, 9])))
    full = r["imgs"].copy()
    r = SkeletonGuidedCrop(alpha=0.3)(r)
    x1, y1, x2, y2 = r["crop_box"]
    assert not r["crop_fallback"]
    assert r["imgs"].shape == (3, y2 - y1, x2 - x1, 3)
    assert np.array_equal(r["imgs"], full[:, y1:y2, x1:x2])
    # the moving square stays inside the box in every frame (its bright pixels are all kept)
    assert (r["imgs"] > 200).all(-1).sum() == (full > 200).all(-1).sum()
    # coordinates that are not pixels of these frames are refused, not cropped to a wrong corner
    dec = DecodeFrames(root)(_results(tiny_videos, frame_inds=np.array([0])))
    with pytest.raises(TransformError, match="img_shape None is not the frames' size"):
        SkeletonGuidedCrop()({**dec, "img_shape": None})
    with pytest.raises(TransformError, match="normalised"):
        SkeletonGuidedCrop()({**dec, "keypoint": dec["keypoint"] / 64.0})
    r2 = SkeletonGuidedCrop()(DecodeFrames(root)(_results(tiny_videos, "c2_test1", frame_inds=np.array([0]))))
    assert r2["crop_fallback"] and r2["crop_box"].tolist() == [0, 0, 64, 48]


def test_resize_flip_format():
    imgs = np.zeros((4, 30, 20, 3), np.uint8)
    imgs[:, :, :5] = 255  # bright left quarter
    r = ResizeFrames(16)({"imgs": imgs, "frame_dir": "x"})
    assert r["imgs"].shape == (4, 16, 16, 3) and r["imgs"].dtype == np.uint8
    assert r["imgs"][:, :, 0].min() == 255 and r["imgs"][:, :, -1].max() == 0
    flipped = FlipFrames(1.0)({"imgs": r["imgs"], "rng": np.random.default_rng(0), "frame_dir": "x"})
    assert flipped["flip"] and flipped["imgs"][:, :, -1].min() == 255
    same = FlipFrames(0.0)({"imgs": r["imgs"], "rng": np.random.default_rng(0), "frame_dir": "x"})
    assert not same["flip"]
    out = FormatRGBInput()({"imgs": r["imgs"], "num_clips": 2, "frame_dir": "x"})["imgs"]
    assert out.shape == (2, 2, 3, 16, 16) and out.dtype == np.float32 and out.max() == 255
    with pytest.raises(TransformError, match="3 clips"):
        FormatRGBInput()({"imgs": r["imgs"], "num_clips": 3, "frame_dir": "x"})
    with pytest.raises(ValueError, match="size"):
        ResizeFrames(0)


# ---------------------------------------------------------------------------------------------------- dataset
def test_video_dataset(tiny_videos):
    root = tiny_videos.parent / "videos"
    train = VideoDataset(str(tiny_videos), "train", video_pipeline(test_mode=False, video_root=root, size=24))
    a, b = train[(0, 0)], train[(0, 0)]
    assert a["imgs"].shape == (1, 8, 3, 24, 24) and a["label"].item() == 0
    assert np.array_equal(a["imgs"].numpy(), b["imgs"].numpy())  # the sample's own generator: reproducible
    test = VideoDataset(str(tiny_videos), "test", video_pipeline(test_mode=True, num_clips=2, video_root=root,
                                                                 size=24), test_mode=True)
    assert len(test) == 6  # the sample without any observed joint is kept (full-frame crop)
    x = test[5]
    assert x["frame_dir"] == "c2_test1" and x["imgs"].shape == (2, 8, 3, 24, 24)
    no_crop = VideoDataset(str(tiny_videos), "test", video_pipeline(test_mode=True, video_root=root, size=24,
                                                                    crop=False), test_mode=True)
    assert not np.array_equal(no_crop[0]["imgs"].numpy(), test[0]["imgs"][:1].numpy())
