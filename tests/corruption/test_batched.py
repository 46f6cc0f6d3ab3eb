"""Torch batched frame-drop masks agree with the numpy reference (counts, exact masks under equal draws)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finetec.corruption.batched import (apply_keep, drop_keep_masks, keep_from_uniforms, mirror_keep,
                                        random_keep)
from finetec.corruption.temporal import PATTERNS, frame_drop_masks, num_dropped


class _FixedRng:
    """A numpy-Generator stand-in that replays given uniforms (so numpy and torch see the same draws)."""

    def __init__(self, u_rank: np.ndarray, u_phase: np.ndarray, u_start: np.ndarray) -> None:
        self.u_rank, self.u_phase, self.u_start = u_rank, u_phase, u_start

    def random(self, shape):  # noqa: D401 - mimic Generator.random
        shape = tuple(np.atleast_1d(shape))
        return self.u_rank if shape == self.u_rank.shape else self.u_phase

    def integers(self, low, high):
        return low + np.floor(self.u_start * (high - low)).astype(np.int64)


def _valid_rows(T: int, ns: list[int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    valid = np.zeros((len(ns), T), bool)
    for i, n in enumerate(ns):
        valid[i, np.sort(rng.choice(T, n, replace=False))] = True
    return valid


NS = [0, 1, 2, 3, 5, 8, 13, 20]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_counts_match_numpy(pattern, ratio):
    valid = _valid_rows(20, NS)
    keep = drop_keep_masks(torch.from_numpy(valid), ratio, pattern, torch.Generator().manual_seed(1)).numpy()
    ref = frame_drop_masks(valid, ratio, pattern, np.random.default_rng(1))
    np.testing.assert_array_equal(keep.sum(1), ref.sum(1))
    n = valid.sum(1)
    np.testing.assert_array_equal(n - keep.sum(1), num_dropped(n, ratio))
    assert not (keep & ~valid).any()  # invalid frames never kept
    assert (keep.sum(1) >= 1)[n > 0].all()


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_exact_equality_under_same_draws(pattern, ratio):
    valid = _valid_rows(16, [16, 12, 7, 3, 2, 1, 0, 9], seed=3)
    g = np.random.default_rng(5)
    u_rank, u_phase, u_start = g.random(valid.shape), g.random(len(valid)), g.random(len(valid))
    ref = frame_drop_masks(valid, ratio, pattern, _FixedRng(u_rank, u_phase, u_start))
    got = keep_from_uniforms(torch.from_numpy(valid), ratio, pattern, torch.from_numpy(u_rank),
                             torch.from_numpy(u_phase), torch.from_numpy(u_start)).numpy()
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("pattern", ["prefix", "suffix"])
def test_deterministic_patterns_equal_numpy(pattern):
    valid = _valid_rows(12, [12, 10, 4, 1], seed=2)
    got = drop_keep_masks(torch.from_numpy(valid), 0.5, pattern).numpy()
    np.testing.assert_array_equal(got, frame_drop_masks(valid, 0.5, pattern, np.random.default_rng(0)))


def test_prefix_hand_values():
    valid = torch.tensor([[True, False, True, True, True, False]])
    keep = drop_keep_masks(valid, 0.5, "prefix")  # n=4, d=2: drop valid frames 0 and 2
    assert keep.tolist() == [[False, False, False, True, True, False]]


def test_per_row_ratio_and_pattern_and_between_is_block():
    T = 20
    valid = torch.ones(4, T, dtype=torch.bool)
    ratio = torch.tensor([0.25, 0.5, 0.75, 0.5])
    keep = drop_keep_masks(valid, ratio, ["prefix", "suffix", "between", "periodic"], torch.Generator().manual_seed(0))
    assert keep.sum(1).tolist() == [15, 10, 5, 10]
    assert not keep[0, :5].any() and keep[0, 5:].all()
    assert keep[1, :10].all() and not keep[1, 10:].any()
    dropped = torch.nonzero(~keep[2]).flatten()
    assert dropped.numel() == 15 and int(dropped[-1] - dropped[0]) == 14  # one contiguous block
    assert keep[2, 0] and keep[2, -1]  # strictly inside
    gaps = torch.diff(torch.nonzero(~keep[3]).flatten())
    assert set(gaps.tolist()) == {2}  # periodic 50%: every other frame


def test_generator_reproducible_and_bad_input():
    valid = torch.ones(3, 10, dtype=torch.bool)
    a = drop_keep_masks(valid, 0.5, "random", torch.Generator().manual_seed(7))
    b = drop_keep_masks(valid, 0.5, "random", torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown frame-drop pattern"):
        drop_keep_masks(valid, 0.5, "zigzag")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        drop_keep_masks(valid, 1.5, "random")
    with pytest.raises(ValueError, match="B=3"):
        drop_keep_masks(valid, torch.tensor([0.1, 0.2]), "random")
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        drop_keep_masks(torch.ones(10, dtype=torch.bool), 0.5, "random")


def test_apply_keep_compact_and_inplace():
    B, T, V = 2, 6, 3
    x = torch.arange(B * T * V * 2, dtype=torch.float32).view(B, T, V, 2) + 1
    keep = torch.tensor([[True, False, True, False, False, True], [False, True, True, True, True, True]])
    xc, mc = apply_keep(x, keep, "compact")
    assert mc.tolist() == [[True, True, True, False, False, False], [True] * 5 + [False]]
    assert torch.equal(xc[0, :3], x[0, [0, 2, 5]]) and (xc[0, 3:] == 0).all()
    assert torch.equal(xc[1, :5], x[1, 1:]) and (xc[1, 5:] == 0).all()
    xi, mi = apply_keep(x, keep, "inplace")
    assert torch.equal(mi, keep)
    assert torch.equal(xi[keep], x[keep]) and (xi[~keep] == 0).all()
    with pytest.raises(ValueError, match="unknown frame-drop mode"):
        apply_keep(x, keep, "sideways")
    with pytest.raises(ValueError, match="keep must be"):
        apply_keep(x, keep[:, :4], "compact")


def test_apply_keep_gradient():
    x = torch.randn(1, 4, 2, requires_grad=True)
    keep = torch.tensor([[False, True, False, True]])
    out, _ = apply_keep(x, keep, "compact")
    out.sum().backward()
    assert x.grad[0, :, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_random_keep_and_mirror_keep():
    valid = torch.ones(64, 8, dtype=torch.bool)
    keep = random_keep(valid, torch.Generator().manual_seed(0))
    assert set(keep.sum(1).tolist()) <= {6, 4, 2}  # ratios 0.25 / 0.5 / 0.75 of 8
    assert len(set(keep.sum(1).tolist())) == 3
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False],
                         [True, False, True, False, True]])
    v5 = torch.ones(3, 5, dtype=torch.bool)
    assert mirror_keep(mask, "compact", v5).tolist() == [[True, False, True, False, True],
                                                         [True, False, False, False, False],
                                                         [True, False, True, False, True]]
    assert torch.equal(mirror_keep(mask, "inplace", v5), mask)
