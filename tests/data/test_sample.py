"""finetec.data.sample.SkeletonSample: shape handling, validation errors, PYSKL dict round trip."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.data.sample import SampleError, SkeletonSample


def _kp(M=1, T=6, V=17, C=2, seed=0):
    return np.random.default_rng(seed).normal(size=(M, T, V, C)).astype(np.float32)


def test_defaults_and_single_person_input():
    s = SkeletonSample(_kp(T=6)[0].astype(np.float64), id="x")  # [T, V, C] float64
    assert s.keypoint.shape == (1, 6, 17, 2) and s.keypoint.dtype == np.float32
    assert s.mask.dtype == bool and s.mask.all() and s.score is None
    assert s.scores.shape == (1, 6, 17) and (s.scores == 1).all()
    assert (s.num_person, s.num_frames, s.num_joints) == (1, 6, 17)
    s2 = SkeletonSample(_kp()[0], score=np.ones((6, 17)), mask=[1, 1, 0, 1, 1, 1], img_shape=[480.0, 640.0])
    assert s2.score.shape == (1, 6, 17) and s2.mask.tolist() == [True, True, False, True, True, True]
    assert s2.img_shape == (480, 640)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(keypoint=np.zeros((17, 2))), r"must be \[M, T, V, C\]"),
    (dict(keypoint=np.zeros((1, 4, 17, 5))), "C must be 2 or 3"),
    (dict(keypoint=np.zeros((1, 4, 17, 2)), score=np.ones((1, 4, 16))), "score shape"),
    (dict(keypoint=np.zeros((1, 4, 17, 2)), mask=np.ones(5)), "mask shape"),
])
def test_construction_errors(kwargs, pattern):
    with pytest.raises(SampleError, match=pattern):
        SkeletonSample(id="bad", **kwargs)


def test_validate_accepts_good_sample():
    s = SkeletonSample(_kp(), id="ok", score=np.ones((1, 6, 17)), mask=np.array([0, 1, 1, 1, 1, 1], bool))
    assert s.validate(17) is s


def test_validate_nan():
    kp = _kp()
    kp[0, 3, 5, 1] = np.nan
    with pytest.raises(SampleError, match="sample 'n' \\(train\\): 1 joint\\(s\\) have NaN/inf.*frame 3, joint 5"):
        SkeletonSample(kp, id="n").validate(where="train")
    kp = _kp()
    kp[0, 2, 1, 0] = np.inf
    with pytest.raises(SampleError, match="NaN/inf"):
        SkeletonSample(kp, id="i").validate()


def test_validate_nan_score():
    score = np.ones((1, 6, 17), np.float32)
    score[0, 4, 2] = np.nan
    with pytest.raises(SampleError, match="non-finite score at person 0, frame 4, joint 2"):
        SkeletonSample(_kp(), score=score, id="s").validate()


def test_validate_empty_and_all_dropped_and_joint_count():
    with pytest.raises(SampleError, match="empty sequence"):
        SkeletonSample(np.zeros((1, 0, 17, 2)), id="e").validate()
    with pytest.raises(SampleError, match="empty sequence"):
        SkeletonSample(np.zeros((0, 5, 17, 2)), id="e").validate()
    with pytest.raises(SampleError, match="all 6 frames are dropped"):
        SkeletonSample(_kp(), mask=np.zeros(6, bool), id="d").validate()
    with pytest.raises(SampleError, match="has 17 joints, expected 25 for layout 'nturgbd25'"):
        SkeletonSample(_kp(), layout="nturgbd25", id="j").validate(25)


def test_copy_is_deep_and_applies_changes():
    s = SkeletonSample(_kp(), score=np.ones((1, 6, 17)), id="c", meta={"k": 1})
    c = s.copy(label=3)
    c.keypoint[...] = 0
    c.score[...] = 0
    c.mask[0] = False
    c.meta["k"] = 2
    assert c.label == 3 and s.label == -1
    assert (s.keypoint != 0).any() and (s.score == 1).all() and s.mask.all() and s.meta == {"k": 1}


def test_pyskl_round_trip():
    mask = np.ones(6, bool)
    mask[[1, 4]] = False
    s = SkeletonSample(_kp(), label=4, id="clip", score=np.full((1, 6, 17), 0.5), mask=mask, img_shape=(360, 480),
                       layout="coco17", meta={"bbox": np.zeros((6, 4))})
    d = s.to_pyskl()
    assert d["frame_dir"] == "clip" and d["total_frames"] == 6 and d["label"] == 4
    assert d["img_shape"] == (360, 480) and d["original_shape"] == (360, 480)
    np.testing.assert_array_equal(d["frame_mask"], mask)
    assert "bbox" in d
    back = SkeletonSample.from_pyskl(d, layout="coco17")
    np.testing.assert_array_equal(back.keypoint, s.keypoint)
    np.testing.assert_array_equal(back.score, s.score)
    np.testing.assert_array_equal(back.mask, mask)
    assert back.img_shape == (360, 480) and back.label == 4 and back.id == "clip" and "bbox" in back.meta
    full = SkeletonSample(_kp(), id="f").to_pyskl()
    assert "frame_mask" not in full and "keypoint_score" not in full and "img_shape" not in full


def test_from_pyskl_packed_score_needs_coord_dim_2():
    kp = np.concatenate([_kp(), np.full((1, 6, 17, 1), 0.25, np.float32)], -1).astype(np.float16)
    ann = {"frame_dir": "p", "label": 1, "keypoint": kp, "img_shape": (100, 100)}
    s = SkeletonSample.from_pyskl(ann, coord_dim=2)
    assert s.keypoint.shape == (1, 6, 17, 2) and s.keypoint.dtype == np.float32
    np.testing.assert_allclose(s.score, 0.25)
    # the annotation itself may say so (and the entry does not leak into meta)
    s = SkeletonSample.from_pyskl({**ann, "coord_dim": 2})
    assert s.keypoint.shape[-1] == 2 and "coord_dim" not in s.meta
    np.testing.assert_allclose(s.score, 0.25)
    # no guessing: without coord_dim a 3-channel keypoint stays 3D, img_shape or not
    for d in (ann, {**ann, "coord_dim": 3}):
        s3 = SkeletonSample.from_pyskl(d)
        assert s3.keypoint.shape[-1] == 3 and s3.score is None
        np.testing.assert_array_equal(s3.keypoint, kp.astype(np.float32))
    s3 = SkeletonSample.from_pyskl({"frame_dir": "q", "label": 1, "keypoint": _kp(V=25, C=3)}, layout="nturgbd25",
                                   coord_dim=3)
    assert s3.keypoint.shape[-1] == 3 and s3.score is None


def test_from_pyskl_coord_dim_errors():
    ann = {"frame_dir": "c", "keypoint": _kp(C=3)}
    with pytest.raises(SampleError, match="annotation 'c': annotation says coord_dim=3 but coord_dim=2"):
        SkeletonSample.from_pyskl({**ann, "coord_dim": 3}, coord_dim=2)
    with pytest.raises(SampleError, match="coord_dim must be 2 or 3, got 4"):
        SkeletonSample.from_pyskl(ann, coord_dim=4)
    with pytest.raises(SampleError, match="coord_dim must be 2 or 3"):
        SkeletonSample.from_pyskl({**ann, "coord_dim": "xy"})
    with pytest.raises(SampleError, match="coord_dim=3 but 'keypoint' has only 2 channels"):
        SkeletonSample.from_pyskl({"frame_dir": "c", "keypoint": _kp()}, coord_dim=3)
    with pytest.raises(SampleError, match="neither a coordinate nor the score"):
        SkeletonSample.from_pyskl({**ann, "keypoint_score": np.ones((1, 6, 17))}, coord_dim=2)


def test_from_pyskl_errors_name_the_annotation():
    with pytest.raises(SampleError, match="annotation 'z' in f.pkl: no 'keypoint'"):
        SkeletonSample.from_pyskl({"frame_dir": "z"}, where="f.pkl")
    with pytest.raises(SampleError, match="annotation 'z'.*must be \\[M, T, V, C\\]"):
        SkeletonSample.from_pyskl({"frame_dir": "z", "keypoint": np.zeros((6, 17, 2))})
    with pytest.raises(SampleError, match="annotation 'z'.*score shape"):
        SkeletonSample.from_pyskl({"frame_dir": "z", "keypoint": _kp(), "keypoint_score": np.ones((1, 5, 17))})


def test_validate_refuses_a_sequence_without_visible_joints_unless_allowed():
    import numpy as np
    import pytest

    from finetec.data.sample import SampleError, SkeletonSample

    kp = np.ones((1, 5, 13, 2), np.float32)
    s = SkeletonSample(keypoint=kp, score=np.zeros((1, 5, 13), np.float32), id="blind", layout="penn13")
    with pytest.raises(SampleError, match="blind.*no joint is visible in any of its 5 valid frames"):
        s.validate(13)
    assert s.validate(13, allow_no_joints=True) is s and not s.has_visible_joint
    # one visible joint in a dropped frame does not count
    score = np.zeros((1, 5, 13), np.float32)
    score[0, 2, 4] = 0.9
    mask = np.ones(5, bool)
    mask[2] = False
    with pytest.raises(SampleError, match="no joint is visible"):
        SkeletonSample(keypoint=kp, score=score, mask=mask, id="b", layout="penn13").validate()
    assert SkeletonSample(keypoint=kp, score=score, id="c", layout="penn13").validate().has_visible_joint
