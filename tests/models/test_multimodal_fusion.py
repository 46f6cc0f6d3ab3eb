"""finetec.models.multimodal.fusion: Eq. 14's weighted sum and argmax, and the weights fitted on validation scores."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.models.multimodal.fusion import fit_fusion_weights, fused_prediction, score_fusion, simplex_grid


def test_score_fusion_is_the_weighted_sum():
    rgb = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    skel = np.array([[0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    np.testing.assert_allclose(score_fusion([rgb, skel], [3, 1]), 0.75 * rgb + 0.25 * skel)
    np.testing.assert_allclose(score_fusion([rgb, skel]), (rgb + skel) / 2)
    # argmax (Eq. 14): RGB-heavy weights follow RGB on sample 0, skeleton-heavy ones follow the skeleton
    assert fused_prediction([rgb, skel], [3, 1]).tolist() == [0, 2]
    assert fused_prediction([rgb, skel], [1, 3]).tolist() == [1, 1]


def test_score_fusion_errors():
    a = np.ones((2, 3)) / 3
    with pytest.raises(ValueError, match="2 score arrays but 3 weights"):
        score_fusion([a, a], [1, 1, 1])
    with pytest.raises(ValueError, match="one shape"):
        score_fusion([a, np.ones((2, 4))])
    with pytest.raises(ValueError, match=">= 0"):
        score_fusion([a, a], [1, -1])
    with pytest.raises(ValueError, match="non-finite"):
        score_fusion([a, np.full((2, 3), np.nan)])
    with pytest.raises(ValueError, match="no score arrays"):
        score_fusion([])


def test_simplex_grid():
    g = simplex_grid(3, 0.25)
    assert len(g) == 15 and np.allclose(g.sum(1), 1) and (g >= 0).all()
    assert len({tuple(r) for r in g}) == 15
    with pytest.raises(ValueError, match="divide 1"):
        simplex_grid(2, 0.3)


def test_fit_fusion_weights_finds_the_better_modality():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    good = np.eye(5)[y] * 0.6 + rng.random((200, 5)) * 0.5  # mostly right
    noise = rng.random((200, 5))                             # chance
    w = fit_fusion_weights([noise, good], y, step=0.1)
    assert w[1] > w[0] and w.sum() == pytest.approx(1)
    acc = (score_fusion([noise, good], w).argmax(1) == y).mean()
    assert acc >= (good.argmax(1) == y).mean()
    with pytest.raises(ValueError, match="labels"):
        fit_fusion_weights([good], y[:10])
    with pytest.raises(ValueError, match="0..4"):
        fit_fusion_weights([good], y + 5)
