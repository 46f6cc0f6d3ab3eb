"""Frame-drop masks and their application (finetec.corruption.temporal)."""

import numpy as np
import pytest

from finetec.corruption.temporal import PATTERNS, drop_frames, frame_drop_mask, frame_drop_masks, num_dropped


def expected_kept(n: int, ratio: float) -> int:
    d = int(np.floor(ratio * n + 0.5))
    return n - min(d, max(n - 1, 0))


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("T", [1, 2, 7, 16, 48, 100])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_exact_drop_counts(pattern, T, ratio):
    rng = np.random.default_rng(T)
    for _ in range(5):
        keep = frame_drop_mask(T, ratio, pattern, rng)
        assert keep.dtype == bool and keep.shape == (T,)
        assert keep.sum() == expected_kept(T, ratio)
        assert keep.sum() >= 1


def test_round_half_up_and_cap():
    assert num_dropped(5, 0.5) == 3  # 2.5 -> 3
    assert num_dropped(10, 0.25) == 3  # 2.5 -> 3
    assert num_dropped(100, 0.75) == 75
    assert num_dropped(4, 1.0) == 3  # one frame always survives
    assert num_dropped(0, 0.5) == 0
    np.testing.assert_array_equal(num_dropped(np.array([8, 9, 1]), 0.5), [4, 5, 0])


@pytest.mark.parametrize("pattern", PATTERNS)
def test_counts_only_valid_frames(pattern):
    valid = np.zeros(40, bool)
    valid[[1, 3, 4, 8, 10, 11, 12, 20, 21, 30, 33, 39]] = True  # 12 valid
    keep = frame_drop_mask(40, 0.75, pattern, np.random.default_rng(1), valid=valid)
    assert keep.sum() == 3
    assert not keep[~valid].any()


