"""Frame-drop masks for batches of sequences in torch (vectorised over the batch), and their application.

The torch twin of :func:`finetec.corruption.temporal.frame_drop_masks`: the same five patterns (random, periodic,
prefix, suffix, between) and the same counting rule -- of the ``n`` valid frames of a row,
``d = min(round_half_up(ratio * n), n - 1)`` are dropped (none of a row without valid frames). Every row may have its
own ratio and pattern. Given the same uniform draws, the masks equal the numpy ones exactly (see
:func:`keep_from_uniforms`); the draws themselves come from torch (``generator`` or torch's global generator).

:func:`apply_keep` lays the survivors out in one of the two corruption modes (``compact`` / ``inplace``).
:func:`random_keep` (a random pattern and ratio per row) and :func:`mirror_keep` (a mask shaped like a given
corrupted query's) build the prompt masks of the in-context completers.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .temporal import PATTERNS, check_mode

__all__ = [
    "PROMPT_RATIOS", "num_dropped_t", "drop_keep_masks", "keep_from_uniforms", "apply_keep", "random_keep",
    "mirror_keep",
]

#: drop ratios a random prompt mask draws from (the paper's minor / moderate / severe levels)
PROMPT_RATIOS = (0.25, 0.5, 0.75)


def _check_valid(valid: torch.Tensor, who: str) -> torch.Tensor:
    if not isinstance(valid, torch.Tensor):
        raise TypeError(f"{who}: valid must be a torch.Tensor [B, T] bool, got {type(valid).__name__}")
    if valid.dim() != 2:
        raise ValueError(f"{who}: valid must be [B, T], got shape {tuple(valid.shape)}")
    return valid.bool()


def _ratio_tensor(ratio: "float | torch.Tensor", B: int, device: torch.device) -> torch.Tensor:
    r = torch.as_tensor(ratio, dtype=torch.float64, device=device)
    if r.dim() == 0:
        r = r.expand(B)
    if r.shape != (B,):
        raise ValueError(f"drop_keep_masks: ratio must be a float or a [B={B}] tensor, got shape {tuple(r.shape)}")
    if not bool(((r >= 0) & (r <= 1)).all()):
        raise ValueError(f"drop_keep_masks: drop ratios must lie in [0, 1], got {r.tolist()}")
    return r


def _pattern_index(pattern: "str | Sequence[str] | torch.Tensor", B: int, device: torch.device) -> torch.Tensor:
    if isinstance(pattern, torch.Tensor):
        idx = pattern.to(device=device, dtype=torch.long)
        if idx.shape != (B,) or bool(((idx < 0) | (idx >= len(PATTERNS))).any()):
            raise ValueError(f"drop_keep_masks: a pattern tensor must be [B={B}] indices into {list(PATTERNS)}")
        return idx
    names = [pattern] * B if isinstance(pattern, str) else list(pattern)
    if len(names) != B:
        raise ValueError(f"drop_keep_masks: got {len(names)} pattern names for B={B} rows")
    bad = sorted({str(p) for p in names if p not in PATTERNS})
    if bad:
        raise ValueError(f"drop_keep_masks: unknown frame-drop pattern(s) {bad}; use one of {list(PATTERNS)}")
    return torch.tensor([PATTERNS.index(p) for p in names], dtype=torch.long, device=device)


def num_dropped_t(n: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``min(round_half_up(ratio * n), n - 1)`` (and >= 0), in float64 like the numpy rule; ``[B]`` long."""
    d = torch.floor(ratio * n.double() + 0.5).long()
    return torch.minimum(d.clamp_min(0), (n - 1).clamp_min(0))


def keep_from_uniforms(valid: torch.Tensor, ratio: "float | torch.Tensor",
                       pattern: "str | Sequence[str] | torch.Tensor", u_rank: torch.Tensor, u_phase: torch.Tensor,
                       u_start: torch.Tensor) -> torch.Tensor:
    """Keep-masks ``[B, T]`` from given uniform draws in [0, 1).

    ``u_rank [B, T]`` orders the frames for ``random`` (the ``d`` valid frames with the smallest draws are dropped),
    ``u_phase [B]`` gives the ``periodic`` phase ``q = floor(u * n)``, ``u_start [B]`` the ``between`` block start
    ``low + floor(u * (high - low + 1))`` -- the numpy module's formulas, so the same draws give the same masks.
    """
    valid = _check_valid(valid, "keep_from_uniforms")
    B, T = valid.shape
    dev = valid.device
    r = _ratio_tensor(ratio, B, dev)
    pidx = _pattern_index(pattern, B, dev)
    n = valid.sum(-1)
    d = num_dropped_t(n, r)
    order = valid.long().cumsum(-1) - 1  # index of each frame among the valid ones
    dcol = d[:, None]

    keys = torch.where(valid, u_rank.double(), torch.full_like(u_rank, 2.0, dtype=torch.float64))
    rank = torch.argsort(torch.argsort(keys, dim=-1, stable=True), dim=-1, stable=True)
    drop_random = rank < dcol

    n_safe = n.clamp_min(1)
    q = torch.floor(u_phase.double() * n_safe.double()).long().clamp(max=n_safe - 1)
    hi = torch.div((order + 1) * dcol + q[:, None], n_safe[:, None], rounding_mode="floor")
    lo = torch.div(order * dcol + q[:, None], n_safe[:, None], rounding_mode="floor")
    drop_periodic = hi > lo

    drop_prefix = order < dcol
    drop_suffix = order >= (n - d)[:, None]

    room = n - d
    inner = room >= 2
    low = inner.long()
    high = torch.where(inner, room - 1, room)
    start = low + torch.floor(u_start.double() * (high - low + 1).double()).long()
    start = torch.minimum(start, high)
    drop_between = (order >= start[:, None]) & (order < (start + d)[:, None])

    drops = torch.stack([drop_random, drop_periodic, drop_prefix, drop_suffix, drop_between])  # order of PATTERNS
    drop = drops.gather(0, pidx[None, :, None].expand(1, B, T))[0]
    return valid & ~drop


