"""Presets, seeded corruption of samples, and the Corrupt transform (finetec.corruption.presets / .transforms)."""

import zlib

import numpy as np
import pytest

from finetec.corruption import LEVELS, PRESETS, CorruptionSpec, Corrupt, corrupt_arrays, corrupt_sample, corrupt_seed
from finetec.corruption import get_spec
from finetec.data.sample import SkeletonSample
from finetec.data.transforms import build_pipeline


def _sample(sid="S001_A01", T=100, M=1, V=17, seed=0, img_shape=(480, 640)):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 400, size=(M, T, V, 2)).astype(np.float32)
    score = rng.uniform(0.3, 1.0, size=(M, T, V)).astype(np.float32)
    return SkeletonSample(keypoint=kp, score=score, id=sid, label=3, img_shape=img_shape, layout="coco17")


def test_levels_and_presets():
    assert {k: v.drop_ratio for k, v in LEVELS.items()} == {"clean": 0, "minor": 0.25, "moderate": 0.5,
                                                             "severe": 0.75}
    assert all(v.pattern == "random" and v.mode == "compact" for v in LEVELS.values())
    assert PRESETS["S-low"].noise_sigma < PRESETS["S-high"].noise_sigma
    assert PRESETS["T-low"].drop_ratio == PRESETS["T-high"].drop_ratio == 0.5
    assert (PRESETS["T-low"].pattern, PRESETS["T-high"].pattern) == ("random", "between")
    assert get_spec(None).is_clean and get_spec("clean").is_clean and not get_spec("minor").is_clean


def test_get_spec_forms_and_errors():
    s = get_spec("severe+S-low")
    assert s.key == "severe+S-low" and s.drop_ratio == 0.75 and s.then.noise_sigma == PRESETS["S-low"].noise_sigma
    d = get_spec({"drop_ratio": 0.4, "pattern": "prefix"})
    assert d.key == "custom(drop_ratio=0.4,pattern=prefix)"
    b = get_spec({"base": "severe", "mode": "inplace"})
    assert (b.drop_ratio, b.mode) == (0.75, "inplace") and b.key != "severe"
    assert get_spec(s) is s
    with pytest.raises(ValueError, match="unknown corruption preset 'sever'"):
        get_spec("sever")
    with pytest.raises(ValueError, match="unknown key"):
        get_spec({"drop": 0.5})
    with pytest.raises(ValueError, match="drop_ratio"):
        CorruptionSpec(drop_ratio=2)
    with pytest.raises(ValueError, match="pattern"):
        CorruptionSpec(pattern="zigzag")


def test_corrupt_seed_is_stable_crc32():
    assert corrupt_seed("vid_1", "severe", 0) == zlib.crc32(b"vid_1|severe|0")
    assert corrupt_seed("vid_1", get_spec("severe"), 0) == corrupt_seed("vid_1", "severe", 0)
    seeds = {corrupt_seed(i, lv, s) for i in ("a", "b") for lv in ("minor", "severe") for s in (0, 1)}
    assert len(seeds) == 8


def test_corrupt_sample_is_pure_and_ignores_global_rng():
    s = _sample()
    a = corrupt_sample(s, "severe", seed=0)
    np.random.random(1000)  # move the global state; must not matter
    b = corrupt_sample(s, "severe", seed=0)
    np.testing.assert_array_equal(a.keypoint, b.keypoint)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.score, b.score)
    c = corrupt_sample(s, "severe", seed=1)
    assert not np.array_equal(a.keypoint, c.keypoint)  # compact masks are equal prefixes; the survivors differ
    np.testing.assert_array_equal(s.keypoint, _sample().keypoint)  # input untouched
    assert a.meta["corruption"] == "severe" and a.meta["corruption_seed"] == 0


def test_paper_levels_compact_counts():
    s = _sample(T=100)
    for name, kept in (("clean", 100), ("minor", 75), ("moderate", 50), ("severe", 25)):
        out = corrupt_sample(s, name)
        assert out.mask.sum() == kept
        assert out.mask[:kept].all() and not out.mask[kept:].any()  # valid prefix, zero-padded end
        assert np.all(out.keypoint[:, kept:] == 0) and np.all(out.score[:, kept:] == 0)
        # survivors are original frames in their original order
        src = [np.flatnonzero(np.all(s.keypoint[0] == f, axis=(1, 2)))[0] for f in out.keypoint[0, :kept]]
        assert np.all(np.diff(src) > 0)
        out.validate(17)


