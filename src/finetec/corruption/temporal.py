"""Temporal corruption: which frames survive (five drop patterns) and how the survivors are laid out.

Shapes follow the project conventions with optional leading batch dimensions ``...`` (e.g. clips):
``keypoint [..., M, T, V, C]``, ``score [..., M, T, V]``, ``mask [..., T]`` and ``keep [..., T]``.

Counting rule (all patterns): of the ``n`` valid frames of a row, ``d = min(round_half_up(ratio * n), n - 1)`` are
dropped, so a row that has at least one valid frame always keeps at least one. A row with no valid frame has nothing
to keep or drop and is returned as it is (all False).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PATTERNS", "MODES", "num_dropped", "frame_drop_mask", "frame_drop_masks", "drop_frames"]

PATTERNS = ("random", "periodic", "prefix", "suffix", "between")
MODES = ("compact", "inplace")


def _check_ratio(ratio: float) -> float:
    r = float(ratio)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"drop ratio must lie in [0, 1], got {ratio!r}")
    return r


def check_pattern(pattern: str) -> str:
    if pattern not in PATTERNS:
        raise ValueError(f"unknown frame-drop pattern {pattern!r}; use one of {list(PATTERNS)}")
    return pattern


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown frame-drop mode {mode!r}; use one of {list(MODES)}")
    return mode


def num_dropped(n_valid: np.ndarray | int, ratio: float) -> np.ndarray:
    """Frames dropped out of ``n_valid`` valid ones: ``round_half_up(ratio * n)``, capped at ``n - 1`` (and >= 0)."""
    r = _check_ratio(ratio)
    n = np.asarray(n_valid, dtype=np.int64)
    d = np.floor(r * n + 0.5).astype(np.int64)
    return np.clip(d, 0, np.maximum(n - 1, 0))


def frame_drop_masks(valid: np.ndarray, ratio: float, pattern: str, rng: np.random.Generator) -> np.ndarray:
    """Keep-masks ``[..., T]`` for a batch of rows ``valid [..., T]`` (True = frame is valid before corruption).

    Patterns act on the valid frames in their temporal order (index ``o = 0..n-1`` among the valid frames):

    * ``random``   -- ``d`` frames chosen uniformly without replacement;
    * ``periodic`` -- a regular pattern: frame ``o`` is dropped when ``floor(((o+1)d + q)/n) > floor((o d + q)/n)``
      for a random integer phase ``q`` in ``[0, n)`` (a Bresenham line: drops spread as evenly as ``d/n`` allows,
      exactly ``d`` of them);
    * ``prefix`` / ``suffix`` -- the first / last ``d`` valid frames;
    * ``between``  -- one contiguous block of ``d`` valid frames at a random start, strictly inside the sequence
      (at least one kept frame before and after it) whenever ``n - d >= 2``.
    """
    check_pattern(pattern)
    valid = np.asarray(valid, dtype=bool)
    if valid.ndim == 0:
        raise ValueError("valid must have a time axis, got a scalar")
    lead = valid.shape[:-1]
    n = valid.sum(-1)  # [...]
    d = num_dropped(n, ratio)  # [...]
    order = np.cumsum(valid, -1) - 1  # index of each frame among the valid ones (valid frames only)

    if pattern == "random":
        keys = np.where(valid, rng.random(valid.shape), 2.0)  # invalid frames sort last
        rank = np.argsort(np.argsort(keys, axis=-1, kind="stable"), axis=-1, kind="stable")
        drop = rank < d[..., None]
    elif pattern == "periodic":
        n_safe = np.maximum(n, 1)
        q = np.floor(rng.random(lead) * n_safe).astype(np.int64)
        o = order
        hi = ((o + 1) * d[..., None] + q[..., None]) // n_safe[..., None]
        lo = (o * d[..., None] + q[..., None]) // n_safe[..., None]
        drop = hi > lo
    elif pattern == "prefix":
        drop = order < d[..., None]
    elif pattern == "suffix":
        drop = order >= (n - d)[..., None]
    else:  # between
        room = n - d  # kept frames
        inner = room >= 2
        low = np.where(inner, 1, 0)
        high = np.where(inner, room - 1, room)  # inclusive upper bound of the block start
        start = np.asarray(rng.integers(low, high + 1), dtype=np.int64)  # shape of ``lead``
        drop = (order >= start[..., None]) & (order < (start + d)[..., None])
    return valid & ~drop


def frame_drop_mask(
    T: int,
    ratio: float,
    pattern: str,
    rng: np.random.Generator,
    *,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Keep-mask ``[T]`` bool: drops ``round(ratio * n_valid)`` of the valid frames with ``pattern``.

    See :func:`frame_drop_masks` for the patterns. ``valid`` (default all True) marks frames that exist before
    corruption; invalid frames are never kept. At least one valid frame is always kept.
    """
    if valid is None:
        valid = np.ones(int(T), dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (int(T),):
        raise ValueError(f"valid has shape {valid.shape}, expected ({int(T)},)")
    return frame_drop_masks(valid, ratio, pattern, rng)


def drop_frames(
    keypoint: np.ndarray,
    score: np.ndarray,
    mask: np.ndarray,
    keep: np.ndarray,
    mode: str = "compact",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply a keep-mask; returns new ``(keypoint, score, mask, valid_len)`` (inputs are not modified).

    ``compact`` (the paper's protocol): surviving frames keep their order and move to the front; the remaining
    ``T - valid_len`` frames are zero-padded at the end (coordinates 0, score 0, mask False).
    ``inplace``: dropped frames are zeroed where they were (coordinates 0, score 0, mask False).
    ``valid_len [...]`` is the number of valid frames per row (an int64 array; 0-d for a single sequence).
    """
    check_mode(mode)
    keypoint = np.asarray(keypoint)
    score = np.asarray(score)
    mask = np.asarray(mask, dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    if keypoint.ndim < 4:
        raise ValueError(f"keypoint must be [..., M, T, V, C], got shape {keypoint.shape}")
    lead, (M, T, V, C) = keypoint.shape[:-4], keypoint.shape[-4:]
    if score.shape != keypoint.shape[:-1]:
        raise ValueError(f"score shape {score.shape} does not match keypoint {keypoint.shape[:-1]}")
    if mask.shape != lead + (T,) or keep.shape != lead + (T,):
        raise ValueError(f"mask {mask.shape} and keep {keep.shape} must both be {lead + (T,)}")
    keep = keep & mask
    if mode == "inplace":
        new_mask = keep
        kp = keypoint * new_mask[..., None, :, None, None]
        sc = score * new_mask[..., None, :, None]
    else:
        order = np.argsort(~keep, axis=-1, kind="stable")  # kept frames first, both groups in time order
        valid_len = keep.sum(-1)
        new_mask = np.arange(T) < valid_len[..., None]
        kp = np.take_along_axis(keypoint, order[..., None, :, None, None], axis=-3)
        sc = np.take_along_axis(score, order[..., None, :, None], axis=-2)
        kp = kp * new_mask[..., None, :, None, None]
        sc = sc * new_mask[..., None, :, None]
    return (
        kp.astype(keypoint.dtype, copy=False),
        sc.astype(score.dtype, copy=False),
        new_mask,
        new_mask.sum(-1).astype(np.int64),
    )
