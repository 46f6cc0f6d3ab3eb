"""Noise, occlusion and low-confidence removal (finetec.corruption.spatial)."""

import numpy as np
import pytest

from finetec.corruption.spatial import drop_low_confidence, gaussian_noise, occlude_joints


def _data(M=2, T=30, V=5, C=2, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-1, 1, size=(M, T, V, C)).astype(np.float32)
    score = rng.uniform(0.2, 1.0, size=(M, T, V)).astype(np.float32)
    return kp, score


def test_noise_only_on_present_joints_with_right_std():
    kp, score = _data(M=2, T=400, V=5)
    kp[0, :, 1] = 0
    score[0, :, 1] = 0  # a missing joint
    before = kp.copy()
    out = gaussian_noise(kp, score, 0.05, np.random.default_rng(0))
    np.testing.assert_array_equal(kp, before)  # input untouched
    assert np.all(out[0, :, 1] == 0)
    diff = (out - kp)[score > 0]
    assert abs(diff.std() - 0.05) < 0.003 and abs(diff.mean()) < 0.003
    assert out.dtype == np.float32


def test_noise_per_channel_scale_and_zero_sigma():
    kp, score = _data(T=2000)
    out = gaussian_noise(kp, score, 0.01, np.random.default_rng(1), scale=np.array([100.0, 50.0]))
    d = out - kp
    np.testing.assert_allclose([d[..., 0].std(), d[..., 1].std()], [1.0, 0.5], rtol=0.05)
    np.testing.assert_array_equal(gaussian_noise(kp, score, 0.0, np.random.default_rng(1)), kp)
    with pytest.raises(ValueError, match="scale"):
        gaussian_noise(kp, score, 0.01, np.random.default_rng(1), scale=np.ones(3))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_noise(kp, score, -1.0, np.random.default_rng(1))


def test_occlusion_hides_chosen_joints_for_one_span():
    kp, score = _data(M=3, T=20, V=6)
    kp2, sc2 = occlude_joints(kp, score, np.random.default_rng(2), num_joints=2, span_frames=5)
    hidden = sc2 == 0
    np.testing.assert_array_equal(hidden, np.all(kp2 == 0, -1))
    for m in range(3):
        joints = np.flatnonzero(hidden[m].any(0))
        assert len(joints) == 2
        for v in joints:
            frames = np.flatnonzero(hidden[m, :, v])
            assert len(frames) == 5 and np.all(np.diff(frames) == 1)
    np.testing.assert_array_equal(kp2[~hidden], kp[~hidden])
    np.testing.assert_array_equal(sc2[~hidden], score[~hidden])


def test_occlusion_span_capped_and_leading_dims():
    kp, score = _data(M=2, T=4, V=3)
    kp = np.stack([kp, kp])  # [clips, M, T, V, C]
    score = np.stack([score, score])
    _, sc2 = occlude_joints(kp, score, np.random.default_rng(0), num_joints=3, span_frames=100)
    assert np.all(sc2 == 0)  # every joint hidden over the whole (capped) span
    with pytest.raises(ValueError, match="num_joints"):
        occlude_joints(kp, score, np.random.default_rng(0), num_joints=4, span_frames=1)
    kp3, sc3 = occlude_joints(kp, score, np.random.default_rng(0), num_joints=0, span_frames=3)
    np.testing.assert_array_equal(kp3, kp)


def test_drop_low_confidence():
    kp, score = _data()
    score[0, 0, :3] = [0.05, 0.1, 0.3]
    kp2, sc2 = drop_low_confidence(kp, score, 0.1)
    assert sc2[0, 0, 0] == 0 and np.all(kp2[0, 0, 0] == 0)
    assert sc2[0, 0, 1] == np.float32(0.1) and sc2[0, 0, 2] == np.float32(0.3)
    np.testing.assert_array_equal(kp2[score >= 0.1], kp[score >= 0.1])
    with pytest.raises(ValueError, match="score shape"):
        drop_low_confidence(kp, score[:, :-1], 0.1)
