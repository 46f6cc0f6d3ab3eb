"""Spatial corruption: coordinate noise, joint occlusion, low-confidence joint removal.

Arrays: ``keypoint [..., T, V, C]`` and ``score [..., T, V]`` (any leading dimensions, e.g. persons and clips).
A joint is *present* when its score is > 0; missing joints are coordinates 0 with score 0 and stay so.
All functions return new arrays and never modify their inputs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_noise", "occlude_joints", "drop_low_confidence"]


def _check(keypoint: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoint = np.asarray(keypoint)
    score = np.asarray(score)
    if keypoint.ndim < 3:
        raise ValueError(f"keypoint must be [..., T, V, C], got shape {keypoint.shape}")
    if score.shape != keypoint.shape[:-1]:
        raise ValueError(f"score shape {score.shape} does not match keypoint {keypoint.shape[:-1]}")
    return keypoint, score


def gaussian_noise(
    keypoint: np.ndarray,
    score: np.ndarray,
    sigma: float,
    rng: np.random.Generator,
    *,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """``keypoint + N(0, sigma^2)`` on present joints only; missing joints keep coordinates 0.

    ``sigma`` is in the units of the coordinates; ``scale [C]`` multiplies it per channel (used to express a sigma
    given in normalised [-1, 1] units in pixels: ``scale = (w/2, h/2)``).
    """
    keypoint, score = _check(keypoint, score)
    if not sigma >= 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma!r}")
    std = np.full(keypoint.shape[-1], float(sigma), dtype=np.float64)
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.shape != std.shape:
            raise ValueError(f"noise scale has shape {scale.shape}, expected ({keypoint.shape[-1]},)")
        std = std * scale
    noise = rng.standard_normal(keypoint.shape) * std
    present = (score > 0)[..., None]
    return (keypoint + noise * present).astype(keypoint.dtype, copy=False)


def occlude_joints(
    keypoint: np.ndarray,
    score: np.ndarray,
    rng: np.random.Generator,
    num_joints: int,
    span_frames: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Occlude ``num_joints`` distinct joints per leading index (person/clip), each for one contiguous span.

    Each chosen joint is hidden (coordinates 0, score 0) on ``span_frames`` consecutive frames (capped at ``T``)
    starting at a uniformly random frame in ``[0, T - span]``. Returns ``(keypoint, score)``.
    """
    keypoint, score = _check(keypoint, score)
    T, V = score.shape[-2:]
    num_joints, span_frames = int(num_joints), int(span_frames)
    if not 0 <= num_joints <= V:
        raise ValueError(f"occlude_joints: num_joints must be in [0, {V}] for {V} joints, got {num_joints}")
    if span_frames < 0:
        raise ValueError(f"occlude_joints: span_frames must be >= 0, got {span_frames}")
    span = min(span_frames, T)
    if num_joints == 0 or span == 0:
        return keypoint.copy(), score.copy()
    lead = score.shape[:-2]
    rank = np.argsort(np.argsort(rng.random(lead + (V,)), axis=-1), axis=-1)
    chosen = rank < num_joints  # [..., V]
    start = rng.integers(0, T - span + 1, size=lead + (V,))  # [..., V]
    t = np.arange(T)[:, None]  # [T, 1]
    hidden = chosen[..., None, :] & (t >= start[..., None, :]) & (t < start[..., None, :] + span)  # [..., T, V]
    kp = np.where(hidden[..., None], 0, keypoint).astype(keypoint.dtype, copy=False)
    sc = np.where(hidden, 0, score).astype(score.dtype, copy=False)
    return kp, sc


def drop_low_confidence(keypoint: np.ndarray, score: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Mark joints with ``score < thr`` as missing (coordinates 0, score 0). Returns ``(keypoint, score)``."""
    keypoint, score = _check(keypoint, score)
    low = score < float(thr)
    kp = np.where(low[..., None], 0, keypoint).astype(keypoint.dtype, copy=False)
    sc = np.where(low, 0, score).astype(score.dtype, copy=False)
    return kp, sc