@pytest.mark.parametrize("spec", ["S-low", "severe", "T-low", "T-high", "severe+S-low", "moderate+T-low",
                                  {"drop_ratio": 0.5, "occlude_joints": 3, "occlude_span": 4, "conf_thr": 0.5}])
def test_per_frame_meta_follows_the_frames(spec):
    T, V = 40, 17
    kp = np.broadcast_to(np.arange(1, T + 1, dtype=np.float32)[None, :, None, None], (1, T, V, 2)).copy()
    score = np.random.default_rng(1).uniform(0.3, 1.0, size=(1, T, V)).astype(np.float32)
    mask = np.ones(T, bool)
    mask[[3, 17]] = False  # frames invalid before the corruption
    bbox = np.arange(T * 4, dtype=np.float32).reshape(T, 4) + 1
    s = SkeletonSample(kp, score=score, mask=mask, id="m", meta={"bbox": bbox, "vis": np.ones(T, bool),
                                                                  "other": np.arange(3), "viewpoint": "front"})
    out = corrupt_sample(s, spec)
    # the keypoints carry their frame number (noise: 0.03 units, so it rounds back), read the truth from them
    frame = np.rint(np.abs(out.keypoint[0, :, :, 0]).max(-1)).astype(int) - 1  # -1: a zeroed frame
    assert out.mask.any() and (frame[out.mask] >= 0).all()
    np.testing.assert_array_equal(out.meta["bbox"][frame >= 0], bbox[frame[frame >= 0]])
    assert np.all(out.meta["bbox"][frame < 0] == 0) and out.meta["bbox"].dtype == np.float32
    np.testing.assert_array_equal(out.meta["vis"], frame >= 0)
    np.testing.assert_array_equal(out.meta["other"], np.arange(3))  # not per-frame: untouched
    assert out.meta["viewpoint"] == "front"
    np.testing.assert_array_equal(s.meta["bbox"], bbox)  # the input sample is untouched
    one = get_spec(spec) if not isinstance(spec, str) or "+" not in spec else None
    if one is not None and one.mode == "compact" and one.drop_ratio > 0:  # kept frames first, in order, rest zero
        n = int(out.mask.sum())
        assert np.all(np.diff(frame[:n]) > 0) and np.all(out.meta["bbox"][n:] == 0)
    if spec == "S-low":  # nothing dropped: nothing moves
        np.testing.assert_array_equal(out.meta["bbox"], bbox)
    if spec in ("T-low", "T-high"):  # in place: kept rows where they were, dropped rows zero
        np.testing.assert_array_equal(out.meta["bbox"][out.mask], bbox[out.mask])
        assert np.all(out.meta["bbox"][mask & ~out.mask] == 0)
    np.testing.assert_array_equal(corrupt_sample(s, spec).meta["bbox"], out.meta["bbox"])  # still pure


def test_per_frame_meta_cannot_follow_a_fully_occluded_frame():
    s = _sample(T=10).copy(meta={"bbox": np.ones((10, 4), np.float32)})
    spec = {"occlude_joints": 17, "occlude_span": 10}  # every joint hidden in every frame
    with pytest.raises(ValueError, match="sample 'S001_A01'.*meta \\['bbox'\\].*every joint of output frame 0"):
        corrupt_sample(s, spec)
    assert corrupt_sample(s.copy(meta={}), spec).mask.all()  # without per-frame meta there is nothing to carry


def test_different_ids_get_different_masks():
    data = _sample(sid="x")
    masks = {corrupt_sample(data.copy(id=f"clip{i}"), "T-low").mask.tobytes() for i in range(20)}
    assert len(masks) == 20
    kept = {corrupt_sample(data.copy(id=f"clip{i}"), "moderate").keypoint.tobytes() for i in range(20)}
    assert len(kept) == 20


def test_all_dropped_is_impossible():
    for T in (1, 2, 3, 5):
        for spec in ("severe", {"drop_ratio": 1.0}, {"drop_ratio": 1.0, "pattern": "between", "mode": "inplace"},
                     "severe+T-high"):
            out = corrupt_sample(_sample(T=T), spec)
            assert out.mask.sum() == 1 if T > 1 else out.mask.all()


def test_robustness_presets_semantics():
    s = _sample(T=64)
    lo, hi = corrupt_sample(s, "T-low"), corrupt_sample(s, "T-high")
    for out in (lo, hi):
        assert out.mask.sum() == 32
        np.testing.assert_array_equal(out.keypoint[:, out.mask], s.keypoint[:, out.mask])  # in place
    gaps = np.flatnonzero(~hi.mask)
    assert np.all(np.diff(gaps) == 1) and hi.mask[0] and hi.mask[-1]
    assert np.diff(np.flatnonzero(~lo.mask)).max() >= 1 and not np.all(np.diff(np.flatnonzero(~lo.mask)) == 1)
    # composition: minor (75 of 100, compact) then T-low (drop round(37.5) = 38 of those in place)
    both = corrupt_sample(_sample(T=100), "minor+T-low")
    assert both.mask.sum() == 37 and not both.mask[75:].any()


