"""Extraction of decoded videos (a real colour-square backend on mpeg4 clips): missing frames, tracking with a
user box, labels CSV, splits, the dataset pickle, resuming from part files and worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from pose_helpers import BlobBackend, write_blob_video  # noqa: E402

from finetec.data.io import load_annotations  # noqa: E402
from finetec.data.sample import SkeletonSample  # noqa: E402
from finetec.pose.extract import (LabelsError, collect_videos, detection_rates, extract_dataset,  # noqa: E402
                                  extract_video, make_split, read_labels)

BACKEND = "pose_helpers:BlobBackend"


def clip(path: Path, absent=(), n: int = 10, second: bool = False) -> Path:
    """A white square moving right by 2 px/frame, absent in frames ``absent``; optionally a static magenta one."""
    frames = []
    for t in range(n):
        spec = {} if t in absent else {"white": (10 + 2 * t, 20)}
        if second:
            spec["magenta"] = (70, 30)
        frames.append(spec)
    return write_blob_video(path, frames)


def test_extract_video_marks_missing_frames(tmp_path):
    res = extract_video(clip(tmp_path / "a.mp4", absent=(3, 4, 8)), BlobBackend(), label=1)
    ann = res.annotation
    assert ann["keypoint"].shape == (1, 10, 17, 2) and ann["keypoint"].dtype == np.float32
    assert ann["keypoint_score"].shape == (1, 10, 17) and ann["total_frames"] == 10
    expect = np.ones(10, bool)
    expect[[3, 4, 8]] = False
    np.testing.assert_array_equal(ann["frame_mask"], expect)
    assert (ann["keypoint"][0, ~expect] == 0).all() and (ann["keypoint_score"][0, ~expect] == 0).all()
    np.testing.assert_allclose(ann["keypoint_score"][0, expect], 0.9)
    left = ann["keypoint"][0, expect, 0, 0]  # joint 0 sits at the square's left edge
    np.testing.assert_allclose(left, 10 + 2 * np.flatnonzero(expect), atol=1.5)
    assert ann["img_shape"] == (64, 96) and ann["fps"] == pytest.approx(10.0)
    assert ann["frame_dir"] == "a" and ann["label"] == 1
    assert (res.frames, res.detected, res.error) == (10, 7, None)
    s = SkeletonSample.from_pyskl(ann).validate(17)
    assert s.mask.sum() == 7


def test_user_box_tracks_the_chosen_person_with_roi(tmp_path):
    path = clip(tmp_path / "two.mp4", second=True)
    be = BlobBackend()
    ann = extract_video(path, be, box=(66, 26, 86, 46)).annotation  # the magenta square
    assert ann["frame_mask"].all()
    np.testing.assert_allclose(ann["keypoint"][0, :, 0, 0], 70, atol=1.5)
    assert all(r is not None for r in be.rois)  # searched around the tracked person
    assert be.rois[1][2] - be.rois[1][0] < 40
    free = extract_video(path, be).annotation  # no box: the first/largest (white, moving) one is kept
    assert free["keypoint"][0, -1, 0, 0] > free["keypoint"][0, 0, 0, 0] + 10


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_read_labels_florence_style_and_general(tmp_path):
    f = write_csv(tmp_path / "labels.csv", [
        "video,gesture_id,actor,category,class_name",
        "videos/a.mp4,1,10,1,wave", "videos/b.mp4,2,2,2,drink", "videos/c.mp4,3,1,1,wave"])
    entries, classes = read_labels(f)
    assert classes == ["wave", "drink"] and [e.label for e in entries] == [0, 1, 0]
    assert [e.actor for e in entries] == [10, 2, 1] and entries[0].video == tmp_path / "videos" / "a.mp4"
    g = write_csv(tmp_path / "g.csv", ["video,label,split,box", "/x/a.mp4,2,train,1 2 30 40", "b.mp4,0,test,"])
    entries, classes = read_labels(g)
    assert classes is None and [e.label for e in entries] == [2, 0] and entries[0].box == (1, 2, 30, 40)
    assert [e.split for e in entries] == ["train", "test"] and entries[0].video == Path("/x/a.mp4")
    with pytest.raises(LabelsError, match=r"row 2: class 'wave' not in the 1 given classes"):
        read_labels(f, classes=["drink"])
    with pytest.raises(LabelsError, match="no 'video' column"):
        read_labels(write_csv(tmp_path / "h.csv", ["path,label", "a.mp4,1"]))
    with pytest.raises(LabelsError, match=r"row 3: label -1 is not a 0-based class index"):
        read_labels(write_csv(tmp_path / "i.csv", ["video,label", "a.mp4,1", "b.mp4,-1"]))
    with pytest.raises(LabelsError, match="no label column"):
        read_labels(write_csv(tmp_path / "j.csv", ["video,actor", "a.mp4,1"]))
    with pytest.raises(LabelsError, match=r"row 2: box: need x2 > x1"):
        read_labels(write_csv(tmp_path / "k.csv", ["video,label,box", "a.mp4,1,5 5 1 9"]))


def test_make_split_by_actor(tmp_path):
    from finetec.pose.extract import VideoEntry

    entries = [VideoEntry(Path(f"{i}.mp4"), f"v{i}", 0, actor=a) for i, a in enumerate([1, 2, 3, 4, 5, 6, 7, 8,
                                                                                          9, 10, 10, 3])]
    s = make_split(entries)
    assert s["test"] == ["v7", "v8", "v9", "v10"] and len(s["train"]) == 8  # actors 8-10 (30% of 10)
    s = make_split(entries, [3])
    assert s["test"] == ["v2", "v11"]
    assert make_split(entries, None) == {}
    with pytest.raises(ValueError, match=r"test actors \['42'\] are not in the labels"):
        make_split(entries, [42])
    entries[0].split = "val"
    assert make_split(entries) == {"val": ["v0"]}


def test_collect_videos(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    for n in ("a", "b"):
        clip(d / f"{n}.mp4", n=2)
    (d / "readme.txt").write_text("x")
    f = write_csv(tmp_path / "labels.csv", ["video,label,actor", "videos/a.mp4,run,1", "videos/b.mp4,jump,2"])
    entries, classes = collect_videos([d], f)
    assert [e.frame_dir for e in entries] == ["a", "b"] and [e.label for e in entries] == [0, 1]
    assert classes == ["run", "jump"]
    entries, _ = collect_videos([], f)
    assert [e.video.name for e in entries] == ["a.mp4", "b.mp4"]
    (tmp_path / "other").mkdir()
    extra = clip(tmp_path / "other" / "a.mp4", n=2)
    with pytest.raises(LabelsError, match="has no row in"):
        collect_videos([extra], write_csv(tmp_path / "only_b.csv", ["video,label", "videos/b.mp4,x"]))
    entries, _ = collect_videos([d / "a.mp4", extra])  # same stem twice: relative paths
    assert [e.frame_dir for e in entries] == ["videos/a", "other/a"] and entries[0].label == -1
    with pytest.raises(Exception, match=r"missing\.mp4: no such file"):
        collect_videos([tmp_path / "missing.mp4"])


def _dataset(tmp_path: Path) -> tuple[list, list, Path]:
    d = tmp_path / "videos"
    d.mkdir()
    clip(d / "a.mp4", absent=(0, 1))
    clip(d / "b.mp4", absent=(5,))
    clip(d / "c.mp4", absent=tuple(range(10)))  # nobody at all
    f = write_csv(tmp_path / "labels.csv", ["video,class_name,actor", "videos/a.mp4,wave,1", "videos/b.mp4,clap,2",
                                            "videos/c.mp4,wave,3"])
    entries, classes = collect_videos([], f)
    return entries, classes, f


def test_extract_dataset_writes_pickle_and_resumes(tmp_path):
    entries, classes, _ = _dataset(tmp_path)
    out = tmp_path / "data.pkl"
    s = extract_dataset(entries, out, classes=classes, backend=BACKEND, progress=False)
    assert (s.videos, s.extracted, s.reused, s.failed) == (3, 3, 0, {})
    data = load_annotations(out)
    assert data["meta"]["layout"] == "coco17" and data["meta"]["classes"] == ["wave", "clap"]
    assert data["split"] == {"train": ["a", "b"], "test": ["c"]}
    anns = {a["frame_dir"]: a for a in data["annotations"]}
    assert anns["a"]["frame_mask"].sum() == 8 and anns["b"]["frame_mask"].sum() == 9
    assert not anns["c"]["frame_mask"].any() and anns["a"]["actor"] == 1 and anns["b"]["label"] == 1
    rates = {r["class"]: r for r in s.per_class}
    assert (rates["wave"]["frames"], rates["wave"]["detected"], rates["wave"]["empty_videos"]) == (20, 8, 1)
    assert rates["clap"]["rate"] == pytest.approx(0.9)
    assert detection_rates(data["annotations"], classes) == s.per_class
    parts = sorted((tmp_path / "data.pkl.parts").glob("*.pkl"))
    assert len(parts) == 3
    # rerun: everything reused; touching one video redoes only that one
    s2 = extract_dataset(entries, out, classes=classes, backend=BACKEND, progress=False)
    assert (s2.extracted, s2.reused) == (0, 3)
    st = entries[1].video.stat()
    os.utime(entries[1].video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    s3 = extract_dataset(entries, out, classes=classes, backend=BACKEND, progress=False)
    assert (s3.extracted, s3.reused) == (1, 2)
    assert load_annotations(out)["annotations"][1]["frame_mask"].sum() == 9


def test_extract_dataset_with_two_workers_and_a_broken_video(tmp_path):
    entries, classes, _ = _dataset(tmp_path)
    bad = tmp_path / "videos" / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    from finetec.pose.extract import VideoEntry

    entries.append(VideoEntry(bad, "bad", 0, actor=3))
    out = tmp_path / "par.pkl"
    s = extract_dataset(entries, out, classes=classes, backend=BACKEND, workers=2, progress=False)
    assert list(s.failed) == ["bad"] and "bad.mp4: cannot open" in s.failed["bad"]
    assert s.extracted == 3 and s.frames_done == 30
    data = load_annotations(out)
    assert [a["frame_dir"] for a in data["annotations"]] == ["a", "b", "c"]
    assert data["split"]["test"] == ["c"]
    ref = extract_video(entries[0].video, BlobBackend()).annotation
    np.testing.assert_array_equal(data["annotations"][0]["keypoint"], ref["keypoint"])
