"""finetec.data.readers.penn on the real Penn Action label files (skipped where the shared data is absent)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from finetec.data.io import DataFileError, load_annotations, load_samples
from finetec.data.readers.penn import PENN_CLASSES, prepare_penn_action, read_penn_action, read_penn_mat
from finetec.layouts import get_layout


def test_classes_sorted_and_complete():
    assert len(PENN_CLASSES) == 15 and list(PENN_CLASSES) == sorted(PENN_CLASSES)
    assert "jump_rope" in PENN_CLASSES and "tennis_serve" in PENN_CLASSES


@pytest.mark.parametrize("name", ["0001", "1154", "2326"])
def test_read_one_file_matches_raw_mat(penn_dir, name):
    path = penn_dir / f"{name}.mat"
    raw = scipy.io.loadmat(str(path))
    ann = read_penn_mat(path)
    T = raw["x"].shape[0]
    assert ann["frame_dir"] == name and ann["total_frames"] == T
    assert ann["label"] == PENN_CLASSES.index(str(raw["action"][0]))
    assert ann["keypoint"].shape == (1, T, 13, 2) and ann["keypoint"].dtype == np.float32
    np.testing.assert_array_equal(ann["keypoint"][0, ..., 0], raw["x"].astype(np.float32))
    np.testing.assert_array_equal(ann["keypoint"][0, ..., 1], raw["y"].astype(np.float32))
    # invisible joints are missing joints (score 0) but keep their annotated coordinates
    np.testing.assert_array_equal(ann["keypoint_score"][0], raw["visibility"].astype(np.float32))
    h, w, _ = raw["dimensions"].ravel()
    assert ann["img_shape"] == (int(h), int(w))
    assert ann["viewpoint"] == str(raw["pose"][0])
    assert ann["penn_train"] == (int(raw["train"].ravel()[0]) == 1)
    assert ann["bbox"].shape == (T, 4)
    assert get_layout("penn13").num_joints == 13


def test_short_bbox_is_padded_and_flagged(penn_dir):
    # 1154.mat ships 72 frames of joints but 71 bbox rows
    raw = scipy.io.loadmat(str(penn_dir / "1154.mat"))
    assert raw["bbox"].shape[0] == raw["x"].shape[0] - 1
    ann = read_penn_mat(penn_dir / "1154.mat")
    assert ann["bbox_padded_frames"] == 1
    np.testing.assert_array_equal(ann["bbox"][-1], ann["bbox"][-2])
    np.testing.assert_array_equal(ann["bbox"][:-1], raw["bbox"].astype(np.float32))
    assert "bbox_padded_frames" not in read_penn_mat(penn_dir / "0001.mat")


def test_full_dataset_split_counts(penn_dir, tmp_path):
    data = prepare_penn_action(penn_dir, tmp_path / "penn.pkl")  # all 2,326 files: about 1-2 s
    assert len(data["annotations"]) == 2326
    assert len(data["split"]["train"]) == 1258 and len(data["split"]["test"]) == 1068
    assert data["meta"] == {"layout": "penn13", "classes": list(PENN_CLASSES),
                            "source": "Penn Action (Zhang et al., ICCV 2013)"}
    labels = np.array([a["label"] for a in data["annotations"]])
    assert set(labels.tolist()) == set(range(15))
    T = np.array([a["total_frames"] for a in data["annotations"]])
    assert T.min() == 18 and T.max() == 663
    # about 22 % of the joints are marked invisible (README of the shared data)
    score = np.concatenate([a["keypoint_score"].ravel() for a in data["annotations"]])
    assert 0.20 < (score == 0).mean() < 0.24

    back = load_annotations(tmp_path / "penn.pkl")
    assert back["split"] == data["split"]
    assert back["annotations"][5]["keypoint"].dtype == np.float32
    samples, meta = load_samples(tmp_path / "penn.pkl", split="train")
    assert len(samples) == 1258 and meta["layout"] == "penn13"
    assert all(s.layout == "penn13" and s.img_shape is not None for s in samples[:5])


def test_parallel_read_equals_serial(penn_dir, tmp_path):
    for name in ("0001", "0002", "0900"):
        (tmp_path / f"{name}.mat").symlink_to(penn_dir / f"{name}.mat")
    serial = read_penn_action(tmp_path)
    parallel = read_penn_action(tmp_path, num_workers=2)
    assert serial["split"] == parallel["split"]
    for a, b in zip(serial["annotations"], parallel["annotations"]):
        assert a["frame_dir"] == b["frame_dir"]
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])


def test_malformed_files_name_the_file(tmp_path):
    junk = tmp_path / "0042.mat"
    junk.write_bytes(b"not a matlab file at all" * 10)
    with pytest.raises(DataFileError, match="0042.mat"):
        read_penn_mat(junk)

    T = 4
    good = {"action": "squat", "pose": "front", "x": np.zeros((T, 13)), "y": np.zeros((T, 13)),
            "visibility": np.ones((T, 13), np.uint8), "bbox": np.zeros((T, 4)),
            "dimensions": np.array([[360, 480, T]], np.uint16), "nframes": np.array([[T]]),
            "train": np.array([[1]])}
    ok = tmp_path / "ok.mat"
    scipy.io.savemat(str(ok), good)
    assert read_penn_mat(ok)["label"] == PENN_CLASSES.index("squat")

    cases = {
        "no_x": ({k: v for k, v in good.items() if k != "x"}, "missing keys \\['x'\\]"),
        "bad_action": (dict(good, action="dancing"), "unknown action 'dancing'"),
        "short_y": (dict(good, y=np.zeros((T - 1, 13))), "x/y/visibility"),
        "bad_vis": (dict(good, visibility=np.full((T, 13), 3, np.uint8)), "visibility must be 0/1"),
        "bad_train": (dict(good, train=np.array([[0]])), "'train' should be 1 or -1"),
    }
    for name, (content, pattern) in cases.items():
        p = tmp_path / f"{name}.mat"
        scipy.io.savemat(str(p), content)
        with pytest.raises(DataFileError, match=pattern) as e:
            read_penn_mat(p)
        assert p.name in str(e.value)


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DataFileError, match="no .mat label files"):
        read_penn_action(tmp_path)
    with pytest.raises(DataFileError, match="not found"):
        read_penn_action(tmp_path / "nope")
