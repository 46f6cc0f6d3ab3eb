"""Pipeline transforms (finetec.data.transforms)."""

import numpy as np
import pytest

from finetec.data.transforms import (
    TRANSFORMS,
    Compose,
    Flip,
    FormatGCNInput,
    PreNormalize2D,
    PreNormalize3D,
    RandomRotateScale,
    SkeletonStreams,
    TransformError,
    UniformSampleFrames,
    build_pipeline,
    default_pipeline,
)
from finetec.layouts import get_layout


def _results(T=20, M=1, V=17, C=2, seed=0, **extra):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(10, 400, size=(M, T, V, C)).astype(np.float32)
    r = dict(keypoint=kp, keypoint_score=np.ones((M, T, V), np.float32), mask=np.ones(T, bool), total_frames=T,
             frame_dir=f"vid{seed}", label=1, img_shape=(480, 640), layout="coco17", rng=np.random.default_rng(seed))
    r.update(extra)
    return r


# ------------------------------------------------------------------------------------------ UniformSampleFrames
def pyskl_test_clips(num_frames, clip_len, num_clips, seed=255):
    """PYSKL's UniformSampleFrames._get_test_clips (p_interval=1), run on the legacy global RNG (state restored)."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        all_inds = []
        for i in range(num_clips):
            ratio = np.random.rand() * 0 + 1
            n = int(ratio * num_frames)
            off = np.random.randint(num_frames - n + 1)
            if n < clip_len:
                start = i if n < num_clips else i * n // num_clips
                inds = np.arange(start, start + clip_len)
            elif clip_len <= n < clip_len * 2:
                basic = np.arange(clip_len)
                inds = np.random.choice(clip_len + 1, n - clip_len, replace=False)
                offset = np.zeros(clip_len + 1, dtype=np.int64)
                offset[inds] = 1
                inds = basic + np.cumsum(offset)[:-1]
            else:
                bids = np.array([i * n // clip_len for i in range(clip_len + 1)])
                inds = bids[:clip_len] + np.random.randint(np.diff(bids))
            all_inds.append(inds + off)
        return np.mod(np.concatenate(all_inds), num_frames)
    finally:
        np.random.set_state(state)


def test_sample_short_clip_test_mode_hand_worked():
    out = UniformSampleFrames(8, test_mode=True)(_results(T=5))
    np.testing.assert_array_equal(out["frame_inds"], [0, 1, 2, 3, 4, 0, 1, 2])
    out = UniformSampleFrames(8, num_clips=2, test_mode=True)(_results(T=5))
    # clip 1 starts at 1 * 5 // 2 = 2
    np.testing.assert_array_equal(out["frame_inds"], [0, 1, 2, 3, 4, 0, 1, 2, 2, 3, 4, 0, 1, 2, 3, 4])
    out = UniformSampleFrames(4, num_clips=4, test_mode=True)(_results(T=3))  # fewer frames than clips: start i
    np.testing.assert_array_equal(out["frame_inds"].reshape(4, 4), [[0, 1, 2, 0], [1, 2, 0, 1], [2, 0, 1, 2],
                                                                    [0, 1, 2, 0]])


@pytest.mark.parametrize("T,clip_len,num_clips", [(5, 8, 1), (5, 8, 3), (12, 8, 1), (15, 8, 2), (16, 8, 1),
                                                  (100, 48, 10), (37, 10, 1), (300, 100, 1)])
def test_sample_test_mode_equals_pyskl(T, clip_len, num_clips):
    before = np.random.get_state()[1].copy()
    out = UniformSampleFrames(clip_len, num_clips=num_clips, test_mode=True)(_results(T=T))
    np.testing.assert_array_equal(out["frame_inds"], pyskl_test_clips(T, clip_len, num_clips))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global RNG untouched


def test_sample_test_mode_is_deterministic_and_gathers():
    t = UniformSampleFrames(6, num_clips=2, test_mode=True)
    r = _results(T=30)
    r["mask"][[3, 4, 5]] = False
    a = t(dict(r))
    b = t(_results(T=30) | {"rng": np.random.default_rng(123)})
    np.testing.assert_array_equal(a["frame_inds"], b["frame_inds"])
    inds = a["frame_inds"]
    assert a["keypoint"].shape == (1, 12, 17, 2) and a["keypoint_score"].shape == (1, 12, 17)
    np.testing.assert_array_equal(a["keypoint"], r["keypoint"][:, inds])
    np.testing.assert_array_equal(a["mask"], r["mask"][inds])
    assert (a["clip_len"], a["num_clips"]) == (6, 2)


def test_sample_train_cases():
    t = UniformSampleFrames(4)
    for seed in range(20):
        # long: one frame from each segment [0,5), [5,10), [10,15), [15,20)
        inds = t(_results(T=20, seed=seed))["frame_inds"]
        assert np.all(inds // 5 == np.arange(4))
        # clip_len <= T < 2 clip_len: increasing, steps of 1 or 2, T - clip_len = 2 skips at most
        inds = t(_results(T=6, seed=seed))["frame_inds"]
        assert np.all(np.diff(inds) >= 1) and inds[-1] <= 5 and inds[-1] - 3 <= 2
        # short: consecutive from a random start, looped
        inds = t(_results(T=3, seed=seed))["frame_inds"]
        assert np.all(np.diff(np.unwrap(inds, period=3)) == 1)
    starts = {t(_results(T=3, seed=s))["frame_inds"][0] for s in range(30)}
    assert starts == {0, 1, 2}
    a = t(_results(T=50, seed=1))["frame_inds"]
    b = t(_results(T=50, seed=1))["frame_inds"]
    np.testing.assert_array_equal(a, b)  # same per-sample rng, same frames


def test_sample_errors():
    with pytest.raises(TransformError, match="rng"):
        UniformSampleFrames(4)({k: v for k, v in _results().items() if k != "rng"})
    with pytest.raises(TransformError, match="total_frames"):
        UniformSampleFrames(4, test_mode=True)(_results(T=10) | {"total_frames": 11})


# ------------------------------------------------------------------------------------------ normalisation
def test_prenormalize2d_image():
    r = _results(T=3, V=17)
    r["keypoint"][0, 0, 0] = [0, 480]
    r["keypoint"][0, 0, 1] = [640, 0]
    r["keypoint"][0, 0, 2] = [320, 240]
    r["keypoint_score"][0, 0, 3] = 0
    r["mask"][2] = False
    out = PreNormalize2D()(r)
    kp = out["keypoint"]
    np.testing.assert_allclose(kp[0, 0, :3], [[-1, 1], [1, -1], [0, 0]])
    assert np.all(kp[0, 0, 3] == 0) and np.all(kp[0, 2] == 0) and np.all(out["keypoint_score"][0, 2] == 0)
    assert out["coord_norm"] == "image"
    x_back = kp[0, 1] * out["norm_scale"] + out["norm_center"]
    np.testing.assert_allclose(x_back, _results(T=3)["keypoint"][0, 1], rtol=1e-5)
    with pytest.raises(TransformError, match="img_shape"):
        PreNormalize2D()(_results() | {"img_shape": None})
    with pytest.raises(TransformError, match="PreNormalize3D"):
        PreNormalize2D()(_results(C=3))


def test_prenormalize2d_box():
    kp = np.zeros((1, 2, 3, 2), np.float32)
    kp[0, 0] = [[10, 20], [30, 60], [1000, 1000]]
    kp[0, 1] = [[20, 40], [15, 30], [-500, 0]]
    score = np.ones((1, 2, 3), np.float32)
    score[0, 0, 2] = 0  # the outliers are missing or in an invalid frame: they do not shape the box
    r = dict(keypoint=kp, keypoint_score=score, mask=np.array([True, True]), frame_dir="b")
    r["keypoint_score"][0, 1, 2] = 0
    out = PreNormalize2D(by="box", margin=0.0)(r)
    # box x in [10, 30], y in [20, 60] -> centre (20, 40), half of the longer side = 20
    np.testing.assert_allclose(out["keypoint"][0, 0, :2], [[-0.5, -1], [0.5, 1]])
    np.testing.assert_allclose(out["keypoint"][0, 1, :2], [[0, 0], [-0.25, -0.5]])
    assert np.all(out["keypoint"][0, :, 2] == 0)
    out = PreNormalize2D(by="box", margin=1.0)(dict(r, keypoint=kp))
    np.testing.assert_allclose(out["keypoint"][0, 0, 1], [0.25, 0.5])


def _body_layout():
    return get_layout(dict(name="body6", joints=["pelvis", "left_hip", "right_hip", "left_shoulder",
                                                 "right_shoulder", "head"],
                           center="pelvis",
                           edges=[["left_hip", "pelvis"], ["right_hip", "pelvis"], ["left_shoulder", "pelvis"],
                                  ["right_shoulder", "pelvis"], ["head", "pelvis"]],
                           flip_pairs=[["left_hip", "right_hip"], ["left_shoulder", "right_shoulder"]]))


def test_prenormalize3d_centre_and_align():
    canon = np.array([[0, 0, 0], [-0.2, 0, 0], [0.2, 0, 0], [-0.25, 0, 0.5], [0.25, 0, 0.5], [0, 0, 0.7]])
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))  # a proper rotation
    T = 4
    frames = np.stack([canon + [0, 0.01 * t, 0] for t in range(T)])  # drifts along y
    kp = (frames @ rot.T + [1.0, 2.0, 3.0])[None].astype(np.float32)
    score = np.ones((1, T, 6), np.float32)
    score[0, 2, 5] = 0
    r = dict(keypoint=kp, keypoint_score=score, mask=np.array([False, True, True, True]), layout=_body_layout(),
             frame_dir="x")
    out = PreNormalize3D()(dict(r))
    # centred on the pelvis of the first valid frame (frame 1), axes back to the canonical body frame
    np.testing.assert_allclose(out["keypoint"][0, 1], canon, atol=1e-5)
    np.testing.assert_allclose(out["keypoint"][0, 3], canon + [0, 0.02, 0], atol=1e-5)
    assert np.all(out["keypoint"][0, 0] == 0) and np.all(out["keypoint"][0, 2, 5] == 0)
    assert out["aligned"] and out["vertical_axis"] == 2
    out = PreNormalize3D(align=False)(dict(r))
    np.testing.assert_allclose(out["keypoint"][0, 1], (canon @ rot.T), atol=1e-5)
    assert not out["aligned"]


# ------------------------------------------------------------------------------------------ streams
CHAIN = dict(name="chain3", joints=["root", "mid", "tip"], center="root", edges=[["mid", "root"], ["tip", "mid"]],
             flip_pairs=[])


def test_streams_joint_bone_motion_2d():
    kp = np.array([[[[0, 0], [1, 0], [1, 2]],
                    [[0, 1], [2, 1], [2, 4]],
                    [[5, 5], [5, 5], [5, 5]],
                    [[1, 1], [1, 3], [4, 3]]]], np.float32)  # [1, 4, 3, 2]
    score = np.array([[[1, 0.8, 0.6], [1, 0.5, 0.5], [1, 1, 1], [1, 1, 0]]], np.float32)
    mask = np.array([True, True, False, True])
    r = dict(keypoint=kp, keypoint_score=score, mask=mask, layout=CHAIN, frame_dir="c")
    out = SkeletonStreams(feats=("j", "b", "jm", "bm"))(r)
    f = out["keypoint"]
    assert f.shape == (1, 4, 3, 12) and f.dtype == np.float32
    j, b, jm, bm = f[..., 0:3], f[..., 3:6], f[..., 6:9], f[..., 9:12]
    np.testing.assert_allclose(j[0, 0], [[0, 0, 1], [1, 0, 0.8], [1, 2, 0.6]])
    assert np.all(j[0, 2] == 0)  # invalid frame
    # bones x_v - x_parent(v); root bone 0 with the root's score; bone score = mean of its joints' scores
    np.testing.assert_allclose(b[0, 0], [[0, 0, 1], [1, 0, 0.9], [0, 2, 0.7]])
    np.testing.assert_allclose(b[0, 3], [[0, 0, 1], [0, 2, 1], [0, 0, 0]])  # tip missing -> its bone is 0
    # joint motion: frame 0 -> 1, score = mean of the two frames' scores (PYSKL's ToMotion); nothing across the
    # invalid frame 2; last frame 0
    np.testing.assert_allclose(jm[0, 0], [[0, 1, 1], [1, 1, 0.65], [1, 2, 0.55]], rtol=1e-6)
    assert np.all(jm[0, 1] == 0) and np.all(jm[0, 2] == 0) and np.all(jm[0, 3] == 0)
    # bone motion: (2,0)-(1,0), (0,3)-(0,2); score = mean of the bone scores [1, .9, .7] and [1, .75, .5]
    np.testing.assert_allclose(bm[0, 0], [[0, 0, 1], [1, 0, 0.825], [0, 1, 0.6]], rtol=1e-6)
    assert np.all(bm[0, 1:] == 0)
    assert SkeletonStreams(feats=("j", "b", "jm", "bm")).num_channels(2) == 12


def test_streams_3d_and_clip_boundaries():
    kp = np.cumsum(np.ones((1, 6, 3, 3), np.float32), axis=1)  # every joint moves by (1,1,1) per frame
    r = dict(keypoint=kp, mask=np.ones(6, bool), layout=CHAIN, frame_dir="c", clip_len=3)
    out = SkeletonStreams(feats=("jm",))(r)
    jm = out["keypoint"]
    assert jm.shape == (1, 6, 3, 3)  # no score channel in 3D
    np.testing.assert_array_equal(jm[0, :, 0, 0], [1, 1, 0, 1, 1, 0])  # zero at the end of each clip
    with pytest.raises(ValueError, match="feats"):
        SkeletonStreams(feats=("j", "acc"))


# ------------------------------------------------------------------------------------------ augmentation
def test_flip_swaps_left_and_right():
    lay = get_layout("coco17")
    r = PreNormalize2D()(_results(T=4))
    r["keypoint_score"][0, 0, lay.index("left_wrist")] = 0
    r["keypoint"][0, 0, lay.index("left_wrist")] = 0
    before = r["keypoint"].copy()
    out = Flip(flip_ratio=1.0)(r)
    kp = out["keypoint"]
    ls, rs = lay.index("left_shoulder"), lay.index("right_shoulder")
    np.testing.assert_allclose(kp[0, :, ls], before[0, :, rs] * [-1, 1])
    np.testing.assert_allclose(kp[0, :, rs], before[0, :, ls] * [-1, 1])
    np.testing.assert_allclose(kp[0, :, 0], before[0, :, 0] * [-1, 1])  # nose stays
    rw = lay.index("right_wrist")  # the missing left wrist is now the (missing) right wrist
    assert out["keypoint_score"][0, 0, rw] == 0 and np.all(kp[0, 0, rw] == 0)
    assert out["flip"]
    flips = [Flip()(PreNormalize2D()(_results(seed=s)))["flip"] for s in range(40)]
    assert 5 < sum(flips) < 35
    with pytest.raises(TransformError, match="PreNormalize2D"):
        Flip(1.0)(_results())


def test_rotate_scale_2d_and_3d():
    r = PreNormalize2D()(_results(T=5))
    r["keypoint_score"][0, 1, 4] = 0
    r["keypoint"][0, 1, 4] = 0
    before = r["keypoint"].copy()
    out = RandomRotateScale(max_angle_deg=30, scale=(0.5, 2.0))(r)
    s, ang = out["rotate_scale"], out["rotate_angle"]
    assert 0.5 <= s <= 2.0 and -30 <= ang <= 30
    np.testing.assert_allclose(np.linalg.norm(out["keypoint"], axis=-1), s * np.linalg.norm(before, axis=-1),
                               rtol=1e-5, atol=1e-6)
    assert np.all(out["keypoint"][0, 1, 4] == 0)
    r3 = dict(keypoint=np.random.default_rng(0).normal(size=(1, 5, 6, 3)).astype(np.float32), frame_dir="z",
              rng=np.random.default_rng(1), vertical_axis=2)
    z_before = r3["keypoint"][..., 2].copy()
    out = RandomRotateScale()(r3)
    np.testing.assert_allclose(out["keypoint"][..., 2], out["rotate_scale"] * z_before, rtol=1e-5)


# ------------------------------------------------------------------------------------------ formatting
def test_format_gcn_input_pad_and_truncate():
    r = _results(T=12, M=1)
    r.update(num_clips=3, clip_len=4)
    r["mask"][5] = False
    out = FormatGCNInput(num_person=2)(dict(r))
    assert out["keypoint"].shape == (3, 2, 4, 17, 2) and out["keypoint"].dtype == np.float32
    assert out["mask"].shape == (3, 4) and out["valid_len"].tolist() == [4, 3, 4]
    np.testing.assert_array_equal(out["keypoint"][1, 0], r["keypoint"][0, 4:8])
    assert np.all(out["keypoint"][:, 1] == 0) and np.all(out["keypoint_score"][:, 1] == 0)

    r = _results(T=4, M=4)
    r["keypoint_score"] *= np.array([0.1, 0.9, 0.2, 0.8], np.float32)[:, None, None]
    out = FormatGCNInput(num_person=2)(dict(r))
    np.testing.assert_array_equal(out["keypoint"][0], r["keypoint"][[1, 3]])  # best two, original order
    with pytest.raises(TransformError, match="num_clips"):
        FormatGCNInput()(_results(T=10) | {"num_clips": 3})


# ------------------------------------------------------------------------------------------ pipelines
def test_build_pipeline_and_registry():
    assert {"UniformSampleFrames", "PreNormalize2D", "FormatGCNInput"} <= set(TRANSFORMS)
    with pytest.raises(KeyError, match="unknown transform"):
        build_pipeline([{"type": "NoSuchThing"}])
    with pytest.raises(TypeError, match="UniformSampleFrames"):
        build_pipeline([{"type": "UniformSampleFrames", "clip": 3}])
    with pytest.raises(TransformError, match="returned"):
        Compose([lambda r: None])(_results())


@pytest.mark.parametrize("test_mode", [False, True])
def test_default_pipeline_end_to_end(test_mode):
    cfgs = default_pipeline("coco17", clip_len=16, num_clips=2, test_mode=test_mode, feats=("j", "b"),
                            corruption="severe")
    types = [c["type"] for c in cfgs]
    expected = ["PreNormalize2D", "UniformSampleFrames"]
    expected += [] if test_mode else ["Flip", "RandomRotateScale"]
    assert types == expected + ["Corrupt", "SkeletonStreams", "FormatGCNInput"]
    pipe = build_pipeline(cfgs)
    out = pipe(_results(T=70, M=1, seed=3))
    assert out["keypoint"].shape == (2, 2, 16, 17, 6)
    assert out["valid_len"].tolist() == [4, 4]
    if test_mode:  # every run sees the same input
        again = build_pipeline(cfgs)(_results(T=70, M=1, seed=3) | {"rng": np.random.default_rng(77)})
        np.testing.assert_array_equal(out["keypoint"], again["keypoint"])


def test_default_pipeline_3d():
    lay = get_layout("nturgbd25")
    cfgs = default_pipeline(lay, clip_len=10, num_clips=1, test_mode=False, norm="3d")
    assert cfgs[0] == {"type": "PreNormalize3D", "align": True}
    r = dict(keypoint=np.random.default_rng(0).normal(size=(2, 30, 25, 3)).astype(np.float32), total_frames=30,
             layout=lay, frame_dir="S001C001P001R001A001", rng=np.random.default_rng(0))
    out = build_pipeline(cfgs)(r)
    assert out["keypoint"].shape == (1, 2, 10, 25, 3)