def test_positions_prefix_suffix():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(frame_drop_mask(8, 0.5, "prefix", rng), [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(frame_drop_mask(8, 0.25, "suffix", rng), [1, 1, 1, 1, 1, 1, 0, 0])
    valid = np.array([0, 1, 1, 0, 1, 1, 1, 0], bool)  # 5 valid -> prefix drops round(2.5)=3 of them
    np.testing.assert_array_equal(frame_drop_mask(8, 0.5, "prefix", rng, valid=valid), [0, 0, 0, 0, 0, 1, 1, 0])


def test_between_is_one_inner_block():
    rng = np.random.default_rng(3)
    starts = set()
    for _ in range(200):
        keep = frame_drop_mask(20, 0.5, "between", rng)
        dropped = np.flatnonzero(~keep)
        assert len(dropped) == 10
        assert np.all(np.diff(dropped) == 1)  # contiguous
        assert keep[0] and keep[-1]  # strictly inside
        starts.add(dropped[0])
    assert starts == set(range(1, 10))  # every inner start is reachable
    # when only one frame can be kept, the block touches an end
    keep = frame_drop_mask(4, 1.0, "between", rng)
    assert keep.sum() == 1 and (keep[0] or keep[-1])


def test_periodic_is_regular():
    rng = np.random.default_rng(5)
    for _ in range(20):
        keep = frame_drop_mask(16, 0.5, "periodic", rng)
        assert np.all(keep[::2] != keep[1::2]) and len(set(keep[::2])) == 1  # strictly alternating
        for ratio in (0.25, 0.75, 0.3):
            keep = frame_drop_mask(50, ratio, "periodic", rng)
            gaps = np.diff(np.flatnonzero(~keep))
            assert gaps.max() - gaps.min() <= 1  # as evenly spread as the ratio allows


def test_random_is_uniform_and_rng_driven():
    rng = np.random.default_rng(7)
    freq = np.mean([~frame_drop_mask(10, 0.3, "random", rng) for _ in range(4000)], 0)
    np.testing.assert_allclose(freq, 0.3, atol=0.04)
    a = frame_drop_mask(64, 0.5, "random", np.random.default_rng(1))
    b = frame_drop_mask(64, 0.5, "random", np.random.default_rng(1))
    c = frame_drop_mask(64, 0.5, "random", np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batched_rows_are_independent_and_exact():
    valid = np.ones((6, 32), bool)
    valid[2, 20:] = False
    valid[5] = False  # nothing to keep or drop
    for pattern in PATTERNS:
        keep = frame_drop_masks(valid, 0.75, pattern, np.random.default_rng(11))
        assert keep.shape == valid.shape
        np.testing.assert_array_equal(keep.sum(1), [8, 8, 5, 8, 8, 0])
        assert not keep[~valid].any()
    keep = frame_drop_masks(valid[:5], 0.5, "random", np.random.default_rng(0))
    assert len({row.tobytes() for row in keep}) == 5


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="pattern"):
        frame_drop_mask(10, 0.5, "blocks", rng)
    with pytest.raises(ValueError, match="ratio"):
        frame_drop_mask(10, 1.5, "random", rng)
    with pytest.raises(ValueError, match="shape"):
        frame_drop_mask(10, 0.5, "random", rng, valid=np.ones(9, bool))
    kp = np.zeros((1, 4, 2, 2), np.float32)
    with pytest.raises(ValueError, match="mode"):
        drop_frames(kp, kp[..., 0], np.ones(4, bool), np.ones(4, bool), "shift")


def _toy(T=6, M=2, V=3):
    kp = (np.arange(M * T * V * 2, dtype=np.float32).reshape(M, T, V, 2) + 1)
    score = np.full((M, T, V), 0.9, np.float32)
    return kp, score, np.ones(T, bool)


def test_compact_keeps_order_and_pads_end():
    kp, score, mask = _toy()
    keep = np.array([1, 0, 1, 1, 0, 1], bool)
    kp2, sc2, m2, n = drop_frames(kp, score, mask, keep, "compact")
    assert n == 4
    np.testing.assert_array_equal(m2, [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(kp2[:, :4], kp[:, [0, 2, 3, 5]])
    assert np.all(kp2[:, 4:] == 0) and np.all(sc2[:, 4:] == 0)
    np.testing.assert_array_equal(sc2[:, :4], score[:, [0, 2, 3, 5]])
    assert kp2.dtype == np.float32
    # inputs untouched
    np.testing.assert_array_equal(kp, _toy()[0])


def test_compact_respects_existing_mask():
    kp, score, mask = _toy()
    mask[2] = False
    keep = np.array([1, 1, 1, 0, 1, 1], bool)  # frame 2 is already invalid: it cannot be kept
    kp2, _, m2, n = drop_frames(kp, score, mask, keep, "compact")
    assert n == 4
    np.testing.assert_array_equal(kp2[:, :4], kp[:, [0, 1, 4, 5]])


def test_inplace_zeros_dropped_frames_where_they_were():
    kp, score, mask = _toy()
    keep = np.array([1, 0, 1, 1, 0, 1], bool)
    kp2, sc2, m2, n = drop_frames(kp, score, mask, keep, "inplace")
    assert n == 4
    np.testing.assert_array_equal(m2, keep)
    assert np.all(kp2[:, [1, 4]] == 0) and np.all(sc2[:, [1, 4]] == 0)
    np.testing.assert_array_equal(kp2[:, keep], kp[:, keep])
    np.testing.assert_array_equal(sc2[:, keep], score[:, keep])


@pytest.mark.parametrize("mode", ["compact", "inplace"])
def test_batched_drop_frames_matches_rows(mode):
    rng = np.random.default_rng(4)
    kp = rng.normal(size=(3, 2, 10, 4, 2)).astype(np.float32)  # [clips, M, T, V, C]
    score = rng.random((3, 2, 10, 4)).astype(np.float32)
    mask = np.ones((3, 10), bool)
    keep = frame_drop_masks(mask, 0.5, "random", rng)
    out = drop_frames(kp, score, mask, keep, mode)
    for i in range(3):
        row = drop_frames(kp[i], score[i], mask[i], keep[i], mode)
        for a, b in zip(out, row):
            np.testing.assert_array_equal(a[i], b)
