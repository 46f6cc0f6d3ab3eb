"""Classic (non-learned) completion: L-R / R-L copy (Table 3), interpolation and duplication (Figure 4).

All functions take ``x [B, T, V, C]``, ``mask [B, T]`` bool and ``mode`` and return ``[B, T, V, C]`` (x's dtype and
device), vectorised over sequences, frames and joints.

* ``mode='inplace'``: ``mask`` marks the observed frames at their true times; they are returned unchanged by the
  copies and the interpolation, and only the other frames are filled.
* ``mode='compact'``: the ``n`` survivors are ``x[:, :n]`` (``mask`` must be a prefix). Their true times are unknown;
  survivor k is placed at time ``round(k (T-1) / (n-1))`` (n = 1: time 0), then the same fill runs.

Choices:

* Placement rounds halves up (integer arithmetic, exact); since ``T >= n`` the placed times are distinct.
* ``lr_copy``: each unobserved frame takes the last observed frame before it; frames before the first observed
  one take the first observed. ``rl_copy`` mirrors it (next observed frame; after the last one, the last one).
* ``linear_interp``: linear in time between the nearest observed frames, computed in float32 (at least);
  constant extrapolation before the first and after the last observed frame.
* ``duplicate`` (PYSKL's looping of a short clip): ``out[t] = survivors[t mod n]``. It ignores placement, also in
  ``inplace`` mode, where the survivors are the observed frames in time order -- so, unlike the other fills, it
  moves observed frames (it is the position-blind baseline).
* A row without any observed frame raises ``ValueError`` (nothing to copy from).
"""

from __future__ import annotations

import torch

from . import register_completer

__all__ = ["place_on_time_axis", "lr_fill", "lr_copy", "rl_copy", "linear_interp", "duplicate"]

MODES = ("compact", "inplace")