def test_noise_sigma_is_in_normalised_units():
    s = _sample(T=2000, img_shape=(480, 640))
    out = corrupt_sample(s, "S-high")
    d = out.keypoint - s.keypoint
    np.testing.assert_allclose([d[..., 0].std(), d[..., 1].std()],
                               [PRESETS["S-high"].noise_sigma * 320, PRESETS["S-high"].noise_sigma * 240], rtol=0.05)
    np.testing.assert_array_equal(out.mask, s.mask)


def test_corrupt_sample_needs_an_id():
    with pytest.raises(ValueError, match="no id"):
        corrupt_sample(_sample(sid=""), "minor")


def test_corrupt_arrays_keeps_missing_joints_missing():
    s = _sample(T=50)
    score = s.score.copy()
    score[0, :, 3] = 0
    kp = s.keypoint.copy()
    kp[0, :, 3] = 0
    spec = {"drop_ratio": 0.5, "noise_sigma": 0.5, "occlude_joints": 2, "occlude_span": 10, "conf_thr": 0.4}
    kp2, sc2, m2, n = corrupt_arrays(kp, score, s.mask, spec, np.random.default_rng(0))
    assert n == 25 and np.all(kp2[sc2 == 0] == 0)
    assert np.all(kp2[0, :, 3] == 0)
    assert sc2[sc2 > 0].min() >= 0.4


# ---------------------------------------------------------------------------------------------- Corrupt transform
def _results(T=32, nc=1, seed=0, frame_dir="clip_7"):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(-1, 1, size=(2, T * nc, 17, 2)).astype(np.float32)
    return dict(keypoint=kp, keypoint_score=np.ones(kp.shape[:3], np.float32), mask=np.ones(T * nc, bool),
                frame_dir=frame_dir, clip_len=T, num_clips=nc, coord_norm="image", img_shape=(480, 640),
                layout="coco17", rng=np.random.default_rng([seed, 1]))


def test_corrupt_test_mode_is_fixed_per_sample():
    t = Corrupt("severe", test_mode=True, seed=0)
    a = t(_results(seed=0))
    b = t(_results(seed=0) | {"rng": np.random.default_rng(999)})  # the per-sample rng is not used
    np.testing.assert_array_equal(a["mask"], b["mask"])
    np.testing.assert_array_equal(a["keypoint"], b["keypoint"])
    assert a["valid_len"].tolist() == [8] and a["corruption"] == "severe"
    # same frames as corrupt_sample would choose for the same id, level and seed
    r = _results(seed=0)
    kp, sc, mk, _ = corrupt_arrays(r["keypoint"], r["keypoint_score"], r["mask"], "severe",
                                   np.random.default_rng(corrupt_seed("clip_7", "severe", 0)))
    np.testing.assert_array_equal(a["mask"], mk)
    np.testing.assert_array_equal(a["keypoint"], kp)
    c = t(_results(seed=0, frame_dir="clip_8"))
    assert not np.array_equal(c["keypoint"], a["keypoint"])


def test_corrupt_training_uses_results_rng_and_choices():
    t = Corrupt(["minor", "severe"], pattern=["prefix", "suffix"], mode="inplace")
    seen = set()
    for i in range(30):
        out = t(_results(seed=i))
        n = int(out["mask"].sum())
        assert n in (24, 8)
        m = out["mask"]
        kind = "prefix" if not m[0] else "suffix"
        assert m[m.argmax():].all() if kind == "prefix" else m[:n].all()
        seen.add((n, kind))
    assert len(seen) == 4
    with pytest.raises(Exception, match="rng"):
        t({k: v for k, v in _results().items() if k != "rng"})
    with pytest.raises(ValueError, match="test mode"):
        Corrupt(["minor", "severe"], test_mode=True)


def test_corrupt_clips_independently():
    out = Corrupt("moderate", test_mode=True)(_results(T=16, nc=3))
    m = out["mask"].reshape(3, 16)
    assert out["valid_len"].tolist() == [8, 8, 8]
    assert m[:, :8].all() and not m[:, 8:].any()  # compact within each clip


def test_corrupt_is_registered_for_build_pipeline():
    pipe = build_pipeline([{"type": "Corrupt", "level": "minor", "test_mode": True}])
    out = pipe(_results())
    assert out["valid_len"].tolist() == [24]