def drop_keep_masks(valid: torch.Tensor, ratio: "float | torch.Tensor",
                    pattern: "str | Sequence[str] | torch.Tensor",
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep-masks ``[B, T]`` bool (True = frame survives) for ``valid [B, T]`` bool.

    ``ratio``: a float or a ``[B]`` tensor of drop ratios in [0, 1]; ``pattern``: one of
    :data:`~finetec.corruption.temporal.PATTERNS`, a list of ``B`` names, or a ``[B]`` tensor of their indices.
    Invalid frames are never kept; a row with valid frames keeps at least one. Draws come from ``generator``
    (or torch's global generator).
    """
    valid = _check_valid(valid, "drop_keep_masks")
    B, T = valid.shape
    dev = valid.device
    u_rank = torch.rand((B, T), generator=generator, device=dev, dtype=torch.float64)
    u_phase = torch.rand((B,), generator=generator, device=dev, dtype=torch.float64)
    u_start = torch.rand((B,), generator=generator, device=dev, dtype=torch.float64)
    return keep_from_uniforms(valid, ratio, pattern, u_rank, u_phase, u_start)


def apply_keep(x: torch.Tensor, keep: torch.Tensor, mode: str = "compact") -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a keep-mask to ``x [B, T, ...]``; returns ``(x_out, mask_out [B, T] bool)``.

    ``compact``: the kept frames, in order, move to the front, the rest is zero (``mask_out[b, :n_b]`` True);
    ``inplace``: dropped frames are zeroed where they are (``mask_out = keep``). Differentiable in ``x``.
    """
    check_mode(mode)
    if not isinstance(x, torch.Tensor) or not isinstance(keep, torch.Tensor):
        raise TypeError("apply_keep: x and keep must be torch tensors")
    if x.dim() < 2 or keep.shape != x.shape[:2]:
        raise ValueError(f"apply_keep: keep must be [B, T] = {tuple(x.shape[:2])}, got {tuple(keep.shape)}")
    keep = keep.to(device=x.device, dtype=torch.bool)
    extra = (1,) * (x.dim() - 2)
    if mode == "inplace":
        out_mask = keep
        out = x
    else:
        T = x.shape[1]
        order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)  # kept first, both groups in order
        out = x.gather(1, order.view(order.shape + extra).expand(x.shape))
        out_mask = torch.arange(T, device=x.device)[None, :] < keep.sum(1, keepdim=True)
    out = torch.where(out_mask.view(out_mask.shape + extra), out, torch.zeros((), dtype=x.dtype, device=x.device))
    return out, out_mask


def random_keep(valid: torch.Tensor, generator: torch.Generator | None = None,
                ratios: Sequence[float] = PROMPT_RATIOS,
                patterns: Sequence[str] = PATTERNS) -> torch.Tensor:
    """Keep-masks ``[B, T]`` with a pattern drawn uniformly from ``patterns`` and a drop ratio uniformly from
    ``ratios``, independently per row."""
    valid = _check_valid(valid, "random_keep")
    B = valid.shape[0]
    dev = valid.device
    if not len(ratios) or not len(patterns):
        raise ValueError("random_keep: ratios and patterns must be non-empty")
    pidx_all = _pattern_index(list(patterns), len(patterns), dev)
    pick_p = torch.randint(len(patterns), (B,), generator=generator, device=dev)
    pick_r = torch.randint(len(ratios), (B,), generator=generator, device=dev)
    r = torch.tensor([float(v) for v in ratios], dtype=torch.float64, device=dev)[pick_r]
    return drop_keep_masks(valid, r, pidx_all[pick_p], generator)


def mirror_keep(mask: torch.Tensor, mode: str, valid: torch.Tensor) -> torch.Tensor:
    """A deterministic keep-mask for rows ``valid [B, T]`` shaped like a corrupted query's ``mask [B, T]``.

    ``inplace``: the query's own surviving positions (``mask & valid``). ``compact``: the query's ``n`` survivors
    spread evenly over the clip, frame ``round(k (T - 1) / (n - 1))`` for ``k = 0..n-1`` (frame 0 when ``n = 1``,
    none when ``n = 0``) -- the evenly-spread reading of compact input used by the completers.
    """
    check_mode(mode)
    valid = _check_valid(valid, "mirror_keep")
    mask = mask.to(device=valid.device, dtype=torch.bool)
    if mask.shape != valid.shape:
        raise ValueError(f"mirror_keep: mask {tuple(mask.shape)} and valid {tuple(valid.shape)} must match")
    if mode == "inplace":
        return mask & valid
    B, T = mask.shape
    n = mask.sum(1)  # [B]
    k = torch.arange(T, device=mask.device)[None, :].expand(B, T)
    den = (n[:, None] - 1).clamp_min(1)
    pos = (2 * k * (T - 1) + den) // (2 * den)  # round half up, exact integer arithmetic
    pos = torch.where(k < n[:, None], pos, torch.full_like(pos, T))  # unused slots point past the end
    keep = torch.zeros(B, T + 1, dtype=torch.bool, device=mask.device)
    keep.scatter_(1, pos, True)
    return keep[:, :T] & valid