def _check(name: str, x: torch.Tensor, mask: torch.Tensor, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"{name}: mode must be one of {list(MODES)}, got {mode!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{name}: x must be a [B, T, V, C] tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: x must be floating point, got {x.dtype}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name}: mask must be a bool tensor [B, T], got "
                        f"{mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"{name}: mask must be [B, T] = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    empty = (~mask.any(1)).nonzero().flatten()
    if empty.numel():
        raise ValueError(f"{name}: sequence {int(empty[0])} has no observed frame "
                         f"({empty.numel()} such row(s)); cannot complete it")
    if mode == "compact":
        n = mask.sum(1, keepdim=True)
        bad = (mask != (torch.arange(mask.shape[1], device=mask.device) < n)).any(1).nonzero().flatten()
        if bad.numel():
            raise ValueError(f"{name}: compact mask must mark a prefix (survivors moved to the front); "
                             f"row {int(bad[0])} does not")


def _gather_frames(y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``y[b, idx[b, t]]`` for ``y [B, T, V, C]`` and ``idx [B, T']``."""
    B, _, V, C = y.shape
    return y.gather(1, idx[:, :, None, None].expand(B, idx.shape[1], V, C))


def place_on_time_axis(x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> tuple[torch.Tensor, torch.Tensor]:
    """Observed frames on the full time axis: ``(y [B, T, V, C], observed [B, T] bool)``; unobserved frames of ``y``
    are 0. ``inplace``: ``(x, mask)``; ``compact``: survivor k goes to ``round(k (T-1) / (n-1))``."""
    _check("place_on_time_axis", x, mask, mode)
    if mode == "inplace":
        return x, mask
    B, T, V, C = x.shape
    n = mask.sum(1, keepdim=True)  # [B, 1]
    k = torch.arange(T, device=x.device).expand(B, T)
    den = (n - 1).clamp_min(1)
    pos = (2 * k * (T - 1) + den) // (2 * den)  # round half up of k (T-1) / (n-1)
    pos = torch.where(mask, pos, torch.full_like(pos, T))  # non-survivors go to a dummy slot T
    y = x.new_zeros(B, T + 1, V, C).scatter(1, pos[:, :, None, None].expand(B, T, V, C), x)
    observed = mask.new_zeros(B, T + 1).scatter(1, pos, mask)
    return y[:, :T], observed[:, :T]


def _prev_next(observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the last observed frame at or before t (-1 if none) and the next at or after t (T if none)."""
    B, T = observed.shape
    t = torch.arange(T, device=observed.device).expand(B, T)
    prev = torch.where(observed, t, torch.full_like(t, -1)).cummax(1).values
    nxt = torch.where(observed, t, torch.full_like(t, T)).flip(1).cummin(1).values.flip(1)
    return prev, nxt


def lr_fill(y: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """The L-R copy fill of ``y [B, T, V, C]`` whose ``observed [B, T]`` frames are already on the time axis."""
    prev, nxt = _prev_next(observed)
    first = nxt[:, :1].expand_as(nxt)
    return _gather_frames(y, torch.where(prev < 0, first, prev))


@register_completer("lr_copy")
def lr_copy(x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> torch.Tensor:
    """Left-to-right copy: each unobserved frame repeats the last observed frame before it (the first observed
    frame before that)."""
    return lr_fill(*place_on_time_axis(x, mask, mode))


@register_completer("rl_copy")
def rl_copy(x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> torch.Tensor:
    """Right-to-left copy: each unobserved frame repeats the next observed frame after it (the last observed frame
    after that)."""
    y, observed = place_on_time_axis(x, mask, mode)
    prev, nxt = _prev_next(observed)
    last = prev[:, -1:].expand_as(prev)
    return _gather_frames(y, torch.where(nxt >= y.shape[1], last, nxt))


@register_completer("interpolation")
def linear_interp(x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> torch.Tensor:
    """Linear interpolation in time between the nearest observed frames; constant extrapolation at the ends."""
    y, observed = place_on_time_axis(x, mask, mode)
    T = y.shape[1]
    prev, nxt = _prev_next(observed)
    prev, nxt = torch.where(prev < 0, nxt, prev), torch.where(nxt >= T, prev, nxt)
    dtype = torch.promote_types(y.dtype, torch.float32)
    t = torch.arange(T, device=y.device, dtype=dtype)
    gap = (nxt - prev).to(dtype)
    alpha = torch.where(gap > 0, (t - prev.to(dtype)) / gap.clamp_min(1), torch.zeros_like(gap))
    lo, hi = _gather_frames(y, prev).to(dtype), _gather_frames(y, nxt).to(dtype)
    out = torch.lerp(lo, hi, alpha[:, :, None, None].expand_as(lo)).to(y.dtype)
    return torch.where(observed[:, :, None, None], y, out)


@register_completer("duplication")
def duplicate(x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> torch.Tensor:
    """Duplication (PYSKL looping): ``out[t] = survivors[t mod n]``, survivors = observed frames in time order."""
    _check("duplicate", x, mask, mode)
    B, T = mask.shape
    n = mask.sum(1, keepdim=True)
    t = torch.arange(T, device=x.device).expand(B, T)
    order = t if mode == "compact" else torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    return _gather_frames(x, order.gather(1, t % n))


def fill_missing_joints(x: torch.Tensor, joint_visible: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Fill the joints that are invisible inside observed frames, joint by joint, by linear interpolation between the
    joint's visible observations in frame order (constant at the ends); frames outside ``frame_mask`` stay as they
    are. ``x [B, T, V, C]``, ``joint_visible [B, T, V]`` bool, ``frame_mask [B, T]`` bool. A joint never visible in
    a sequence stays 0.

    Every completer gets frames whose joints are all usable: a joint hidden in one frame (Penn Action marks ~22 % of
    its joints invisible) would otherwise be interpolated towards the image centre. For compact input the frame slots
    are in time order, so interpolating across slots is interpolating in time.
    """
    B, T, V, C = x.shape
    vis = joint_visible.to(torch.bool) & frame_mask.to(torch.bool)[..., None]
    xj = x.permute(0, 2, 1, 3).reshape(B * V, T, 1, C)
    mj = vis.permute(0, 2, 1).reshape(B * V, T)
    never = ~mj.any(1)
    first = torch.arange(T, device=x.device)[None, :] == 0
    xj = torch.where(never[:, None, None, None], torch.zeros_like(xj), xj)
    filled = linear_interp(xj, mj | (never[:, None] & first), "inplace")
    filled = filled.reshape(B, V, T, C).permute(0, 2, 1, 3)
    hidden = frame_mask.to(torch.bool)[..., None] & ~vis
    return torch.where(hidden[..., None], filled.to(x.dtype), x)