@pytest.mark.parametrize("T", [18, 30, 47])
@pytest.mark.parametrize("level,kept", [("minor", 0.75), ("moderate", 0.5), ("severe", 0.25)])
def test_corrupt_counts_distinct_source_frames_of_looped_clips(T, level, kept):
    """A short sequence looped to clip_len loses the stated share of its *real* frames, copies go together."""
    from finetec.corruption.temporal import num_dropped
    from finetec.data.transforms import UniformSampleFrames

    raw = np.arange(T, dtype=np.float32)[None, :, None, None] * np.ones((1, T, 13, 2), np.float32) + 1.0
    r = dict(keypoint=raw, keypoint_score=np.ones((1, T, 13), np.float32), mask=np.ones(T, bool),
             total_frames=T, frame_dir=f"clip{T}")
    r = UniformSampleFrames(48, test_mode=True)(r)
    out = Corrupt(level, test_mode=True)(r)
    kept_ids = np.unique(out["keypoint"][0, out["mask"], 0, 0] - 1.0).astype(int)
    assert len(kept_ids) == T - num_dropped(np.array(T), 1 - kept)
    # every looped copy of a surviving raw frame survives too
    sampled = np.mod(UniformSampleFrames(48, test_mode=True)._indices(T, np.random.RandomState(255), test=True), T)
    assert out["mask"].sum() == np.isin(sampled, kept_ids).sum()
    assert "frame_inds" not in out


@pytest.mark.parametrize("level,mode", [("severe", "compact"), ("moderate", "inplace"), ("severe+S-low", "compact"),
                                        ("minor+T-low", "compact")])
def test_corrupt_keep_clean_records_the_surviving_frames(level, mode):
    """kept[t] is True exactly for the clean frames found (in order) in the corrupted clip, per clip."""
    T, nc = 16, 3
    r = _results(T=T, nc=nc, seed=4)
    r["keypoint"] = r["keypoint"] + np.arange(T * nc, dtype=np.float32)[None, :, None, None] * 10  # frames differ
    clean = r["keypoint"].copy()
    for test_mode in (True, False):
        out = Corrupt(level, mode=mode, test_mode=test_mode, keep_clean=True)(dict(r, keypoint=clean.copy()))
        np.testing.assert_array_equal(out["keypoint_clean"], clean)
        kept = out["kept"].reshape(nc, T)
        m = out["mask"].reshape(nc, T)
        kp = out["keypoint"].reshape(2, nc, T, 17, 2)
        ck = clean.reshape(2, nc, T, 17, 2)
        for c in range(nc):
            assert kept[c].sum() == m[c].sum()
            if "S-" not in level:  # no noise: the surviving frames are the clean ones, in time order
                np.testing.assert_array_equal(kp[:, c][:, m[c]], ck[:, c][:, kept[c]])
            else:
                assert np.abs(kp[:, c][:, m[c]] - ck[:, c][:, kept[c]]).max() < 0.2
            if mode == "inplace":
                np.testing.assert_array_equal(kept[c], m[c])
    # keep_clean does not change what the corruption does
    a = Corrupt(level, mode=mode, test_mode=True)(dict(r, keypoint=clean.copy()))
    b = Corrupt(level, mode=mode, test_mode=True, keep_clean=True)(dict(r, keypoint=clean.copy()))
    np.testing.assert_array_equal(a["keypoint"], b["keypoint"])


def test_keep_clean_with_looped_clip_and_format():
    from finetec.data.transforms import FormatGCNInput, UniformSampleFrames

    T = 20
    raw = np.arange(T, dtype=np.float32)[None, :, None, None] * np.ones((1, T, 13, 2), np.float32) + 1.0
    r = dict(keypoint=raw, keypoint_score=np.ones((1, T, 13), np.float32), mask=np.ones(T, bool),
             total_frames=T, frame_dir="clip20")
    r = UniformSampleFrames(48, num_clips=2, test_mode=True)(r)
    r = Corrupt("severe", test_mode=True, keep_clean=True)(r)
    r = FormatGCNInput(num_person=2)(r)
    assert r["keypoint_clean"].shape == (2, 2, 48, 13, 2) and r["kept"].shape == (2, 48)
    assert not r["keypoint_clean"][:, 1].any()  # the padded second person
    for c in range(2):
        survivors = r["keypoint"][c, 0, r["mask"][c], 0, 0]
        np.testing.assert_array_equal(survivors, r["keypoint_clean"][c, 0, r["kept"][c], 0, 0])
