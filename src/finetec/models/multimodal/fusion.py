"""Score fusion (multimodal paper, Sec. 3.4, Eq. 14): a weighted sum of per-modality class probabilities.

:func:`score_fusion` is Eq. 14's sum, :func:`fit_fusion_weights` chooses the weights on a validation split (the
paper fixes them; it does not say how). ``finetec ensemble fuse`` applies both to saved test scores
(:func:`finetec.engine.ensemble.fuse_scores`).

Choices: weights are normalised to sum to 1 (the argmax of Eq. 14 does not change); fitting searches the simplex on a
grid of ``step`` and keeps the weights with the highest top-1 accuracy on the validation scores, ties broken by the
lower negative log-likelihood of the fused (normalised) probabilities, then by the distance to equal weights.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

__all__ = ["fusion_weights", "score_fusion", "fused_prediction", "fit_fusion_weights", "simplex_grid"]


def _stack(scores: Sequence[np.ndarray], where: str) -> np.ndarray:
    if len(scores) == 0:
        raise ValueError(f"{where}: no score arrays")
    arrs = [np.asarray(s, dtype=np.float64) for s in scores]
    shape = arrs[0].shape
    for i, a in enumerate(arrs):
        if a.ndim != 2 or a.shape != shape:
            raise ValueError(f"{where}: every score array must be [N, K] of one shape; array 0 is {shape}, "
                             f"array {i} is {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: score array {i} has non-finite values")
    return np.stack(arrs)


def fusion_weights(weights: Sequence[float] | None, n: int, where: str = "fusion_weights") -> np.ndarray:
    """The lambda_n of Eq. 14: ``weights`` (default equal) checked and normalised to sum to 1, ``[n]`` float64."""
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"{where}: {n} score arrays but {w.size} weights")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"{where}: weights must be finite, >= 0 and not all 0, got {w.tolist()}")
    return w / w.sum()


def score_fusion(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """``sum_n lambda_n S_n`` (Eq. 14) of per-modality class probabilities ``S_n [N, K]``; weights default to equal
    and are normalised to sum to 1. Returns the fused scores ``[N, K]`` float64."""
    S = _stack(scores, "score_fusion")
    lam = fusion_weights(weights, len(S), "score_fusion")
    return np.einsum("n,nik->ik", lam, S)  # Eq. 14 (the sum)


def fused_prediction(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """``K = argmax sum_n lambda_n S_n`` (Eq. 14): the predicted class per sample, ``[N]`` int64."""
    return score_fusion(scores, weights).argmax(-1)  # Eq. 14 (the argmax)


def simplex_grid(n: int, step: float) -> np.ndarray:
    """All weight vectors of ``n`` non-negative multiples of ``step`` summing to 1, ``[C, n]``."""
    if n < 1:
        raise ValueError(f"simplex_grid: n must be >= 1, got {n}")
    m = round(1.0 / step)
    if m < 1 or abs(m * step - 1.0) > 1e-9:
        raise ValueError(f"simplex_grid: step must divide 1 (e.g. 0.05, 0.1), got {step}")
    if n > 5:
        raise ValueError(f"simplex_grid: {n} modalities is too many for a grid search; give the weights")
    combos = [c for c in itertools.product(range(m + 1), repeat=n - 1) if sum(c) <= m]
    g = np.array([list(c) + [m - sum(c)] for c in combos], dtype=np.float64)
    return g / m


def fit_fusion_weights(scores: Sequence[np.ndarray], labels: np.ndarray, step: float = 0.05) -> np.ndarray:
    """Weights for :func:`score_fusion` fitted on validation scores ``S_n [N, K]`` with ``labels [N]`` (see the
    module's choices); returns ``[n]`` summing to 1."""
    S = _stack(scores, "fit_fusion_weights")
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != S.shape[1]:
        raise ValueError(f"fit_fusion_weights: {S.shape[1]} scored samples but {y.shape[0]} labels")
    if y.size == 0:
        raise ValueError("fit_fusion_weights: no validation samples")
    if y.min() < 0 or y.max() >= S.shape[2]:
        raise ValueError(f"fit_fusion_weights: labels must lie in 0..{S.shape[2] - 1}")
    grid = simplex_grid(len(S), step)  # [C, n]
    fused = np.einsum("cn,nik->cik", grid, S)  # every candidate at once
    top1 = (fused.argmax(-1) == y[None]).mean(-1)
    p = fused / np.clip(fused.sum(-1, keepdims=True), 1e-12, None)
    nll = -np.log(np.clip(np.take_along_axis(p, np.broadcast_to(y[None, :, None], p.shape[:2] + (1,)), -1)[..., 0],
                          1e-12, None)).mean(-1)
    dist = np.abs(grid - 1.0 / len(S)).sum(-1)
    best = np.lexsort((dist, nll, -top1))[0]  # last key is primary
    return grid[best]
